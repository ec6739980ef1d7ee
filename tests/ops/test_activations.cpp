// gelu, relu, tanh and reciprocal (autograd/activations.cpp): CPU values, gradient checks and strided inputs,
// then the same ops on CUDA tensors against the CPU (cudatest::check_on_cuda; skipped without a GPU).
#include "tests/test_util.h"

#ifdef LOWRANK_HAVE_CUDA
#include "tests/cuda_test_util.h"
#endif

using namespace lowrank;
using namespace lowrank::autograd;
using namespace lowrank::testing;

// ---- CPU ----

namespace {

// A (2,3,5) parameter whose entries are at least 0.1 away from 0, so ±1e-2 steps never cross relu's kink.
Tensor away_from_zero(uint64_t seed) {
  Tensor x = param({2, 3, 5}, seed);
  float* p = x.data();
  for (int64_t i = 0; i < x.numel(); ++i) p[i] += p[i] >= 0.f ? 0.1f : -0.1f;
  return x;
}

}  // namespace

TEST_CASE("gelu: GPT-2 tanh form values, gradients, strided input") {
  // 0.5x(1 + tanh(√(2/π)(x + 0.044715x³))) evaluated in double precision by hand.
  check_values(gelu(Tensor::from({1, -1, 0, 2, -3}, {5})), {0.8411920f, -0.1588080f, 0.f, 1.9545977f, -0.0036374f});
  Tensor x = param({2, 3, 5}, 100);
  check_grad([&] { return gelu(x); }, {x});
  check_grad([&] { return gelu(transpose(x, 0, 2)); }, {x});
  CHECK(gelu(Tensor::full(Shape(), 1.f)).item() == doctest::Approx(0.8411920f));  // any shape, even ()
}

TEST_CASE("relu: values, gradients away from the kink, zero gradient below 0") {
  check_values(relu(Tensor::from({-2, -0.5f, 0, 0.5f, 3}, {5})), {0, 0, 0, 0.5f, 3});
  Tensor x = away_from_zero(101);
  check_grad([&] { return relu(x); }, {x});
  Tensor y = Tensor::from({-1, 2}, {2});
  y.requires_grad_(true);
  backward(sum(relu(y)));
  check_values(y.grad(), {0, 1});
}

TEST_CASE("tanh: values and gradients") {
  check_values(autograd::tanh(Tensor::from({0.5f, -2, 0}, {3})), {0.4621172f, -0.9640276f, 0});
  Tensor x = param({2, 3, 5}, 102);
  check_grad([&] { return autograd::tanh(x); }, {x});
}

TEST_CASE("reciprocal: values and gradients (away from 0)") {
  check_values(autograd::reciprocal(Tensor::from({0.5f, -2, 4}, {3})), {2.f, -0.5f, 0.25f});
  Rng rng(103);
  Tensor x = Tensor::randn({2, 3, 5}, rng, 0.3f);
  for (float* p = x.data(); p != x.data() + x.numel(); ++p) *p += *p < 0.f ? -1.f : 1.f;  // |x| >= 1
  x.requires_grad_(true);
  check_grad([&] { return autograd::reciprocal(x); }, {x});
}

// ---- CUDA: activations 1e-5 relative (docs/cuda.md) ----
#ifdef LOWRANK_HAVE_CUDA

namespace ag = lowrank::autograd;
using namespace lowrank::cudatest;

namespace {

// The CPU's GELU uses tensor::fast_tanh (absolute error ~1e-7; tanhf on the device), which the
// gradient multiplies by up to |x|·k(1 + 3a·x²): an absolute floor of 1e-5.
const Tol kGeluGrad{1e-5, 1e-5};

}  // namespace

TEST_CASE("cuda: gelu, relu, tanh, reciprocal ops dispatch to the device") {
  LR_SKIP_WITHOUT_GPU();
  const std::vector<OpFn> acts = {
      [](const std::vector<Tensor>& t) { return ag::gelu(t[0]); },
      [](const std::vector<Tensor>& t) { return ag::relu(t[0]); },
      [](const std::vector<Tensor>& t) { return ag::tanh(t[0]); },
      [](const std::vector<Tensor>& t) { return ag::reciprocal(ag::add(ag::mul(t[0], t[0]), t[1])); },  // 1/(x² + 1)
  };
  for (size_t k = 0; k < acts.size(); ++k) {
    const std::string name = k == 0 ? "gelu" : k == 1 ? "relu" : k == 2 ? "tanh" : "reciprocal";
    if (k == 3) {
      check_on_cuda(acts[k], {leaf({5000}, 20, 2.f), Tensor::full({5000}, 1.f)}, kElementwise, kElementwise, name);
      continue;
    }
    check_on_cuda(acts[k], {leaf({5000}, 20, 2.f)}, kElementwise, k == 0 ? kGeluGrad : kElementwise, name);
  }
  check_on_cuda([](const std::vector<Tensor>& t) { return ag::gelu(ag::transpose(t[0], 0, 1)); },
                {leaf({30, 40}, 21, 2.f)}, kElementwise, kGeluGrad, "gelu of a transposed view");
}

#endif  // LOWRANK_HAVE_CUDA
