#include "nn/module.h"

namespace lowrank::nn {

Tensor Init::normal(const Shape& s, float std) const {
  if (device == Device::Meta) return Tensor::empty(s, device);
  Tensor t = Tensor::randn(s, rng, std);
  return device == Device::CPU ? t : t.to(device);
}

Tensor Init::constant(const Shape& s, float v) const { return Tensor::full(s, v, device); }

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

}  // namespace lowrank::nn
