// linear_cross_entropy, the LM head fused with cross-entropy in row chunks (autograd/linear_cross_entropy.cpp):
// equal to the unfused cross_entropy(matmul(h, w, false, true)) in loss and gradients for N below, at and
// past the chunk size, gradient checks, zero total weight, no-grad mode, errors, thread-count independence,
// then the op on CUDA tensors against the CPU (skipped without a GPU).
#include <cmath>

#include "tests/test_util.h"

#ifdef LOWRANK_HAVE_CUDA
#include "tests/cuda_test_util.h"
#endif

using namespace lowrank;
using namespace lowrank::autograd;
using namespace lowrank::testing;

namespace {

// Targets in [0, V) with every 5th row ignored, a mask with a zero and a 2, and label smoothing 0.1.
struct HeadCase {
  std::vector<int32_t> targets;
  CrossEntropyOptions opt;
};
HeadCase head_case(int64_t N, int64_t V) {
  HeadCase c;
  for (int64_t i = 0; i < N; ++i) c.targets.push_back(i % 5 == 4 ? -100 : static_cast<int32_t>((i * 37 + 3) % V));
  c.opt.label_smoothing = 0.1f;
  c.opt.mask.assign(static_cast<size_t>(N), 1.f);
  c.opt.mask[0] = 2.f;
  if (N > 2) c.opt.mask[2] = 0.f;
  return c;
}

// Loss, dh and dw of f after backward from dloss = 0.7 (gradients zeroed first).
std::vector<std::vector<float>> loss_and_grads(const std::function<Tensor()>& f, Tensor h, Tensor w) {
  h.zero_grad();
  w.zero_grad();
  Tensor loss = f();
  std::vector<float> l = loss.to_vector();
  backward(loss, Tensor::full(Shape(), 0.7f));
  return {l, h.grad().to_vector(), w.grad().to_vector()};
}

// |a - b| <= atol + rtol·|b| element by element.
void check_close(const std::vector<float>& a, const std::vector<float>& b, double rtol, double atol, const char* what) {
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    INFO(what << " [" << i << "]: fused " << a[i] << " unfused " << b[i]);
    CHECK(std::fabs(a[i] - b[i]) <= atol + rtol * std::fabs(b[i]));
  }
}

}  // namespace

// ---- CPU ----

TEST_CASE("linear_cross_entropy: equals cross_entropy(matmul(h, wᵀ)) for N below, at and past the chunk") {
  const int64_t C = 16, V = 97;
  Tensor w = param({V, C}, 151, 0.5f);
  for (int64_t N : {5, 16, 64, 150})
    for (int64_t chunk : {0, 1, 16, 64, 1000}) {  // 0: automatic, one chunk at this V
      CAPTURE(N);
      CAPTURE(chunk);
      Tensor h = param({N, C}, 150 + N);
      const HeadCase c = head_case(N, V);
      auto fused = loss_and_grads([&] { return linear_cross_entropy(h, w, c.targets, c.opt, chunk); }, h, w);
      auto unfused = loss_and_grads([&] { return cross_entropy(matmul(h, w, false, true), c.targets, c.opt); }, h, w);
      check_close(fused[0], unfused[0], 1e-6, 0.0, "loss");
      check_close(fused[1], unfused[1], 1e-5, 1e-7, "dh");
      check_close(fused[2], unfused[2], 1e-5, 1e-7, "dw");
    }
}

TEST_CASE("linear_cross_entropy: h (B, T, C), strided h and a frozen w, as the unfused pair") {
  const int64_t B = 3, T = 7, C = 8, V = 31;
  Tensor h = param({B, T, C}, 160), w = param({V, C}, 161);
  const HeadCase c = head_case(B * T, V);
  auto fused = loss_and_grads([&] { return linear_cross_entropy(h, w, c.targets, c.opt, 4); }, h, w);
  auto unfused = loss_and_grads([&] { return cross_entropy(matmul(h, w, false, true), c.targets, c.opt); }, h, w);
  check_close(fused[0], unfused[0], 1e-6, 0.0, "loss");
  check_close(fused[1], unfused[1], 1e-5, 1e-7, "dh");
  check_close(fused[2], unfused[2], 1e-5, 1e-7, "dw");
  Tensor ht = param({T, B, C}, 162);  // rows of transpose(ht) are strided: the op copies them through reshape
  check_grad([&] { return linear_cross_entropy(transpose(ht, 0, 1), w, c.targets, c.opt, 4); }, {ht, w});
  Tensor frozen = w.detach();
  Tensor loss = linear_cross_entropy(h, frozen, c.targets, c.opt, 4);
  h.zero_grad();
  backward(loss);
  CHECK(h.grad().defined());
  CHECK_FALSE(frozen.grad().defined());  // no buffer and no G_w for a frozen head (LoRA's wte)
}

TEST_CASE("linear_cross_entropy: gradients with smoothing, ignored rows, a mask and dloss != 1") {
  Tensor h = param({6, 4}, 170), w = param({9, 4}, 171);
  std::vector<int32_t> t = {8, 0, -100, 2, 2, 1};
  check_grad([&] { return linear_cross_entropy(h, w, t, {}, 4); }, {h, w});
  CrossEntropyOptions opt;
  opt.label_smoothing = 0.2f;
  opt.mask = {1, 0, 1, 0.5f, 2, 1};
  check_grad([&] { return linear_cross_entropy(h, w, t, opt, 4); }, {h, w});
  check_grad([&] { return scale(linear_cross_entropy(h, w, t, opt, 1), 3.f); }, {h, w});
  opt.ignore_index = 2;
  check_grad([&] { return linear_cross_entropy(h, w, {8, 0, 7, 2, 2, 1}, opt, 64); }, {h, w});
}

TEST_CASE("linear_cross_entropy: zero total weight gives loss 0 and zero gradients, no node without grad") {
  Tensor h = param({3, 4}, 180), w = param({5, 4}, 181);
  CrossEntropyOptions opt;
  opt.mask = {0, 0, 0};
  Tensor loss = linear_cross_entropy(h, w, {1, 2, 3}, opt);
  CHECK(loss.item() == 0.f);
  backward(loss);
  check_values(h.grad(), std::vector<float>(12, 0.f));
  check_values(w.grad(), std::vector<float>(20, 0.f));
  CHECK(linear_cross_entropy(h, w, {-100, -100, -100}).item() == 0.f);
  const float with_grad = linear_cross_entropy(h, w, {1, 2, 3}).item();
  NoGradGuard ng;
  Tensor l = linear_cross_entropy(h, w, {1, 2, 3});
  CHECK_FALSE(l.requires_grad());
  CHECK(l.item() == with_grad);
}

TEST_CASE("linear_cross_entropy: errors name the op and the shapes") {
  Tensor h = Tensor::zeros({2, 3, 4}), w = Tensor::zeros({5, 4});
  CHECK(contains(error_of([&] {
                   linear_cross_entropy(h, Tensor::zeros({5, 3}), {0, 1, 2, 3, 4, 0});
                 }),
                 "linear_cross_entropy: h (2, 3, 4) and w (5, 3) differ in C (4 vs 3)"));
  CHECK(contains(error_of([&] {
                   linear_cross_entropy(h, Tensor::zeros({5, 4, 1}), {0});
                 }),
                 "linear_cross_entropy: w (5, 4, 1) must be (V, C)"));
  CHECK(contains(error_of([&] { linear_cross_entropy(Tensor::zeros({4}), w, {0}); }),  // one row without its N
                 "must be (..., C) with C > 0"));
  CHECK(contains(error_of([&] {
                   linear_cross_entropy(h, w, {0, 1, 2});
                 }),
                 "linear_cross_entropy: 3 targets for logits (2, 3, 5) (6 rows)"));
  CHECK(contains(error_of([&] {
                   linear_cross_entropy(h, w, {0, 1, 2, 5, 4, 3});
                 }),
                 "linear_cross_entropy: target 5 at row 3 is outside [0, 5)"));
  CHECK(contains(error_of([&] {
                   linear_cross_entropy(h, w, {0, 1, 2, 3, 4, 0}, {}, -1);
                 }),
                 "linear_cross_entropy: chunk_rows must be >= 0 (0: automatic), got -1"));
  CrossEntropyOptions bad;
  bad.mask = {1, 1};
  CHECK(contains(error_of([&] {
                   linear_cross_entropy(h, w, {0, 1, 2, 3, 4, 0}, bad);
                 }),
                 "linear_cross_entropy: mask has 2 entries for logits (2, 3, 5)"));
}

TEST_CASE("linear_cross_entropy: bit-identical with 1 and 2 threads") {
  const int64_t N = 150, C = 32, V = 512;  // three chunks of 64 rows, each above kParallelGrain
  Tensor h = param({N, C}, 190), w = param({V, C}, 191, 0.3f);
  const HeadCase c = head_case(N, V);
  check_same_with_1_and_2_threads([&] { return linear_cross_entropy(h, w, c.targets, c.opt, 64); }, {h, w});
}

// ---- CUDA: GEMM tolerance, 1e-3 (docs/cuda.md) ----
#ifdef LOWRANK_HAVE_CUDA

namespace ag = lowrank::autograd;
using namespace lowrank::cudatest;

TEST_CASE("cuda: linear_cross_entropy on CUDA h and w against the CPU (chunks, mask, smoothing, frozen w)") {
  LR_SKIP_WITHOUT_GPU();
  const int64_t N = 70, C = 24, V = 1000;
  const HeadCase c = head_case(N, V);
  for (int64_t chunk : {16, 64, 128}) {
    const OpFn f = [&](const std::vector<Tensor>& t) {
      return ag::linear_cross_entropy(t[0], t[1], c.targets, c.opt, chunk);
    };
    check_on_cuda(f, {leaf({N, C}, 93), leaf({V, C}, 94, 0.3f)}, kGemm, kGemm,
                  "h and w trained, chunk " + std::to_string(chunk));
    check_on_cuda(f, {leaf({N, C}, 95), randn({V, C}, 96, 0.3f)}, kGemm, kGemm,
                  "w frozen, chunk " + std::to_string(chunk));
  }
  ag::CrossEntropyOptions zero;  // every row masked out: loss 0 and zero gradients, as on the CPU
  zero.mask = {0.f, 0.f};
  Tensor h = dleaf(randn({2, 8}, 97)), w = dleaf(randn({11, 8}, 98));
  Tensor loss = ag::linear_cross_entropy(h, w, {4, 3}, zero);
  CHECK(loss.device() == Device::CUDA);
  CHECK(loss.item() == 0.f);
  ag::backward(loss);
  CHECK(h.grad().to_vector() == std::vector<float>(16, 0.f));
  CHECK(w.grad().to_vector() == std::vector<float>(88, 0.f));
}

#endif  // LOWRANK_HAVE_CUDA
