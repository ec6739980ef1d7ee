// add_columns (autograd/add_columns.cpp), y[..., off_i : off_i + w_i] += s·part_i (LoRA's q and v
// updates into a fused qkv): CPU values, gradient checks and errors, then the op on CUDA tensors
// against the CPU (cudatest::check_on_cuda; skipped without a GPU).
#include "tests/test_util.h"

#ifdef LOWRANK_HAVE_CUDA
#include "tests/cuda_test_util.h"
#endif

using namespace lowrank;
using namespace lowrank::autograd;
using namespace lowrank::testing;

// ---- CPU ----

TEST_CASE("add_columns: values, gradients for y and every part, errors") {
  Tensor y = Tensor::from({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor p = Tensor::from({10, 20}, {2, 1});
  check_values(add_columns(y, {p}, {2}, 0.5f), {1, 2, 8, 4, 5, 16});
  check_values(add_columns(y, {}, {}, 2.f), {1, 2, 3, 4, 5, 6});
  Tensor Y = param({2, 3, 6}, 70), q = param({2, 3, 2}, 71), v = param({2, 3, 2}, 72);
  check_grad([&] { return add_columns(Y, {q, v}, {0, 4}, 1.7f); }, {Y, q, v});
  Tensor base = param({3, 2, 6}, 73);  // a (2, 3, 6) transposed view of it: gradient through the view
  check_grad([&] { return add_columns(transpose(base, 0, 1), {q}, {3}, -0.5f); }, {base, q});
  CHECK(error_of([&] { add_columns(Y, {q, v}, {0, 1}, 1.f); }).find("overlap") != std::string::npos);
  CHECK(error_of([&] { add_columns(Y, {q}, {5}, 1.f); }).find("does not fit in y (2, 3, 6)") != std::string::npos);
  CHECK(error_of([&] { add_columns(Y, {param({2, 4, 2}, 74)}, {0}, 1.f); }).find("in dim 1") != std::string::npos);
}

// ---- CUDA: elementwise tolerance 1e-5 relative (docs/cuda.md) ----
#ifdef LOWRANK_HAVE_CUDA

namespace ag = lowrank::autograd;
using namespace lowrank::cudatest;

TEST_CASE("cuda: add_columns on a fused-qkv-shaped tensor (LoRA's q and v updates)") {
  LR_SKIP_WITHOUT_GPU();
  const int64_t B = 2, T = 7, C = 24;
  const OpFn qv = [C](const std::vector<Tensor>& t) { return ag::add_columns(t[0], {t[1], t[2]}, {0, 2 * C}, 0.5f); };
  check_on_cuda(qv, {leaf({B, T, 3 * C}, 10), leaf({B, T, C}, 11), leaf({B, T, C}, 12)}, kElementwise, kElementwise,
                "add_columns q and v");
  // frozen y (the base model's output under LoRA) and one frozen part
  check_on_cuda(qv, {randn({B, T, 3 * C}, 13), leaf({B, T, C}, 14), randn({B, T, C}, 15)}, kElementwise, kElementwise,
                "add_columns frozen y");
  // a strided part: a slice of a wider tensor, made contiguous on the device
  check_on_cuda(
      [C](const std::vector<Tensor>& t) { return ag::add_columns(t[0], {ag::slice(t[1], 2, 1, C)}, {C}, -2.f); },
      {leaf({B, T, 3 * C}, 16), leaf({B, T, C + 3}, 17)}, kElementwise, kElementwise, "add_columns strided part");
}

#endif  // LOWRANK_HAVE_CUDA
