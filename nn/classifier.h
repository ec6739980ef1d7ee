#pragma once
// Sequence classifier for GLUE-style tasks: the GPT stack run as a bidirectional encoder
// (config.causal = false), then a RoBERTa-style head on the first position:
//   logits = out_proj(tanh(dense(h[:, 0])))      names: classifier.dense, classifier.out_proj
// Batches are right-padded; lengths tell attention which keys are padding.
#include <memory>

#include "nn/gpt.h"

namespace lowrank::nn {

class Classifier : public Module {
 public:
  Classifier(const GPTConfig& cfg, Rng& rng, Device device = Device::CPU);  // causal false, n_classes > 0
  // ids (B,T) right-padded, lengths (B) in [1, T] -> logits (B, n_classes)
  Tensor forward(const std::vector<int32_t>& ids, int64_t B, int64_t T, const std::vector<int32_t>& lengths,
                 const Context& ctx);
  void collect(const std::string& prefix, std::vector<NamedTensor>& out) override;

  GPT encoder;
  std::unique_ptr<Linear> dense;     // C -> C
  std::unique_ptr<Linear> out_proj;  // C -> n_classes
};

}  // namespace lowrank::nn
