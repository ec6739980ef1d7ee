// The smallest use of an installed lowrank: a tensor, a recorded op, its gradient. Prints the values
// and exits 0 when they are the hand-computed ones (tests/consumer/check.cmake runs it).
#include <cmath>
#include <cstdio>

#include "autograd/ops.h"
#include "tensor/tensor.h"

int main() {
  using lowrank::tensor::Tensor;
  Tensor a = Tensor::from({1.f, 2.f, 3.f, 4.f}, {2, 2});
  Tensor b = Tensor::from({5.f, 6.f, 7.f, 8.f}, {2, 2});
  a.requires_grad_();
  Tensor y = lowrank::autograd::matmul(a, b);              // [[19, 22], [43, 50]]
  lowrank::autograd::backward(lowrank::autograd::sum(y));  // d sum(a·b) / da = 1·bᵀ: rows [11, 15]
  const float y01 = y.at({0, 1}), g10 = a.grad().at({1, 0});
  std::printf("consumer: (a·b)[0][1] = %g, d sum / d a[1][0] = %g\n", y01, g10);
  return (std::fabs(y01 - 22.f) < 1e-5f && std::fabs(g10 - 11.f) < 1e-5f) ? 0 : 1;
}
