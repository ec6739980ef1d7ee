// The CUDA kernels (cuda/kernels.h) against the CPU path: GEMM, the fill and strided-copy plumbing,
// elementwise ops, activations and reductions here; the NN kernels (softmax, layernorm, embedding,
// dropout, attention, cross-entropy) through their ops, in the CUDA half of tests/ops/test_<op>.cpp,
// and the fused adamw update in test_cuda_optim.cpp. Each test draws random inputs on the CPU,
// computes the reference with the public autograd ops (values, and gradients by backward() from a
// random seed gradient), runs the launchers on device copies and compares. Gradient buffers on the
// device start from random values G0, and the expectation is G0 + reference: this checks that the
// backward launchers ACCUMULATE like the CPU kernels. Every test skips when no GPU is present.
#include "test_util.h"

#ifdef LOWRANK_HAVE_CUDA

#include "cuda_test_util.h"
#include "tensor/gemm.h"

using namespace lowrank;
namespace ag = lowrank::autograd;

using namespace lowrank::cudatest;

TEST_CASE("cuda: gemm matches the reference for every transpose case, leading dims and K = 0") {
  LR_SKIP_WITHOUT_GPU();
  cuda::set_tf32(false);
  const int64_t M = 37, N = 53, K = 29, pad = 3;
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb) {
      CAPTURE(ta);
      CAPTURE(tb);
      // Stored A is (M, K) or (K, M) for transA, with pad extra columns per row; same for B.
      const int64_t arows = ta ? K : M, acols = ta ? M : K, brows = tb ? N : K, bcols = tb ? K : N;
      const int64_t lda = acols + pad, ldb = bcols + pad, ldc = N + pad;
      Tensor A = randn({arows, lda}, 1), B = randn({brows, ldb}, 2), C = randn({M, ldc}, 3);
      Tensor ref = C.clone();
      tensor::gemm_reference(ta, tb, M, N, K, 0.75f, A.data(), lda, B.data(), ldb, 0.5f, ref.data(), ldc);
      Tensor dA = dev(A), dB = dev(B), dC = dev(C);
      cuda::gemm(ta, tb, M, N, K, 0.75f, dp(dA), lda, dp(dB), ldb, 0.5f, dp(dC), ldc);
      expect_close(dC, ref, 1e-3, 1e-3, "gemm");  // padding columns must stay untouched too
    }
  Tensor C = randn({4, 5}, 4), dC = dev(C);
  cuda::gemm(false, false, 4, 5, 0, 1.f, nullptr, 0, nullptr, 0, 0.25f, dp(dC), 5);
  std::vector<float> want = C.to_vector();
  for (float& x : want) x *= 0.25f;
  expect_close(dC.to_vector(), want, 1e-6, 0.0, "gemm K = 0 scales C by beta");
}

TEST_CASE("cuda: strided-batched gemm, and TF32 mode stays within its looser tolerance") {
  LR_SKIP_WITHOUT_GPU();
  const int64_t batch = 3, M = 16, N = 24, K = 40;
  Tensor A = randn({batch, M, K}, 5), B = randn({N, K}, 6);  // B shared (stride 0), used transposed
  Tensor ref = Tensor::zeros({batch, M, N});
  for (int64_t i = 0; i < batch; ++i)
    tensor::gemm_reference(false, true, M, N, K, 1.f, A.data() + i * M * K, K, B.data(), K, 0.f, ref.data() + i * M * N,
                           N);
  Tensor dA = dev(A), dB = dev(B), dC = Tensor::zeros({batch, M, N}, Device::CUDA);
  for (bool tf32 : {false, true}) {
    CAPTURE(tf32);
    cuda::set_tf32(tf32);
    CHECK(cuda::tf32() == tf32);
#ifdef LOWRANK_CUDA_EMULATION
    if (tf32) MESSAGE("host emulation: TF32 is only recorded, the product stays fp32 (no TF32 rounding checked)");
#endif
    cuda::gemm_strided_batched(false, true, M, N, K, 1.f, dp(dA), K, M * K, dp(dB), K, 0, 0.f, dp(dC), N, M * N, batch);
    expect_close(dC, ref, tf32 ? 1e-2 : 1e-3, tf32 ? 5e-2 : 1e-3, "strided-batched gemm");
  }
  cuda::set_tf32(false);
}

TEST_CASE("cuda: fill and strided copy (the plumbing for fill_, copy_ and contiguous on the device)") {
  LR_SKIP_WITHOUT_GPU();
  Tensor t = Tensor::empty({1000}, Device::CUDA);
  for (float v : {0.f, -2.5f}) {
    cuda::fill(dp(t), v, 1000);
    CHECK(t.to_vector() == std::vector<float>(1000, v));
  }
  Tensor x = randn({3, 4, 5}, 7), dX = dev(x);
  for (Tensor view : {x.permute({2, 0, 1}), x.narrow(1, 1, 2), x.transpose(0, 2).narrow(0, 1, 3)}) {
    const int64_t off = view.data() - x.data();  // the same view over the device copy: offset and strides
    Tensor out = Tensor::empty(view.shape(), Device::CUDA);
    cuda::copy_strided(dp(out), out.strides().d.data(), dp(dX) + off, view.strides().d.data(), view.shape().d.data(),
                       view.ndim());
    CHECK(out.to_vector() == view.contiguous().to_vector());
  }
}

TEST_CASE("cuda: add, sub, mul with row broadcast and scale match the CPU ops and accumulate") {
  LR_SKIP_WITHOUT_GPU();
  for (bool broadcast : {true, false}) {
    CAPTURE(broadcast);
    const Shape as{3, 5, 37}, bs = broadcast ? Shape{37} : as;
    const int64_t inner = bs.numel(), outer = as.numel() / inner;
    for (int kind = 0; kind < 3; ++kind) {
      CAPTURE(kind);
      Tensor a = leaf(as, 10), b = leaf(bs, 11), seed = randn(as, 12);
      Tensor y = kind == 0 ? ag::add(a, b) : kind == 1 ? ag::sub(a, b) : ag::mul(a, b);
      ag::backward(y, seed);
      Tensor da0 = randn(as, 13), db0 = randn(bs, 14);
      Tensor dA = dev(a), dB = dev(b), dY = Tensor::empty(as, Device::CUDA), dSeed = dev(seed);
      Tensor dGa = dev(da0), dGb = dev(db0);
      if (kind == 0) cuda::add_forward(dp(dY), dp(dA), dp(dB), outer, inner);
      if (kind == 1) cuda::sub_forward(dp(dY), dp(dA), dp(dB), outer, inner);
      if (kind == 2) cuda::mul_forward(dp(dY), dp(dA), dp(dB), outer, inner);
      if (kind == 0) cuda::add_backward(dp(dGa), dp(dGb), dp(dSeed), outer, inner);
      if (kind == 1) cuda::sub_backward(dp(dGa), dp(dGb), dp(dSeed), outer, inner);
      if (kind == 2) cuda::mul_backward(dp(dGa), dp(dGb), dp(dSeed), dp(dA), dp(dB), outer, inner);
      expect_close(dY, y, 1e-5, 1e-6, "forward");
      expect_close(dGa.to_vector(), plus(da0, a.grad()), 1e-5, 1e-6, "da");
      expect_close(dGb.to_vector(), plus(db0, b.grad()), 1e-5, 1e-5, "db (column sums)");
    }
  }
  Tensor x = leaf({1000}, 15), seed = randn({1000}, 16), g0 = randn({1000}, 17);
  Tensor y = ag::scale(x, -1.5f);
  ag::backward(y, seed);
  Tensor dX = dev(x), dY = Tensor::empty({1000}, Device::CUDA), dSeed = dev(seed), dG = dev(g0);
  cuda::scale_forward(dp(dY), dp(dX), -1.5f, 1000);
  cuda::scale_backward(dp(dG), dp(dSeed), -1.5f, 1000);
  expect_close(dY, y, 1e-6, 0.0, "scale");
  expect_close(dG.to_vector(), plus(g0, x.grad()), 1e-5, 1e-6, "scale backward");
}

TEST_CASE("cuda: gelu, relu, tanh forward and backward match the CPU ops") {
  LR_SKIP_WITHOUT_GPU();
  const int64_t n = 5000;  // more than one block, and the grid-stride loop
  for (int act = 0; act < 3; ++act) {
    CAPTURE(act);
    Tensor x = leaf({n}, 20, 2.f), seed = randn({n}, 21), g0 = randn({n}, 22);
    Tensor y = act == 0 ? ag::gelu(x) : act == 1 ? ag::relu(x) : ag::tanh(x);
    ag::backward(y, seed);
    Tensor dX = dev(x), dY = Tensor::empty({n}, Device::CUDA), dSeed = dev(seed), dG = dev(g0);
    if (act == 0) cuda::gelu_forward(dp(dY), dp(dX), n), cuda::gelu_backward(dp(dG), dp(dSeed), dp(dX), n);
    if (act == 1) cuda::relu_forward(dp(dY), dp(dX), n), cuda::relu_backward(dp(dG), dp(dSeed), dp(dX), n);
    if (act == 2) cuda::tanh_forward(dp(dY), dp(dX), n), cuda::tanh_backward(dp(dG), dp(dSeed), dp(dY), n);
    expect_close(dY, y, 1e-5, 1e-6, "forward");
    // The CPU's GELU uses tensor::fast_tanh (absolute error ~1e-7, tanhf here), which the gradient
    // multiplies by up to |x|·k(1 + 3a·x²): an absolute floor of 1e-5 for gelu.
    expect_close(dG.to_vector(), plus(g0, x.grad()), 1e-5, act == 0 ? 1e-5 : 1e-6, "backward");
  }
}

TEST_CASE("cuda: sum and mean match the CPU reductions") {
  LR_SKIP_WITHOUT_GPU();
  for (int64_t n : {int64_t(1), int64_t(1000), int64_t(300000)}) {
    for (bool is_mean : {false, true}) {
      CAPTURE(n);
      CAPTURE(is_mean);
      Tensor x = leaf({n}, 30), g0 = randn({n}, 31);
      Tensor y = is_mean ? ag::mean(x) : ag::sum(x);
      ag::backward(y, Tensor::full(Shape(), 0.7f));
      const float factor = is_mean ? 1.f / static_cast<float>(n) : 1.f;
      Tensor dX = dev(x), dY = Tensor::empty(Shape(), Device::CUDA), dSeed = Tensor::full(Shape(), 0.7f, Device::CUDA);
      Tensor dG = dev(g0);
      cuda::sum_forward(dp(dY), dp(dX), n, factor);
      cuda::sum_backward(dp(dG), dp(dSeed), n, factor);
      expect_close(dY, y, 1e-4, 1e-5, "forward");
      expect_close(dG.to_vector(), plus(g0, x.grad()), 1e-5, 1e-7, "backward");
    }
  }
}

#else  // !LOWRANK_HAVE_CUDA

// In a build without the CUDA backend the kernel tests above are not compiled; what remains to prove
// is that the device is refused with an error that says why, instead of crashing or computing on the CPU.
TEST_CASE("cuda: a build without the backend refuses device tensors, naming the missing backend") {
  CHECK_FALSE(lowrank::tensor::kCudaBuilt);
  const std::string err = lowrank::testing::error_of([] {
    lowrank::Tensor::zeros({2, 3}).to(lowrank::tensor::Device::CUDA);
  });
  CHECK(lowrank::testing::contains(err, "no CUDA backend"));
}

#endif
