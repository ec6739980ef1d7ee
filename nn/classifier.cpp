#include "nn/classifier.h"

#include "nn/checkpoint.h"
#include "tensor/error.h"

namespace lowrank::nn {

using namespace lowrank::autograd;

namespace {
const GPTConfig& checked(const GPTConfig& cfg, Pooling pooling) {
  LR_CHECK(cfg.n_classes > 0, "Classifier: config ", cfg.name, " has n_classes = ", cfg.n_classes);
  LR_CHECK(!(cfg.causal && pooling == Pooling::First), "Classifier: config ", cfg.name,
           " is causal: first-token pooling would see only the first token (use last-token pooling)");
  return cfg;
}

Pooling resolve(const GPTConfig& cfg, Pooling p) {
  if (p != Pooling::Auto) return p;
  return cfg.causal ? Pooling::Last : Pooling::First;
}

// h (B,T,C) -> (B,C): row b is h[b, lengths[b] - 1]. A row lookup in the flattened (B·T, C) view,
// so backward scatters the gradient into exactly those positions.
Tensor last_rows(const Tensor& h, const std::vector<int32_t>& lengths, int64_t B, int64_t T, int64_t C) {
  std::vector<int32_t> rows(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) rows[static_cast<size_t>(b)] = static_cast<int32_t>(b * T + lengths[b] - 1);
  return embedding(reshape(h, {B * T, C}), rows, {B});
}

// h (B,T,C) -> (B,C): Σ_t w[b,t] h[b,t] with w = 1/lengths[b] on real positions, 0 on padding,
// one batched (B,1,T)·(B,T,C) product.
Tensor mean_rows(const Tensor& h, const std::vector<int32_t>& lengths, int64_t B, int64_t T, int64_t C) {
  std::vector<float> w(static_cast<size_t>(B * T), 0.f);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < lengths[b]; ++t) w[static_cast<size_t>(b * T + t)] = 1.f / static_cast<float>(lengths[b]);
  return reshape(matmul(Tensor::from(w, {B, 1, T}).to(h.device()), h), {B, C});
}
}  // namespace

Classifier::Classifier(const GPTConfig& cfg, Rng& rng, Device device, Pooling pool)
    : encoder(checked(cfg, pool), rng, device),
      dense(std::make_unique<Linear>(cfg.n_embd, cfg.n_embd, true, Init{rng, device})),
      out_proj(std::make_unique<Linear>(cfg.n_embd, cfg.n_classes, true, Init{rng, device})),
      pooling(resolve(cfg, pool)) {}

Tensor Classifier::forward(const std::vector<int32_t>& ids, int64_t B, int64_t T, const std::vector<int32_t>& lengths,
                           const Context& ctx) {
  LR_CHECK(static_cast<int64_t>(lengths.size()) == B, "Classifier: ", lengths.size(), " lengths for batch ", B);
  for (int32_t n : lengths) LR_CHECK(n >= 1 && n <= T, "Classifier: length ", n, " outside [1, ", T, "]");
  Context c = ctx;
  c.key_lengths = &lengths;
  const int64_t C = encoder.config.n_embd;
  Tensor h = encoder.hidden(ids, B, T, c);  // (B,T,C)
  Tensor pooled = pooling == Pooling::Last   ? last_rows(h, lengths, B, T, C)
                  : pooling == Pooling::Mean ? mean_rows(h, lengths, B, T, C)
                                             : reshape(slice(h, 1, 0, 1), {B, C});  // (B,C)
  return out_proj->forward(autograd::tanh(dense->forward(pooled, c)), c);           // (B,n_classes)
}

void Classifier::collect(const std::string& prefix, std::vector<NamedTensor>& out) {
  encoder.collect(prefix, out);
  dense->collect(prefix + "classifier.dense.", out);
  out_proj->collect(prefix + "classifier.out_proj.", out);
}

Pooling pooling_by_name(const std::string& name) {
  if (name == "auto") return Pooling::Auto;
  if (name == "first") return Pooling::First;
  if (name == "last") return Pooling::Last;
  if (name == "mean") return Pooling::Mean;
  throw Error(cat("unknown pooling '", name, "' (one of auto, first, last, mean)"));
}

std::unique_ptr<Classifier> classifier_from_gpt(const std::string& path, int64_t n_classes, Rng& rng, float dropout,
                                                Pooling pooling, Device device) {
  Pretrained p = read_pretrained(path);
  GPTConfig cfg = p.config;
  cfg.n_classes = n_classes;
  if (dropout >= 0.f) cfg.dropout = dropout;
  auto clf = std::make_unique<Classifier>(cfg, rng, device, pooling);
  load_state_dict(clf->encoder, p.tensors, path);
  return clf;
}

}  // namespace lowrank::nn
