// gelu, relu, tanh, softmax, log_softmax, layernorm, cross_entropy.
#include <cmath>

#include "tensor/parallel.h"
#include "test_util.h"

using namespace lowrank;
using namespace lowrank::autograd;
using namespace lowrank::testing;

namespace {

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

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

TEST_CASE("softmax: values, shift invariance, gradients, errors") {
  // exp(1,2,3) / (e + e² + e³)
  check_values(softmax(Tensor::from({1, 2, 3}, {1, 3})), {0.0900306f, 0.2447285f, 0.6652410f});
  // subtracting the row max keeps huge logits finite: same values as (1, 2, 3)
  check_values(softmax(Tensor::from({1001, 1002, 1003}, {3})), {0.0900306f, 0.2447285f, 0.6652410f});
  Tensor x = param({2, 3, 5}, 110);
  check_grad([&] { return softmax(x); }, {x});
  check_grad([&] { return softmax(transpose(x, 1, 2)); }, {x});  // strided input
  std::string e = error_of([&] { softmax(Tensor::full(Shape(), 1.f)); });
  CHECK(has(e, "softmax: need a non-empty last dim, got ()"));
  CHECK(has(error_of([&] { softmax(Tensor::zeros({2, 0})); }), "(2, 0)"));
}

TEST_CASE("log_softmax: values, gradients, errors") {
  // log of the softmax above: (1, 2, 3) - log(e + e² + e³)
  check_values(log_softmax(Tensor::from({1, 2, 3, 1001, 1002, 1003}, {2, 3})),
               {-2.4076060f, -1.4076060f, -0.4076060f, -2.4076060f, -1.4076060f, -0.4076060f});
  Tensor x = param({2, 3, 5}, 111);
  check_grad([&] { return log_softmax(x); }, {x});
  check_grad([&] { return log_softmax(slice(x, 2, 1, 3)); }, {x});
  CHECK(has(error_of([&] { log_softmax(Tensor::zeros({3, 0})); }), "log_softmax: need a non-empty last dim, got (3, 0)"));
}

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
  CHECK(has(e, "layernorm: x (2, 3, 5) does not match weight (4,) and bias (4,)"));
  CHECK(has(error_of([&] { layernorm(x, wp, Tensor::zeros({4})); }), "bias (4,)"));
  CHECK(has(error_of([&] { layernorm(x, wp, bp, -1.f); }), "layernorm: eps must be >= 0"));
}

TEST_CASE("layernorm: a frozen weight and bias get no gradient buffer") {
  Tensor x = param({3, 4}, 126);
  Tensor w = Tensor::full({4}, 1.f), b = Tensor::zeros({4});  // requires_grad off: frozen
  backward(sum(mul(layernorm(x, w, b), x)));
  CHECK(x.grad().defined());
  CHECK_FALSE(w.grad().defined());
  CHECK_FALSE(b.grad().defined());
}

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
  check_grad([&] { return scale(cross_entropy(x, t, opt), 3.f); }, {x});      // dloss != 1
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
  CHECK(has(error_of([&] { cross_entropy(x, {0, 1, 2}); }), "cross_entropy: 3 targets for logits (2, 3, 5) (6 rows)"));
  std::string e = error_of([&] { cross_entropy(x, {0, 1, 2, 5, 4, 3}); });
  CHECK(has(e, "cross_entropy: target 5 at row 3 is outside [0, 5)"));
  CHECK(has(error_of([&] { cross_entropy(x, {0, -1, 2, 3, 4, 3}); }), "target -1 at row 1"));
  CrossEntropyOptions opt;
  opt.mask = {1, 1};
  CHECK(has(error_of([&] { cross_entropy(x, {0, 1, 2, 3, 4, 0}, opt); }), "cross_entropy: mask has 2 entries"));
  opt.mask = {1, 1, -1, 1, 1, 1};
  CHECK(has(error_of([&] { cross_entropy(x, {0, 1, 2, 3, 4, 0}, opt); }), "mask[2] = -1"));
  CrossEntropyOptions bad;
  bad.label_smoothing = 1.f;
  CHECK(has(error_of([&] { cross_entropy(x, {0, 1, 2, 3, 4, 0}, bad); }), "label_smoothing must be in [0, 1), got 1"));
  CHECK(has(error_of([&] { cross_entropy(Tensor::zeros({2, 0}), {0, 0}); }), "cross_entropy: logits (2, 0)"));
}

namespace {

// Forward output and every input gradient of f, flattened into one vector.
std::vector<float> run_and_grads(const std::function<Tensor()>& f, std::vector<Tensor> inputs) {
  for (Tensor& t : inputs) t.zero_grad();
  Tensor out = f();
  std::vector<float> all = out.to_vector();
  Rng rng(3);
  backward(out, Tensor::randn(out.shape(), rng));
  for (Tensor& t : inputs) {
    if (!t.grad().defined()) continue;  // not an input of this op
    std::vector<float> g = t.grad().to_vector();
    all.insert(all.end(), g.begin(), g.end());
  }
  return all;
}

}  // namespace

TEST_CASE("softmax, layernorm, cross_entropy: bit-identical with 1 and 2 threads") {
  Tensor x = param({64, 512}, 140), w = param({512}, 141), b = param({512}, 142);  // above kParallelGrain
  std::vector<int32_t> t(64);
  for (int i = 0; i < 64; ++i) t[i] = i % 7 == 3 ? -100 : (i * 37) % 512;
  CrossEntropyOptions opt;
  opt.label_smoothing = 0.1f;
  opt.mask.assign(64, 1.f);
  opt.mask[5] = 0.f;
  std::vector<std::function<Tensor()>> fs = {
      [&] { return softmax(x); }, [&] { return log_softmax(x); }, [&] { return layernorm(x, w, b); },
      [&] { return cross_entropy(x, t, opt); }};
  for (size_t k = 0; k < fs.size(); ++k) {
    CAPTURE(k);
    tensor::set_num_threads(1);
    std::vector<float> one = run_and_grads(fs[k], {x, w, b});
    tensor::set_num_threads(2);
    std::vector<float> two = run_and_grads(fs[k], {x, w, b});
    CHECK(one == two);
  }
  tensor::set_num_threads(0);
}
