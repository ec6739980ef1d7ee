// dropout with a mask drawn from a Philox key (autograd/dropout.cpp): CPU determinism per seed,
// the identity cases, the kept fraction and scale, gradient checks and errors, then the op on CUDA
// tensors against the CPU op (skipped without a GPU).
#include <cmath>

#include "tests/test_util.h"

#ifdef LOWRANK_HAVE_CUDA
#include "tests/cuda_test_util.h"
#endif

using namespace lowrank;
using namespace lowrank::autograd;
using namespace lowrank::testing;

// ---- CPU ----

TEST_CASE("dropout: the same seed draws the same mask, another seed another") {
  Tensor x = Tensor::full({1000}, 1.f);
  Rng a(42), b(42), c(43);
  std::vector<float> ya = dropout(x, 0.5f, a).to_vector();
  CHECK(ya == dropout(x, 0.5f, b).to_vector());
  CHECK(ya != dropout(x, 0.5f, c).to_vector());
}

TEST_CASE("dropout: p = 0 and eval mode return x itself and record nothing") {
  Tensor x = param({4, 5}, 110);
  Rng rng(1);
  tape().clear();
  Tensor y0 = dropout(x, 0.f, rng);
  Tensor ye = dropout(x, 0.7f, rng, /*training=*/false);
  CHECK(tape().size() == 0);
  CHECK(y0.slot() == x.slot());
  CHECK(ye.slot() == x.slot());
  CHECK(ye.to_vector() == x.to_vector());
}

TEST_CASE("dropout: keeps about 1-p of 100k elements and scales them by 1/(1-p)") {
  const float p = 0.3f;
  Tensor x = Tensor::full({100000}, 1.f);
  Rng rng(7);
  std::vector<float> y = dropout(x, p, rng).to_vector();
  int64_t kept = 0;
  bool scaled = true;
  for (float v : y) {
    if (v != 0.f) ++kept;
    scaled = scaled && (v == 0.f || v == doctest::Approx(1.0 / (1.0 - p)).epsilon(1e-6));
  }
  CHECK(std::fabs(double(kept) / y.size() - (1.0 - p)) < 0.01);  // std of the fraction is ~0.0015
  CHECK(scaled);
}

TEST_CASE("dropout: gradcheck with the mask redrawn from the same seed, invalid p") {
  Tensor x = param({3, 7}, 111);
  check_grad(
      [&] {
        Rng rng(5);  // re-created each call: every evaluation uses the same mask
        return dropout(x, 0.4f, rng);
      },
      {x});
  Rng rng(1);
  CHECK(contains(error_of([&] { dropout(x, 1.f, rng); }), "dropout: p must be in [0, 1), got 1"));
  CHECK(contains(error_of([&] { dropout(x, -0.1f, rng); }), "dropout: p must be in [0, 1)"));
}

// ---- CUDA: the same mask, one multiply per element: exact forward (docs/cuda.md) ----
#ifdef LOWRANK_HAVE_CUDA

namespace ag = lowrank::autograd;
using namespace lowrank::cudatest;

TEST_CASE("cuda: dropout op on CUDA tensors drops the same units as the CPU op for the same seed") {
  LR_SKIP_WITHOUT_GPU();
  const float p = 0.3f;
  // (3, 1000); then (3, 1001): 3003 elements, not a multiple of 4, so the last Philox group is
  // partial, with the gradient starting from one random G0 on both devices (the launcher accumulates).
  for (int64_t cols : {int64_t(1000), int64_t(1001)}) {
    CAPTURE(cols);
    Tensor x = leaf({3, cols}, 70), seed = randn({3, cols}, 71);
    Tensor dx = dleaf(x);
    if (cols == 1001) seed_grad(x, dx, 72);
    Rng rng_cpu(73), rng_gpu(73);
    Tensor y = ag::dropout(x, p, rng_cpu, true);
    ag::backward(y, seed);
    Tensor dy = ag::dropout(dx, p, rng_gpu, true);
    CHECK(dy.device() == Device::CUDA);
    CHECK(dy.to_vector() == y.to_vector());  // same mask, one multiply per element: exact
    ag::backward(dy, dev(seed));
    expect_grad(dx, x, 1e-6, 1e-7, "dx");
    CHECK(rng_gpu.uniform() == rng_cpu.uniform());  // both drew the same number of values
    // Evaluation (and p = 0) is the identity on the device too: x itself, no mask drawn.
    Tensor same = ag::dropout(dx, p, rng_gpu, false);
    CHECK(same.shares_storage(dx));
  }
}

#endif  // LOWRANK_HAVE_CUDA
