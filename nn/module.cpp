#include "nn/module.h"

#include "tensor/error.h"

namespace lowrank::nn {

Tensor Init::normal(const Shape& s, float std) const {
  if (device == Device::Meta) return Tensor::empty(s, device);
  // Drawn on the host from the one Rng stream, then uploaded: a CUDA model and a CPU model built
  // from the same seed start from identical weights (and later layers see the same draws).
  Tensor t = Tensor::randn(s, rng, std);
  return device == Device::CPU ? t : t.to(device);
}

Tensor Init::constant(const Shape& s, float v) const { return Tensor::full(s, v, device); }  // filled in place

std::vector<NamedTensor> Module::named_parameters() {
  std::vector<NamedTensor> out;
  collect("", out);
  return out;
}

int64_t Module::num_parameters() {
  int64_t n = 0;
  for (const NamedTensor& p : named_parameters()) n += p.tensor.numel();
  return n;
}

int64_t Module::num_trainable_parameters() {
  int64_t n = 0;
  for (const NamedTensor& p : named_parameters())
    if (p.tensor.requires_grad()) n += p.tensor.numel();
  return n;
}

void Module::set_requires_grad(bool on) {
  for (NamedTensor& p : named_parameters()) p.tensor.requires_grad_(on);
}

void Module::zero_grad() {
  for (NamedTensor& p : named_parameters()) p.tensor.zero_grad();
}

Tensor dropout_if_training(const Tensor& x, float p, const Context& ctx) {
  if (!ctx.training || p == 0.f) return x;
  LR_CHECK(ctx.rng, "dropout: training with dropout ", p, " needs Context.rng");
  return autograd::dropout(x, p, *ctx.rng, true);
}

void KVCache::reorder(const std::vector<int32_t>& rows) {
  for (std::vector<Tensor>* list : {&k, &v})
    for (Tensor& t : *list) {
      if (!t.defined()) continue;
      const int64_t T = t.size(1), C = t.size(2);
      Tensor out = Tensor::empty({static_cast<int64_t>(rows.size()), T, C}, t.device());
      for (size_t b = 0; b < rows.size(); ++b) {
        LR_CHECK(rows[b] >= 0 && rows[b] < t.size(0), "KVCache::reorder: row ", rows[b], " of ", t.size(0));
        out.narrow(0, static_cast<int64_t>(b), 1).copy_(t.narrow(0, rows[b], 1));
      }
      t = out;
    }
}

void KVCache::clear() {
  k.clear();
  v.clear();
  positions = 0;
}

}  // namespace lowrank::nn
