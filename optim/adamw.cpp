#include "optim/adamw.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "autograd/kernels.h"
#include "cuda/kernels.h"
#include "tensor/dispatch.h"
#include "tensor/error.h"
#include "tensor/parallel.h"

namespace lowrank::optim {

namespace cpu {

// The update of one tensor; n elements, bias corrections c1 = 1-β1^t, c2 = 1-β2^t, wd this tensor's
// weight decay; decoupled = AdamW, else Adam with L2 added to the gradient. The hyperparameters are
// locals: were they read through a struct they could alias the float arrays being written, which
// stops vectorisation (the update touches every parameter of a full fine-tuning step four times).
void adamw_update(float* p, float* m, float* v, const float* g, int64_t n, float lr, float beta1, float beta2,
                  float eps, float wd, float c1, float c2, bool decoupled) {
  // LAB 6 begin: adamw_update (one tensor's AdamW / Adam-L2 update)
  const float b1 = beta1, b2 = beta2, inv_c1 = 1.f / c1, inv_c2 = 1.f / c2;
  const float l2 = decoupled ? 0.f : wd, decay = decoupled ? wd : 0.f;
#pragma omp parallel for simd schedule(static) if (n > tensor::kParallelGrain)
  for (int64_t i = 0; i < n; ++i) {
    const float gi = g[i] + l2 * p[i];
    const float mi = b1 * m[i] + (1.f - b1) * gi;
    const float vi = b2 * v[i] + (1.f - b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] -= lr * ((mi * inv_c1) / (std::sqrt(vi * inv_c2) + eps) + decay * p[i]);
  }
  // LAB 6 end
}

}  // namespace cpu

namespace {

// Σ‖g‖² over CUDA gradients: one device reduction per tensor into its own slot of a small device
// buffer, then a single download, so the whole model costs one host synchronisation.
double device_sumsq(const std::vector<Tensor>& grads) {
  if (grads.empty()) return 0.0;
  Tensor part = Tensor::empty(Shape{static_cast<int64_t>(grads.size())}, Device::CUDA);
  for (size_t i = 0; i < grads.size(); ++i) cuda::sumsq_forward(part.data() + i, grads[i].data(), grads[i].numel());
  double sq = 0.0;
  for (float x : part.to_vector()) sq += x;  // per-tensor sums in float: relative error ~1e-7 each
  return sq;
}

}  // namespace

AdamW::AdamW(const std::vector<NamedTensor>& params, const AdamWConfig& cfg) : cfg_(cfg) {
  // LAB 6 begin: AdamW::AdamW (state only for trainable tensors)
  for (const NamedTensor& nt : params) {
    if (!nt.tensor.requires_grad()) continue;
    LR_CHECK(nt.tensor.is_contiguous(), "AdamW: parameter ", nt.name, " ", nt.tensor.shape(), " is not contiguous");
    Slot s{nt.name, nt.tensor, Tensor::zeros(nt.tensor.shape(), nt.tensor.device()),
           Tensor::zeros(nt.tensor.shape(), nt.tensor.device()), nt.tensor.ndim() >= 2};
    slots_.push_back(s);
  }
  // LAB 6 end
  for (const auto& kv : cfg_.lr_scale) {
    const std::string& name = kv.first;  // not a structured binding: C++17 lambdas cannot capture those
    const float scale = kv.second;
    auto it = std::find_if(slots_.begin(), slots_.end(), [&](const Slot& s) { return s.name == name; });
    LR_CHECK(it != slots_.end(), "AdamW: lr_scale names '", name, "', not a trainable parameter");
    LR_CHECK(std::isfinite(scale) && scale > 0.f, "AdamW: lr_scale of ", name, " is ", scale, ", must be > 0");
    it->lr_scale = scale;
  }
}

// The entries of the CUDA tensors this step updates, and the device copy of them the last launch read.
struct AdamW::DeviceTable {
  std::vector<cuda::AdamWEntry> host;
  Tensor device;  // host's bytes, in a float tensor of as many 4-byte words
  int64_t uploads = 0;
};

namespace {

bool same_entry(const cuda::AdamWEntry& a, const cuda::AdamWEntry& b) {
  return a.p == b.p && a.m == b.m && a.v == b.v && a.g == b.g && a.n == b.n && a.first_chunk == b.first_chunk &&
         a.lr_scale == b.lr_scale && a.wd == b.wd;
}

// The entries on the device: a float tensor holding their bytes, uploaded as any host tensor is.
Tensor upload(const std::vector<cuda::AdamWEntry>& entries) {
  static_assert(sizeof(cuda::AdamWEntry) % sizeof(float) == 0, "AdamWEntry is a whole number of floats");
  const auto words = static_cast<int64_t>(entries.size() * sizeof(cuda::AdamWEntry) / sizeof(float));
  Tensor host = Tensor::empty(Shape{words});
  std::memcpy(host.data(), entries.data(), entries.size() * sizeof(cuda::AdamWEntry));
  return host.to(Device::CUDA);
}

}  // namespace

void AdamW::step(float lr) {
  const bool on_cuda =
      std::any_of(slots_.begin(), slots_.end(), [](const Slot& s) { return s.p.device() == Device::CUDA; });
  if (on_cuda) return step_grouped(lr);
  step_each(lr);
}

// On CUDA a LoRA model's hundreds of small A and B matrices would cost a kernel launch each, more than
// their updates; here they are one launch of cuda::adamw_multi_update, the same math per element. The
// table is uploaded again only when a tensor, a gradient buffer (made at the first backward) or the set
// of tensors with a gradient changes: in a training run, at the first step and rarely after.
void AdamW::step_grouped(float lr) {
  ++t_;
  const float c1 = 1.f - std::pow(cfg_.beta1, static_cast<float>(t_));
  const float c2 = 1.f - std::pow(cfg_.beta2, static_cast<float>(t_));
  std::vector<cuda::AdamWEntry> entries;
  int64_t chunks = 0;
  for (Slot& s : slots_) {
    Tensor g = s.p.grad();
    if (!g.defined()) continue;
    LR_CHECK(g.device() == s.p.device(), "AdamW: gradient of ", s.name, " is on ", tensor::device_name(g.device()),
             ", the parameter on ", tensor::device_name(s.p.device()));
    const float wd = s.decay ? cfg_.weight_decay : 0.f;
    if (s.p.device() != Device::CUDA) {  // a model split across devices: its CPU tensors one by one
      cpu::adamw_update(s.p.data(), s.m.data(), s.v.data(), g.data(), s.p.numel(), lr * s.lr_scale, cfg_.beta1,
                        cfg_.beta2, cfg_.eps, wd, c1, c2, cfg_.decoupled);
      continue;
    }
    if (s.p.numel() == 0) continue;
    entries.push_back({s.p.data(), s.m.data(), s.v.data(), g.data(), s.p.numel(), chunks, s.lr_scale, wd});
    chunks += (s.p.numel() + cuda::kAdamWChunk - 1) / cuda::kAdamWChunk;
  }
  if (entries.empty()) return;
  if (!table_) table_ = std::make_shared<DeviceTable>();
  if (!std::equal(entries.begin(), entries.end(), table_->host.begin(), table_->host.end(), same_entry)) {
    table_->device = upload(entries);
    table_->host = std::move(entries);
    ++table_->uploads;
  }
  cuda::adamw_multi_update(reinterpret_cast<const cuda::AdamWEntry*>(table_->device.data()),
                           static_cast<int64_t>(table_->host.size()), chunks, lr, cfg_.beta1, cfg_.beta2, cfg_.eps, c1,
                           c2, cfg_.decoupled);
}

int64_t AdamW::device_table_uploads() const { return table_ ? table_->uploads : 0; }

void AdamW::step_each(float lr) {
  // LAB 6 begin: AdamW::step_each (bias corrections, decay only on matrices)
  ++t_;
  const float c1 = 1.f - std::pow(cfg_.beta1, static_cast<float>(t_));
  const float c2 = 1.f - std::pow(cfg_.beta2, static_cast<float>(t_));
  for (Slot& s : slots_) {
    Tensor g = s.p.grad();
    if (!g.defined()) continue;  // no gradient reached it this step
    LR_CHECK(g.device() == s.p.device(), "AdamW: gradient of ", s.name, " is on ", tensor::device_name(g.device()),
             ", the parameter on ", tensor::device_name(s.p.device()));
    const float wd = s.decay ? cfg_.weight_decay : 0.f;
    // m and v were allocated on the parameter's device
    tensor::run(s.p.device(), cpu::adamw_update, cuda::adamw_update, s.p.data(), s.m.data(), s.v.data(), g.data(),
                s.p.numel(), lr * s.lr_scale, cfg_.beta1, cfg_.beta2, cfg_.eps, wd, c1, c2, cfg_.decoupled);
  }
  // LAB 6 end
}

void AdamW::zero_grad() {
  for (Slot& s : slots_) s.p.zero_grad();
}

size_t AdamW::state_bytes() const {
  size_t b = 0;
  for (const Slot& s : slots_) b += 2 * static_cast<size_t>(s.p.numel()) * sizeof(float);
  return b;
}

std::map<std::string, Tensor> AdamW::state_dict() const {
  std::map<std::string, Tensor> out;
  for (const Slot& s : slots_) {
    out["m." + s.name] = s.m;
    out["v." + s.name] = s.v;
  }
  return out;
}

void AdamW::check_state_dict(const std::map<std::string, Tensor>& state, int64_t step) const {
  LR_CHECK(step >= 0, "AdamW state: step ", step, " is negative");
  for (const Slot& s : slots_) {
    for (auto [key, dst] : {std::pair<std::string, const Tensor*>{"m." + s.name, &s.m}, {"v." + s.name, &s.v}}) {
      auto it = state.find(key);
      LR_CHECK(it != state.end(), "AdamW state: tensor '", key, "' missing");
      LR_CHECK(it->second.shape() == dst->shape(), "AdamW state: tensor '", key, "' has shape ", it->second.shape(),
               ", expected ", dst->shape());
    }
  }
}

void AdamW::load_state_dict(const std::map<std::string, Tensor>& state, int64_t step) {
  check_state_dict(state, step);  // all or nothing
  for (Slot& s : slots_) {
    s.m.copy_(state.at("m." + s.name));
    s.v.copy_(state.at("v." + s.name));
  }
  t_ = step;
}

float clip_grad_norm(const std::vector<NamedTensor>& params, float max_norm) {
  double sq = 0.0;
  std::vector<Tensor> device_grads;  // reduced on the device, read back once
  for (const NamedTensor& p : params) {
    Tensor g = p.tensor.grad();
    if (!g.defined()) continue;
    if (g.device() == Device::CUDA) {
      device_grads.push_back(g);
      continue;
    }
    sq += autograd::cpu::sumsq(g.data(), g.numel());
  }
  sq += device_sumsq(device_grads);
  const float norm = static_cast<float>(std::sqrt(sq));
  if (norm > max_norm && norm > 0.f) {
    const float s = max_norm / norm;
    for (const NamedTensor& p : params) {
      Tensor g = p.tensor.grad();
      if (!g.defined()) continue;
      if (g.device() == Device::CUDA) {  // in place: each thread reads and writes only its own element
        cuda::scale_forward(g.data(), g.data(), s, g.numel());
        continue;
      }
      float* d = g.data();
      for (int64_t i = 0; i < g.numel(); ++i) d[i] *= s;
    }
  }
  return norm;
}

}  // namespace lowrank::optim
