#pragma once
// Adam / AdamW (Kingma & Ba, 2015; Loshchilov & Hutter, 2019) with bias correction.
// Moment buffers exist only for tensors that require grad: a LoRA model keeps state for
// A and B alone (2 × their values), the frozen base costs nothing here.
//   m = β1 m + (1-β1) g;  v = β2 v + (1-β2) g²
//   p -= lr · ( m̂ / (sqrt(v̂) + eps) + wd · p )     (AdamW: decay decoupled from the gradient)
//   Adam (decoupled = false) instead adds wd · p to g before the moments (L2 regularisation).
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "nn/module.h"

namespace lowrank::optim {

using nn::NamedTensor;

struct AdamWConfig {
  float lr = 1e-3f;
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float eps = 1e-8f;
  float weight_decay = 0.f;
  bool decoupled = true;  // AdamW; false: Adam with L2 added to the gradient
  // Per-tensor learning-rate multipliers by parameter name (absent: 1): tensor p steps with lr · lr_scale[p]
  // (LoRA+ gives lora_B its ratio, lora::loraplus_lr_scale). Configuration, not state: the checkpoint
  // (state_dict) is the same with or without them.
  std::map<std::string, float> lr_scale;
};

class AdamW {
 public:
  // Keeps the parameters that require grad. Weight decay applies to tensors with >= 2 dims
  // (matrices and embeddings), not to biases and LayerNorm gains (GPT-2 / loralib convention).
  // Throws when cfg.lr_scale names a tensor that is not a trainable parameter, or a multiplier <= 0.
  AdamW(const std::vector<NamedTensor>& params, const AdamWConfig& cfg);

  // One update with this learning rate (schedules pass it in). On the CPU one update per tensor
  // (step_each); where a parameter is on CUDA, every CUDA tensor in one launch (step_grouped).
  void step(float lr);
  void step() { step(cfg_.lr); }
  void zero_grad();

  int64_t steps() const { return t_; }
  size_t num_tensors() const { return slots_.size(); }
  size_t state_bytes() const;  // bytes of m and v together
  const AdamWConfig& config() const { return cfg_; }
  // Uploads of the CUDA launch's tensor table so far (tests: it is re-used while the tensors stay).
  int64_t device_table_uploads() const;

  // Optimizer state for exact resume: "m.<name>", "v.<name>" tensors and the step count. The tensors
  // are the live buffers, on the parameters' device (save_safetensors copies CUDA ones to the host);
  // load_state_dict copies from any device into them.
  std::map<std::string, Tensor> state_dict() const;
  void load_state_dict(const std::map<std::string, Tensor>& state, int64_t step);
  // Throws what load_state_dict would, touching nothing (load_state_dict runs it before copying).
  void check_state_dict(const std::map<std::string, Tensor>& state, int64_t step) const;

 private:
  struct Slot {
    std::string name;
    Tensor p, m, v;
    bool decay;
    float lr_scale = 1.f;  // cfg.lr_scale's entry for this tensor
  };
  // The CUDA launch's table of tensors (cuda::AdamWEntry), on the device: uploaded by the first
  // step_grouped and re-used while the tensors it lists stay the same (optim/adamw.cpp).
  struct DeviceTable;
  void step_each(float lr);
  void step_grouped(float lr);
  std::vector<Slot> slots_;
  AdamWConfig cfg_;
  int64_t t_ = 0;
  std::shared_ptr<DeviceTable> table_;  // shared_ptr: DeviceTable is complete only in adamw.cpp
};

// Scales all gradients so their global L2 norm is at most max_norm; returns the norm before.
float clip_grad_norm(const std::vector<NamedTensor>& params, float max_norm);

// The CPU kernel of one tensor's update (optim/adamw.cpp), with the arguments of cuda::adamw_update:
// c1 = 1-β1^t, c2 = 1-β2^t, wd this tensor's weight decay, decoupled = AdamW (else Adam + L2).
namespace cpu {
void adamw_update(float* p, float* m, float* v, const float* g, int64_t n, float lr, float beta1, float beta2,
                  float eps, float wd, float c1, float c2, bool decoupled);
}  // namespace cpu

}  // namespace lowrank::optim
