#include "nn/layers.h"

namespace lowrank::nn {

Linear::Linear(int64_t in, int64_t out, bool has_bias, const Init& init, float std)
    : weight(init.normal({out, in}, std)) {
  if (has_bias) bias = init.constant({out}, 0.f);
  set_requires_grad(true);
}

Tensor Linear::forward(const Tensor& x, const Context&) { return autograd::linear(x, weight, bias); }

void Linear::collect(const std::string& prefix, std::vector<NamedTensor>& out) {
  out.push_back({prefix + "weight", weight});
  if (bias.defined()) out.push_back({prefix + "bias", bias});
}

LayerNorm::LayerNorm(int64_t C, float eps_, const Init& init)
    : weight(init.constant({C}, 1.f)), bias(init.constant({C}, 0.f)), eps(eps_) {
  set_requires_grad(true);
}

void LayerNorm::collect(const std::string& prefix, std::vector<NamedTensor>& out) {
  out.push_back({prefix + "weight", weight});
  out.push_back({prefix + "bias", bias});
}

Embedding::Embedding(int64_t V, int64_t C, const Init& init, float std) : weight(init.normal({V, C}, std)) {
  set_requires_grad(true);
}

Tensor Embedding::forward(const std::vector<int32_t>& ids, const Shape& ids_shape) const {
  Tensor y = autograd::embedding(weight, ids, ids_shape);
  return delta && !delta->merged() ? autograd::add(y, delta->lookup(ids, ids_shape)) : y;
}

Tensor Embedding::project(const Tensor& h) const {
  Tensor logits = autograd::matmul(h, weight, false, true);  // (..., C)·(V, C)ᵀ -> (..., V)
  return delta && !delta->merged() ? autograd::add(logits, delta->head(h)) : logits;
}

void Embedding::collect(const std::string& prefix, std::vector<NamedTensor>& out) {
  out.push_back({prefix + "weight", weight});
  if (delta) delta->collect(prefix, out);
}

}  // namespace lowrank::nn
