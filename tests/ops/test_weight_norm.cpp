// weight_norm, DoRA's norm per output feature (autograd/weight_norm.cpp; lab 8): rows by hand, a
// gradient check (also through a strided view and with a frozen input), the zero row, errors and
// thread-count independence, then the op on CUDA tensors against the CPU op (skipped without a GPU).
#include "tests/test_util.h"

#ifdef LOWRANK_HAVE_CUDA
#include "tests/cuda_test_util.h"
#endif

using namespace lowrank;
using namespace lowrank::autograd;
using namespace lowrank::testing;

// ---- CPU ----

TEST_CASE("weight_norm: rows by hand, gradient checks, a zero row, errors") {
  // rows (3, 4) and (1, 2, 2): norms 5 and 3; d‖w‖/dw = w / ‖w‖
  Tensor w = Tensor::from({3, 4, 0, 1, 2, 2}, {2, 3});
  w.requires_grad_(true);
  Tensor n = weight_norm(w);
  CAPTURE(n.shape());
  check_values(n, {5.f, 3.f});
  backward(n, Tensor::from({1.f, -2.f}, {2}));
  check_values(w.grad(), {0.6f, 0.8f, 0.f, -2.f / 3, -4.f / 3, -4.f / 3});

  Tensor p = param({7, 5}, 160), q = param({5, 7}, 161);
  check_grad([&] { return weight_norm(p); }, {p});
  check_grad([&] { return weight_norm(transpose(q, 0, 1)); }, {q});  // strided: compacted on the tape
  // DoRA's use: the norm of W0 + B A, which reaches B and A through the matmul
  Tensor B = param({7, 2}, 162), A = param({2, 5}, 163);
  check_grad([&] { return mul(weight_norm(add(p, matmul(B, A))), param({7}, 164)); }, {p, B, A});

  Tensor z = Tensor::zeros({2, 3});  // a zero row has no direction: gradient 0, not NaN
  z.requires_grad_(true);
  backward(sum(weight_norm(z)));
  check_values(z.grad(), {0, 0, 0, 0, 0, 0});

  CHECK(contains(error_of([&] {
                   weight_norm(Tensor::zeros({2, 3, 4}));
                 }),
                 "weight_norm: expected a weight (N, C), got (2, 3, 4)"));
}

TEST_CASE("weight_norm: a frozen weight records nothing, and bit-identical with 1 and 2 threads") {
  Tensor frozen = Tensor::full({3, 4}, 2.f);
  Tensor n = weight_norm(frozen);
  CHECK_FALSE(n.requires_grad());
  check_values(n, {4.f, 4.f, 4.f});
  Tensor w = param({512, 96}, 165);  // above kParallelGrain
  check_same_with_1_and_2_threads([&] { return weight_norm(w); }, {w});
}

// ---- CUDA: weight_norm 1e-5 relative (double row sums on both devices) ----
#ifdef LOWRANK_HAVE_CUDA

namespace ag = lowrank::autograd;
using namespace lowrank::cudatest;

TEST_CASE("cuda: weight_norm op on CUDA tensors matches the CPU op (accumulating, a zero row)") {
  LR_SKIP_WITHOUT_GPU();
  const int64_t N = 300, C = 700;  // rows longer than a block: the strided row loop
  Tensor w = leaf({N, C}, 60), seed = randn({N}, 61);
  w.narrow(0, 5, 1).fill_(0.f);  // a zero row
  Tensor dw = dleaf(w);
  seed_grad(w, dw, 62);  // the backward launcher accumulates onto G0
  Tensor n = ag::weight_norm(w);
  ag::backward(n, seed);
  Tensor dn = ag::weight_norm(dw);
  CHECK(dn.device() == Device::CUDA);
  ag::backward(dn, dev(seed));
  expect_close(dn, n, 1e-5, 1e-6, "forward");
  expect_grad(dw, w, 1e-5, 1e-6, "dw");
}

#endif
