// matmul and linear (autograd/matmul.cpp): CPU values, gradient checks and errors, then the same ops
// on CUDA tensors against the CPU (cudatest::check_on_cuda; skipped without a GPU).
#include <cmath>

#include "tests/test_util.h"

#ifdef LOWRANK_HAVE_CUDA
#include "tests/cuda_test_util.h"
#endif

using namespace lowrank;
using namespace lowrank::autograd;
using namespace lowrank::testing;

// ---- CPU ----

TEST_CASE("matmul: forward values of a 2x3 by 3x2 product") {
  Tensor a = Tensor::from({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = Tensor::from({7, 8, 9, 10, 11, 12}, {3, 2});
  check_values(matmul(a, b), {58, 64, 139, 154});
  check_values(matmul(a, b.transpose(0, 1).contiguous(), false, true), {58, 64, 139, 154});
  check_values(matmul(a.transpose(0, 1).contiguous(), b, true, false), {58, 64, 139, 154});
}

TEST_CASE("matmul: gradients for 2-D, all transposes, batched and a broadcast 2-D weight") {
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      CAPTURE(ta);
      CAPTURE(tb);
      Tensor a = param(ta ? Shape{4, 3} : Shape{3, 4}, 10);
      Tensor b = param(tb ? Shape{5, 4} : Shape{4, 5}, 11);
      check_grad([&] { return matmul(a, b, ta, tb); }, {a, b});
      Tensor ab = param(ta ? Shape{2, 4, 3} : Shape{2, 3, 4}, 12);
      Tensor bb = param(tb ? Shape{2, 5, 4} : Shape{2, 4, 5}, 13);
      check_grad([&] { return matmul(ab, bb, ta, tb); }, {ab, bb});
      check_grad([&] { return matmul(ab, b, ta, tb); }, {ab, b});  // b shared across the batch
    }
  Tensor q = param({2, 2, 3, 4}, 14), k = param({2, 2, 3, 4}, 15);
  check_grad([&] { return matmul(q, k, false, true); }, {q, k});  // 4-D (B,NH,T,hs)·(B,NH,T,hs)ᵀ
}

TEST_CASE("matmul: a strided (transposed) input gets its gradient through the view") {
  Tensor a = param({4, 3}, 16), b = param({4, 5}, 17);
  check_grad([&] { return matmul(transpose(a, 0, 1), b); }, {a, b});
}

TEST_CASE("matmul: shape errors name the op and the shapes") {
  Tensor a = Tensor::zeros({2, 3}), b = Tensor::zeros({4, 5});
  std::string e = error_of([&] { matmul(a, b); });
  CHECK(e.find("matmul") != std::string::npos);
  CHECK(e.find("(2, 3)") != std::string::npos);
  CHECK(e.find("(4, 5)") != std::string::npos);
  CHECK(error_of([&] {
          matmul(Tensor::zeros({2, 2, 3}), Tensor::zeros({3, 3, 4}));
        }).find("batch dims differ") != std::string::npos);
}

TEST_CASE("linear: forward equals x·Wᵀ + b, gradients for x, W, b, bias optional") {
  Tensor x = Tensor::from({1, 2, 3, 4}, {2, 2});
  Tensor w = Tensor::from({1, 0, 0, 1, 1, 1}, {3, 2});
  Tensor b = Tensor::from({10, 20, 30}, {3});
  check_values(linear(x, w, b), {11, 22, 33, 13, 24, 37});
  check_values(linear(x, w), {1, 2, 3, 3, 4, 7});
  Tensor xp = param({2, 3, 4}, 20), wp = param({5, 4}, 21), bp = param({5}, 22);
  check_grad([&] { return linear(xp, wp, bp); }, {xp, wp, bp});
  check_grad([&] { return linear(xp, wp); }, {xp, wp});
  CHECK(error_of([&] {
          linear(xp, Tensor::zeros({5, 3}));
        }).find("linear: x (2, 3, 4) does not match weight (5, 3)") != std::string::npos);
  CHECK(error_of([&] { linear(xp, wp, Tensor::zeros({4})); }).find("bias (4,)") != std::string::npos);
}

TEST_CASE("linear: a frozen weight gets no gradient buffer") {
  Tensor x = param({3, 4}, 23);
  Rng rng(1);
  Tensor w = Tensor::randn({2, 4}, rng);  // requires_grad off: frozen
  backward(sum(linear(x, w)));
  CHECK(x.grad().defined());
  CHECK_FALSE(w.grad().defined());
}

TEST_CASE("matmul, linear: a fresh gradient is overwritten (beta 0), an existing one added to, x·x right") {
  // A gradient buffer allocated by backward is not zero-filled: the GEMM writes it with beta = 0. Poison
  // the allocator's recycled block first (>= 1 MiB blocks are cached, tensor/storage.cpp), so a GEMM
  // that read the buffer instead of overwriting it would show NaN.
  const Shape xs{512, 640};  // 1.25 MiB
  Tensor x = param(xs, 30), w = param({8, 640}, 31);
  Tensor dy = param({512, 8}, 32);
  { Tensor poison = Tensor::full(xs, NAN); }  // freed: x.grad gets this block
  backward(sum(mul(linear(x, w), dy.detach())));
  Tensor expect = matmul(dy, w.detach());  // dx = dy·w
  check_values(x.grad(), expect.to_vector(), 1e-4f);
  backward(sum(mul(linear(x, w), dy.detach())));  // now it exists: the second backward adds
  check_values(x.grad(), scale(expect, 2.f).to_vector(), 1e-4f);
  // matmul(a, a): dA then dB land in one buffer; the second must add onto the first.
  Tensor a = param({512, 512}, 33, 0.05f);
  { Tensor poison = Tensor::full({512, 512}, NAN); }
  backward(sum(matmul(a, a)));  // d/da Σ(a·a) = 1·aᵀ + aᵀ·1
  Tensor ones = Tensor::full({512, 512}, 1.f);
  Tensor at = a.detach().transpose(0, 1).contiguous();
  check_values(a.grad(), add(matmul(ones, at), matmul(at, ones)).to_vector(), 1e-4f);
}

// ---- CUDA: GEMM tolerance 1e-3 with TF32 off (docs/cuda.md) ----
#ifdef LOWRANK_HAVE_CUDA

namespace ag = lowrank::autograd;
using namespace lowrank::cudatest;

TEST_CASE("cuda: matmul, plain (every transpose), broadcast (folded and not) and batched") {
  LR_SKIP_WITHOUT_GPU();
  cuda::set_tf32(false);
  const int64_t M = 13, K = 29, N = 17;
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb)
      check_on_cuda([ta, tb](const std::vector<Tensor>& t) { return ag::matmul(t[0], t[1], ta, tb); },
                    {leaf(ta ? Shape{K, M} : Shape{M, K}, 70), leaf(tb ? Shape{N, K} : Shape{K, N}, 71)}, kGemm, kGemm,
                    "matmul 2-D ta " + std::to_string(ta) + " tb " + std::to_string(tb));
  // b (K, N) shared by a (3, 4, M, K): the batch folds into M (one GEMM per direction)
  for (int tb = 0; tb < 2; ++tb)
    check_on_cuda([tb](const std::vector<Tensor>& t) { return ag::matmul(t[0], t[1], false, tb); },
                  {leaf({3, 4, M, K}, 72), leaf(tb ? Shape{N, K} : Shape{K, N}, 73)}, kGemm, kGemm,
                  "matmul broadcast folded tb " + std::to_string(tb));
  // a transposed with a shared b: no fold; b's gradient sums over the batch (ordered single GEMMs)
  for (int tb = 0; tb < 2; ++tb)
    check_on_cuda([tb](const std::vector<Tensor>& t) { return ag::matmul(t[0], t[1], true, tb); },
                  {leaf({5, K, M}, 74), leaf(tb ? Shape{N, K} : Shape{K, N}, 75)}, kGemm, kGemm,
                  "matmul broadcast unfolded tb " + std::to_string(tb));
  // batched (B, NH, T, hs): attention-shaped products, every transpose case
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb)
      check_on_cuda(
          [ta, tb](const std::vector<Tensor>& t) { return ag::matmul(t[0], t[1], ta, tb); },
          {leaf(ta ? Shape{2, 3, K, M} : Shape{2, 3, M, K}, 76), leaf(tb ? Shape{2, 3, N, K} : Shape{2, 3, K, N}, 77)},
          kGemm, kGemm, "matmul batched ta " + std::to_string(ta) + " tb " + std::to_string(tb));
  // strided operands (views made contiguous on the device) and a frozen b
  check_on_cuda([](const std::vector<Tensor>& t) { return ag::matmul(ag::transpose(t[0], 1, 2), t[1]); },
                {leaf({3, K, M}, 78), randn({3, K, N}, 79)}, kGemm, kGemm, "matmul of a transposed view");
}

TEST_CASE("cuda: linear with and without bias, frozen weight, strided input") {
  LR_SKIP_WITHOUT_GPU();
  cuda::set_tf32(false);
  const int64_t in = 40, out = 24;
  const OpFn with_bias = [](const std::vector<Tensor>& t) { return ag::linear(t[0], t[1], t[2]); };
  const OpFn no_bias = [](const std::vector<Tensor>& t) { return ag::linear(t[0], t[1]); };
  check_on_cuda(with_bias, {leaf({2, 9, in}, 80), leaf({out, in}, 81), leaf({out}, 82)}, kGemm, kGemm,
                "linear with bias");
  check_on_cuda(no_bias, {leaf({2, 9, in}, 83), leaf({out, in}, 84)}, kGemm, kGemm, "linear without bias");
  // LoRA: the pretrained weight and bias are frozen, only x's gradient flows
  check_on_cuda(with_bias, {leaf({18, in}, 85), randn({out, in}, 86), randn({out}, 87)}, kGemm, kGemm,
                "linear frozen weight and bias");
  check_on_cuda([](const std::vector<Tensor>& t) { return ag::linear(ag::slice(t[0], 1, 3, in), t[1], t[2]); },
                {leaf({10, in + 5}, 88), leaf({out, in}, 89), leaf({out}, 90)}, kGemm, kGemm,
                "linear of a strided slice");
  // many rows: the bias gradient is a column sum over N
  check_on_cuda(with_bias, {leaf({700, in}, 91), leaf({out, in}, 92), leaf({out}, 93)}, kGemm, kGemm,
                "linear with 700 rows");
}

#endif  // LOWRANK_HAVE_CUDA
