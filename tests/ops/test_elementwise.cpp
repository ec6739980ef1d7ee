// add, sub, mul and scale (autograd/elementwise.cpp): CPU values with row broadcast, gradient checks
// and errors, then the same ops on CUDA tensors against the CPU (cudatest::check_on_cuda; skipped
// without a GPU).
#include "tests/test_util.h"

#ifdef LOWRANK_HAVE_CUDA
#include "tests/cuda_test_util.h"
#endif

using namespace lowrank;
using namespace lowrank::autograd;
using namespace lowrank::testing;

// ---- CPU ----

TEST_CASE("add/sub/mul: values with row broadcast, gradients, and shape errors") {
  Tensor a = Tensor::from({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = Tensor::from({10, 20, 30}, {3});
  check_values(add(a, b), {11, 22, 33, 14, 25, 36});
  check_values(sub(a, b), {-9, -18, -27, -6, -15, -24});
  check_values(mul(a, b), {10, 40, 90, 40, 100, 180});
  check_values(scale(a, -2.f), {-2, -4, -6, -8, -10, -12});
  Tensor x = param({2, 3, 4}, 30), y = param({2, 3, 4}, 31), bias = param({4}, 32), row = param({3, 4}, 33);
  check_grad([&] { return add(x, y); }, {x, y});
  check_grad([&] { return add(x, bias); }, {x, bias});
  check_grad([&] { return sub(x, row); }, {x, row});
  check_grad([&] { return mul(x, y); }, {x, y});
  check_grad([&] { return mul(x, bias); }, {x, bias});
  check_grad([&] { return scale(x, 0.37f); }, {x});
  std::string e = error_of([&] { add(x, Tensor::zeros({3})); });
  CHECK(e.find("add: cannot broadcast (3,) onto (2, 3, 4)") != std::string::npos);
  CHECK(error_of([&] { mul(bias, x); }).find("mul: cannot broadcast") != std::string::npos);
}

// ---- CUDA: elementwise tolerance 1e-5 relative (docs/cuda.md) ----
#ifdef LOWRANK_HAVE_CUDA

namespace ag = lowrank::autograd;
using namespace lowrank::cudatest;

TEST_CASE("cuda: add, sub, mul (same shape, bias row, strided input) and scale dispatch to the device") {
  LR_SKIP_WITHOUT_GPU();
  const std::vector<OpFn> binaries = {
      [](const std::vector<Tensor>& t) { return ag::add(t[0], t[1]); },
      [](const std::vector<Tensor>& t) { return ag::sub(t[0], t[1]); },
      [](const std::vector<Tensor>& t) { return ag::mul(t[0], t[1]); },
  };
  for (size_t k = 0; k < binaries.size(); ++k) {
    const std::string name = std::string(k == 0 ? "add" : k == 1 ? "sub" : "mul");
    check_on_cuda(binaries[k], {leaf({3, 5, 37}, 1), leaf({3, 5, 37}, 2)}, kElementwise, kElementwise, name);
    check_on_cuda(binaries[k], {leaf({3, 5, 37}, 3), leaf({37}, 4)}, kElementwise, {1e-5, 1e-5}, name + " bias row");
    check_on_cuda(binaries[k], {leaf({4, 37}, 5), randn({37}, 6)}, kElementwise, kElementwise, name + " frozen b");
  }
  // a strided a (a transposed view is made contiguous by a recorded copy on the device)
  check_on_cuda([](const std::vector<Tensor>& t) { return ag::add(ag::transpose(t[0], 0, 1), t[1]); },
                {leaf({37, 6}, 7), leaf({37}, 8)}, kElementwise, {1e-5, 1e-5}, "add of a transposed view");
  check_on_cuda([](const std::vector<Tensor>& t) { return ag::scale(t[0], -1.5f); }, {leaf({1000}, 9)}, kElementwise,
                kElementwise, "scale");
}

#endif  // LOWRANK_HAVE_CUDA
