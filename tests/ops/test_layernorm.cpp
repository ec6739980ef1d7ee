// layernorm over the last dim (autograd/layernorm.cpp; lab 2): a CPU row by hand, gradient checks,
// frozen parameters, errors and thread-count independence, then the op on CUDA tensors against the
// CPU op (skipped without a GPU).
#include "tests/test_util.h"

#ifdef LOWRANK_HAVE_CUDA
#include "tests/cuda_test_util.h"
#endif

using namespace lowrank;
using namespace lowrank::autograd;
using namespace lowrank::testing;

// ---- CPU ----

TEST_CASE("layernorm: a row by hand, gradients for x, w, b, optional bias, errors") {
  // x = (1, 2, 3, 4): μ = 2.5, σ² = 1.25, rstd = 1/√1.25001, xhat = (-1.5, -0.5, 0.5, 1.5)·rstd
  // y = xhat·(1, -1, 2, 0.5) + (0, 0.5, 0, -1)
  Tensor w = Tensor::from({1, -1, 2, 0.5f}, {4}), b = Tensor::from({0, 0.5f, 0, -1}, {4});
  check_values(layernorm(Tensor::from({1, 2, 3, 4}, {1, 4}), w, b), {-1.3416354f, 0.9472118f, 0.8944236f, -0.3291823f});
  Tensor x = param({2, 3, 5}, 120), wp = param({5}, 121), bp = param({5}, 122);
  check_grad([&] { return layernorm(x, wp, bp); }, {x, wp, bp});
  check_grad([&] { return layernorm(x, wp, Tensor()); }, {x, wp});
  check_grad([&] { return layernorm(transpose(x, 0, 1), wp, bp); }, {x, wp, bp});
  Tensor xs = param({4, 6}, 123, 5.f), ws = param({6}, 124), bs = param({6}, 125);  // large spread
  check_grad([&] { return layernorm(xs, ws, bs); }, {xs, ws, bs});

  std::string e = error_of([&] { layernorm(x, Tensor::zeros({4}), Tensor::zeros({4})); });
  CHECK(contains(e, "layernorm: x (2, 3, 5) does not match weight (4,) and bias (4,)"));
  CHECK(contains(error_of([&] { layernorm(x, wp, Tensor::zeros({4})); }), "bias (4,)"));
  CHECK(contains(error_of([&] { layernorm(x, wp, bp, -1.f); }), "layernorm: eps must be >= 0"));
}

TEST_CASE("layernorm: a frozen weight and bias get no gradient buffer") {
  Tensor x = param({3, 4}, 126);
  Tensor w = Tensor::full({4}, 1.f), b = Tensor::zeros({4});  // requires_grad off: frozen
  backward(sum(mul(layernorm(x, w, b), x)));
  CHECK(x.grad().defined());
  CHECK_FALSE(w.grad().defined());
  CHECK_FALSE(b.grad().defined());
}

TEST_CASE("layernorm: bit-identical with 1 and 2 threads") {
  Tensor x = param({64, 512}, 140), w = param({512}, 141), b = param({512}, 142);  // above kParallelGrain
  check_same_with_1_and_2_threads([&] { return layernorm(x, w, b); }, {x, w, b});
}

// ---- CUDA: layernorm 1e-4 relative (docs/cuda.md) ----
#ifdef LOWRANK_HAVE_CUDA

namespace ag = lowrank::autograd;
using namespace lowrank::cudatest;

TEST_CASE("cuda: layernorm op on CUDA tensors matches the CPU op (bias, no bias, strided input)") {
  LR_SKIP_WITHOUT_GPU();
  const int64_t C = 300;
  // 0 bias, 1 no bias, 2 bias + strided x; 3 bias and 4 no bias with every gradient starting from
  // the same random G0 on both devices (the backward launchers accumulate; a nullptr db is skipped).
  for (int variant = 0; variant < 5; ++variant) {
    CAPTURE(variant);
    const bool bias = variant != 1 && variant != 4, strided = variant == 2, accumulate = variant >= 3;
    Tensor x = leaf(strided ? Shape{9, 2, C} : Shape{2, 9, C}, 50, 2.f), w = leaf({C}, 51);
    Tensor b = bias ? leaf({C}, 52) : Tensor(), seed = randn({2, 9, C}, 53);
    Tensor dx = dleaf(x), dw = dleaf(w), db = bias ? dleaf(b) : Tensor();
    if (accumulate) {
      seed_grad(x, dx, 54);
      seed_grad(w, dw, 55);
      if (bias) seed_grad(b, db, 56);
    }
    // Strided: a transposed view, which the op compacts (a recorded copy) on either device. Each
    // device's graph is recorded after the other's backward (which clears the tape).
    Tensor y = ag::layernorm(strided ? ag::transpose(x, 0, 1) : x, w, b, 1e-5f);
    ag::backward(y, seed);
    Tensor dy = ag::layernorm(strided ? ag::transpose(dx, 0, 1) : dx, dw, db, 1e-5f);
    CHECK(dy.device() == Device::CUDA);
    ag::backward(dy, dev(seed));
    expect_close(dy, y, 1e-4, 1e-5, "forward");
    expect_grad(dx, x, 1e-4, 1e-5, "dx");
    expect_grad(dw, w, 1e-4, 1e-5, "dw");
    if (bias) expect_grad(db, b, 1e-4, 1e-5, "db");
  }
  Tensor dx = dleaf(randn({4, 8}, 54)), w_cpu = randn({8}, 55);
  CHECK_THROWS_AS(ag::layernorm(dx, w_cpu, Tensor()), lowrank::Error);  // mixed devices
}

#endif  // LOWRANK_HAVE_CUDA
