// cross_entropy with label smoothing, ignore_index and a row mask (autograd/cross_entropy.cpp; lab 3):
// CPU values by hand, gradient checks, the all-ignored case, errors and thread-count independence,
// then the op on CUDA logits against the CPU op (skipped without a GPU).
#include "tests/test_util.h"

#ifdef LOWRANK_HAVE_CUDA
#include "tests/cuda_test_util.h"
#endif

using namespace lowrank;
using namespace lowrank::autograd;
using namespace lowrank::testing;

// ---- CPU ----

TEST_CASE("cross_entropy: 2x3 values by hand with smoothing, ignore_index and a mask") {
  // Rows (1, 2, 3) -> target 2 and (0.5, -1, 2) -> target 1; lse = 3.4076060, 2.2413113.
  // ℓ_i = lse_i - (1-eps)·x_it - (eps/V)·Σ_v x_iv:
  //   eps = 0:    ℓ = (0.4076060, 3.2413113), mean 1.8244586
  //   eps = 0.1:  ℓ = (0.5076060, 3.0913113), mean 1.7994586
  Tensor logits = Tensor::from({1, 2, 3, 0.5f, -1, 2}, {2, 3});
  CHECK(cross_entropy(logits, {2, 1}).item() == doctest::Approx(1.8244586));
  CrossEntropyOptions smooth;
  smooth.label_smoothing = 0.1f;
  CHECK(cross_entropy(logits, {2, 1}, smooth).item() == doctest::Approx(1.7994586));
  CHECK(cross_entropy(logits, {2, -100}).item() == doctest::Approx(0.4076060));  // row 1 ignored
  CrossEntropyOptions custom;
  custom.ignore_index = 0;
  CHECK(cross_entropy(logits, {0, 1}, custom).item() == doctest::Approx(3.2413113));  // row 0 ignored
  CrossEntropyOptions masked;
  masked.mask = {1.f, 3.f};  // (1·0.4076060 + 3·3.2413113) / 4
  CHECK(cross_entropy(logits, {2, 1}, masked).item() == doctest::Approx(2.5328850));
  CHECK(cross_entropy(Tensor::from({1001, 1002, 1003}, {1, 3}), {2}).item() == doctest::Approx(0.4076060));
}

TEST_CASE("cross_entropy: equals the mean of -log_softmax at the targets when eps = 0") {
  Tensor x = param({2, 3, 7}, 130);
  std::vector<int32_t> t = {0, 6, 3, 3, 1, 5};
  std::vector<float> ls = log_softmax(x).to_vector();
  double ref = 0.0;
  for (int i = 0; i < 6; ++i) ref -= ls[i * 7 + t[i]];
  CHECK(cross_entropy(x, t).item() == doctest::Approx(ref / 6).epsilon(1e-6));
}

TEST_CASE("cross_entropy: gradients with smoothing, ignored rows and a mask") {
  Tensor x = param({2, 3, 5}, 131);
  std::vector<int32_t> t = {4, 0, -100, 2, 2, 1};
  check_grad([&] { return cross_entropy(x, t); }, {x});
  CrossEntropyOptions opt;
  opt.label_smoothing = 0.2f;
  check_grad([&] { return cross_entropy(x, t, opt); }, {x});
  opt.mask = {1, 0, 1, 0.5f, 2, 1};
  check_grad([&] { return cross_entropy(x, t, opt); }, {x});
  check_grad([&] { return cross_entropy(transpose(x, 0, 1), t, opt); }, {x});  // strided logits
  check_grad([&] { return scale(cross_entropy(x, t, opt), 3.f); }, {x});       // dloss != 1
}

TEST_CASE("cross_entropy: zero total weight gives loss 0 and a zero gradient") {
  Tensor x = param({3, 4}, 132);
  CrossEntropyOptions opt;
  opt.mask = {0, 0, 0};
  Tensor loss = cross_entropy(x, {1, 2, 3}, opt);
  CHECK(loss.item() == 0.f);
  backward(loss);
  check_values(x.grad(), std::vector<float>(12, 0.f));
  CHECK(cross_entropy(x, {-100, -100, -100}).item() == 0.f);
}

TEST_CASE("cross_entropy: errors name the op, the row and the value") {
  Tensor x = Tensor::zeros({2, 3, 5});
  CHECK(contains(error_of([&] {
                   cross_entropy(x, {0, 1, 2});
                 }),
                 "cross_entropy: 3 targets for logits (2, 3, 5) (6 rows)"));
  std::string e = error_of([&] { cross_entropy(x, {0, 1, 2, 5, 4, 3}); });
  CHECK(contains(e, "cross_entropy: target 5 at row 3 is outside [0, 5)"));
  CHECK(contains(error_of([&] { cross_entropy(x, {0, -1, 2, 3, 4, 3}); }), "target -1 at row 1"));
  CrossEntropyOptions opt;
  opt.mask = {1, 1};
  CHECK(contains(error_of([&] { cross_entropy(x, {0, 1, 2, 3, 4, 0}, opt); }), "cross_entropy: mask has 2 entries"));
  opt.mask = {1, 1, -1, 1, 1, 1};
  CHECK(contains(error_of([&] { cross_entropy(x, {0, 1, 2, 3, 4, 0}, opt); }), "mask[2] = -1"));
  CrossEntropyOptions bad;
  bad.label_smoothing = 1.f;
  CHECK(contains(error_of([&] {
                   cross_entropy(x, {0, 1, 2, 3, 4, 0}, bad);
                 }),
                 "label_smoothing must be in [0, 1), got 1"));
  CHECK(contains(error_of([&] { cross_entropy(Tensor::zeros({2, 0}), {0, 0}); }), "cross_entropy: logits (2, 0)"));
}

TEST_CASE("cross_entropy: bit-identical with 1 and 2 threads") {
  Tensor x = param({64, 512}, 140);  // above kParallelGrain
  std::vector<int32_t> t(64);
  for (int i = 0; i < 64; ++i) t[i] = i % 7 == 3 ? -100 : (i * 37) % 512;
  CrossEntropyOptions opt;
  opt.label_smoothing = 0.1f;
  opt.mask.assign(64, 1.f);
  opt.mask[5] = 0.f;
  check_same_with_1_and_2_threads([&] { return cross_entropy(x, t, opt); }, {x});
}

// ---- CUDA: cross-entropy 1e-5 relative (docs/cuda.md) ----
#ifdef LOWRANK_HAVE_CUDA

namespace ag = lowrank::autograd;
using namespace lowrank::cudatest;

TEST_CASE("cuda: cross_entropy op on CUDA logits (ignore_index, mask, label smoothing), loss kept on the device") {
  LR_SKIP_WITHOUT_GPU();
  const int64_t V = 1000;
  for (float eps : {0.f, 0.1f})
    for (bool accumulate : {false, true}) {  // the gradient starts from zeros, or from one random G0 on both devices
      CAPTURE(eps);
      CAPTURE(accumulate);
      ag::CrossEntropyOptions opt;
      opt.label_smoothing = eps;
      opt.mask = {1.f, 0.5f, 1.f, 0.f, 2.f, 1.f};
      const std::vector<int32_t> targets = {3, 999, -100, 7, 0, 512};  // row 2 ignored, row 3 masked out
      Tensor logits = leaf({2, 3, V}, 90, 3.f), dlogits = dleaf(logits);
      if (accumulate) seed_grad(logits, dlogits, 91);
      Tensor loss = ag::cross_entropy(logits, targets, opt);
      ag::backward(loss, Tensor::full(Shape(), 0.7f));
      Tensor dloss = ag::cross_entropy(dlogits, targets, opt);
      CHECK(dloss.device() == Device::CUDA);
      CHECK(dloss.shape() == Shape());
      CHECK(dloss.item() == doctest::Approx(loss.item()).epsilon(1e-5));
      ag::backward(dloss, Tensor::full(Shape(), 0.7f, Device::CUDA));
      expect_grad(dlogits, logits, 1e-5, 1e-6, "dlogits");
    }
  // Every row ignored or masked out: loss 0 and a zero gradient, as on the CPU.
  ag::CrossEntropyOptions opt;
  opt.mask = {0.f, 1.f};
  Tensor dlogits = dleaf(randn({2, 7}, 92));
  Tensor dloss = ag::cross_entropy(dlogits, {4, -100}, opt);
  CHECK(dloss.item() == 0.f);
  ag::backward(dloss);
  CHECK(dlogits.grad().to_vector() == std::vector<float>(14, 0.f));
}

#endif  // LOWRANK_HAVE_CUDA
