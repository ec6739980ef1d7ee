#include "nn/classifier.h"

#include "tensor/error.h"

namespace lowrank::nn {

using namespace lowrank::autograd;

namespace {
const GPTConfig& checked(const GPTConfig& cfg) {
  LR_CHECK(!cfg.causal, "Classifier: config ", cfg.name, " is causal; the classifier needs causal = false");
  LR_CHECK(cfg.n_classes > 0, "Classifier: config ", cfg.name, " has n_classes = ", cfg.n_classes);
  return cfg;
}
}  // namespace

Classifier::Classifier(const GPTConfig& cfg, Rng& rng, Device device)
    : encoder(checked(cfg), rng, device),
      dense(std::make_unique<Linear>(cfg.n_embd, cfg.n_embd, true, Init{rng, device})),
      out_proj(std::make_unique<Linear>(cfg.n_embd, cfg.n_classes, true, Init{rng, device})) {}

Tensor Classifier::forward(const std::vector<int32_t>& ids, int64_t B, int64_t T, const std::vector<int32_t>& lengths,
                           const Context& ctx) {
  Context c = ctx;
  c.key_lengths = &lengths;
  Tensor h = encoder.hidden(ids, B, T, c);                                    // (B,T,C)
  Tensor first = reshape(slice(h, 1, 0, 1), {B, encoder.config.n_embd});      // (B,C)
  return out_proj->forward(autograd::tanh(dense->forward(first, c)), c);       // (B,n_classes)
}

void Classifier::collect(const std::string& prefix, std::vector<NamedTensor>& out) {
  encoder.collect(prefix, out);
  dense->collect(prefix + "classifier.dense.", out);
  out_proj->collect(prefix + "classifier.out_proj.", out);
}

}  // namespace lowrank::nn
