// The CUDA kernels (cuda/kernels.h) against the CPU path. Each test draws random inputs on the CPU,
// computes the reference with the public autograd ops (values, and gradients by backward() from a
// random seed gradient), runs the launchers on device copies and compares. Gradient buffers on the
// device start from random values G0, and the expectation is G0 + reference: this checks that the
// backward launchers ACCUMULATE like the CPU kernels. Every test skips when no GPU is present.
#include "test_util.h"

#ifdef LOWRANK_HAVE_CUDA

#include "cuda_test_util.h"
#include "nn/module.h"
#include "optim/adamw.h"
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
    tensor::gemm_reference(false, true, M, N, K, 1.f, A.data() + i * M * K, K, B.data(), K, 0.f,
                           ref.data() + i * M * N, N);
  Tensor dA = dev(A), dB = dev(B), dC = Tensor::zeros({batch, M, N}, Device::CUDA);
  for (bool tf32 : {false, true}) {
    CAPTURE(tf32);
    cuda::set_tf32(tf32);
    CHECK(cuda::tf32() == tf32);
#ifdef LOWRANK_CUDA_EMULATION
    if (tf32) MESSAGE("host emulation: TF32 is only recorded, the product stays fp32 (no TF32 rounding checked)");
#endif
    cuda::gemm_strided_batched(false, true, M, N, K, 1.f, dp(dA), K, M * K, dp(dB), K, 0, 0.f, dp(dC), N, M * N,
                               batch);
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

TEST_CASE("cuda: softmax and log_softmax forward and backward match the CPU ops") {
  LR_SKIP_WITHOUT_GPU();
  for (Shape s : {Shape{7, 1000}, Shape{2, 3, 5}, Shape{4, 1}}) {
    for (bool log : {false, true}) {
      CAPTURE(s);
      CAPTURE(log);
      const int64_t C = s[-1], N = s.numel() / C;
      Tensor x = leaf(s, 40, 3.f), seed = randn(s, 41), g0 = randn(s, 42);
      Tensor y = log ? ag::log_softmax(x) : ag::softmax(x);
      ag::backward(y, seed);
      Tensor dX = dev(x), dY = Tensor::empty(s, Device::CUDA), dSeed = dev(seed), dG = dev(g0);
      cuda::softmax_forward(dp(dY), dp(dX), N, C, log);
      cuda::softmax_backward(dp(dG), dp(dSeed), dp(dY), N, C, log);
      expect_close(dY, y, 1e-4, 1e-6, "forward");
      expect_close(dG.to_vector(), plus(g0, x.grad()), 1e-4, 1e-5, "backward");
    }
  }
}

TEST_CASE("cuda: layernorm forward, dx, dw, db match the CPU op, with and without bias") {
  LR_SKIP_WITHOUT_GPU();
  for (bool bias : {true, false}) {
    CAPTURE(bias);
    const int64_t N = 18, C = 300;
    Tensor x = leaf({2, 9, C}, 50, 2.f), w = leaf({C}, 51), b = bias ? leaf({C}, 52) : Tensor();
    Tensor seed = randn({2, 9, C}, 53);
    Tensor y = ag::layernorm(x, w, b, 1e-5f);
    ag::backward(y, seed);
    Tensor gx0 = randn({2, 9, C}, 54), gw0 = randn({C}, 55), gb0 = randn({C}, 56);
    Tensor dX = dev(x), dW = dev(w), dB = bias ? dev(b) : Tensor(), dSeed = dev(seed);
    Tensor dY = Tensor::empty({2, 9, C}, Device::CUDA), mean = Tensor::empty({N}, Device::CUDA),
           rstd = Tensor::empty({N}, Device::CUDA);
    Tensor dGx = dev(gx0), dGw = dev(gw0), dGb = dev(gb0);
    cuda::layernorm_forward(dp(dY), dp(mean), dp(rstd), dp(dX), dp(dW), bias ? dp(dB) : nullptr, N, C, 1e-5f);
    cuda::layernorm_backward_dx(dp(dGx), dp(dSeed), dp(dX), dp(dW), dp(mean), dp(rstd), N, C);
    cuda::layernorm_backward_params(dp(dGw), bias ? dp(dGb) : nullptr, dp(dSeed), dp(dX), dp(mean), dp(rstd), N, C);
    expect_close(dY, y, 1e-4, 1e-5, "forward");
    expect_close(dGx.to_vector(), plus(gx0, x.grad()), 1e-4, 1e-5, "dx");
    expect_close(dGw.to_vector(), plus(gw0, w.grad()), 1e-4, 1e-5, "dw");
    if (bias) expect_close(dGb.to_vector(), plus(gb0, b.grad()), 1e-4, 1e-5, "db");
    if (!bias) expect_close(dGb, gb0, 0.0, 0.0, "db untouched when nullptr");
  }
}

TEST_CASE("cuda: embedding forward, and a backward bitwise equal to the CPU scatter-add") {
  LR_SKIP_WITHOUT_GPU();
  const int64_t V = 50, C = 70, N = 200;  // N >> V: every row is hit many times
  std::vector<int32_t> ids(N);
  Rng rng(60);
  for (int32_t& id : ids) id = static_cast<int32_t>(rng.randint(V));
  Tensor weight = leaf({V, C}, 61), seed = randn({10, 20, C}, 62);
  Tensor y = ag::embedding(weight, ids, Shape{10, 20});
  ag::backward(y, seed);
  DeviceInts dIds(ids);
  Tensor dW = dev(weight), dY = Tensor::empty({N, C}, Device::CUDA), dSeed = dev(seed);
  cuda::embedding_forward(dp(dY), dp(dW), dIds.p, N, C);
  CHECK(dY.to_vector() == y.to_vector());  // a copy: exact
  for (int run = 0; run < 2; ++run) {  // same bits every run, and the CPU's bits
    Tensor dG = Tensor::zeros({V, C}, Device::CUDA);
    cuda::embedding_backward(dp(dG), dp(dSeed), dIds.p, N, C);
    CHECK(dG.to_vector() == weight.grad().to_vector());
  }
  Tensor g0 = randn({V, C}, 63), dG = dev(g0);
  cuda::embedding_backward(dp(dG), dp(dSeed), dIds.p, N, C);
  expect_close(dG.to_vector(), plus(g0, weight.grad()), 1e-5, 1e-5, "accumulates");
}

TEST_CASE("cuda: dropout with the host-drawn mask matches the CPU op") {
  LR_SKIP_WITHOUT_GPU();
  const int64_t n = 3000;
  const float p = 0.3f;
  Tensor x = leaf({3, 1000}, 70), seed = randn({3, 1000}, 71), g0 = randn({3, 1000}, 72);
  Rng rng_cpu(73), rng_mask(73);
  Tensor y = ag::dropout(x, p, rng_cpu, true);
  ag::backward(y, seed);
  // The mask as the CPU op draws it: one uniform per element, in order, from the same seed.
  std::vector<float> mask(n);
  for (float& m : mask) m = rng_mask.uniform() >= p ? 1.f / (1.f - p) : 0.f;
  Tensor dMask = dev(Tensor::from(mask, {n})), dX = dev(x), dY = Tensor::empty({n}, Device::CUDA),
         dSeed = dev(seed), dG = dev(g0);
  cuda::dropout_forward(dp(dY), dp(dX), dp(dMask), n);
  cuda::dropout_backward(dp(dG), dp(dSeed), dp(dMask), n);
  CHECK(dY.to_vector() == y.to_vector());  // one multiply per element: exact
  expect_close(dG.to_vector(), plus(g0, x.grad()), 1e-6, 1e-7, "backward");
}

TEST_CASE("cuda: attention forward and backward match the CPU op (causal, prefix, key lengths, fused qkv)") {
  LR_SKIP_WITHOUT_GPU();
  struct Case {
    int64_t B, Tq, Tk, C;
    int NH;
    bool causal, fused;
    std::vector<int32_t> key_len;
  };
  const std::vector<Case> cases = {
      {2, 7, 7, 24, 3, true, false, {}},     // GPT-2 style self-attention (B <= NH: batched over heads)
      {5, 3, 9, 16, 2, true, false, {}},     // queries are the last Tq of Tk keys (KV cache); B > NH
      {3, 6, 6, 32, 4, false, false, {6, 2, 4}},  // padded bidirectional batch
      {2, 300, 300, 16, 2, true, true, {}},  // rows longer than a block; q/k/v strided slices of qkv
  };
  for (size_t ci = 0; ci < cases.size(); ++ci) {
    const Case& c = cases[ci];
    CAPTURE(ci);
    // CPU reference. Fused: one leaf qkv (B, T, 3C) sliced into q, k, v (strided rows).
    Tensor qkv, q, k, v;
    if (c.fused) {
      qkv = leaf({c.B, c.Tq, 3 * c.C}, 80);
      q = ag::slice(qkv, 2, 0, c.C);
      k = ag::slice(qkv, 2, c.C, c.C);
      v = ag::slice(qkv, 2, 2 * c.C, c.C);
    } else {
      q = leaf({c.B, c.Tq, c.C}, 81);
      k = leaf({c.B, c.Tk, c.C}, 82);
      v = leaf({c.B, c.Tk, c.C}, 83);
    }
    Tensor seed = randn({c.B, c.Tq, c.C}, 84);
    Tensor out = ag::attention(q, k, v, c.NH, c.causal, c.key_len);
    ag::backward(out, seed);

    cuda::AttnDims d;
    d.B = c.B, d.Tq = c.Tq, d.Tk = c.Tk, d.C = c.C, d.NH = c.NH, d.causal = c.causal;
    DeviceInts dLen(c.key_len);
    d.key_len = dLen.p;
    Tensor dQKV, dQ, dK, dV;
    cuda::AttnOperand oq, ok, ov;
    if (c.fused) {
      dQKV = dev(qkv);
      const int64_t sb = c.Tq * 3 * c.C, st = 3 * c.C;
      oq = {dp(dQKV), sb, st}, ok = {dp(dQKV) + c.C, sb, st}, ov = {dp(dQKV) + 2 * c.C, sb, st};
    } else {
      dQ = dev(q), dK = dev(k), dV = dev(v);
      oq = {dp(dQ), c.Tq * c.C, c.C}, ok = {dp(dK), c.Tk * c.C, c.C}, ov = {dp(dV), c.Tk * c.C, c.C};
    }
    Tensor dOut = Tensor::empty({c.B, c.Tq, c.C}, Device::CUDA), dP = Tensor::empty({c.B, c.NH, c.Tq, c.Tk}, Device::CUDA);
    cuda::attention_forward(dp(dOut), dp(dP), oq, ok, ov, d);
    expect_close(dOut, out, 1e-4, 1e-5, "forward");
    Tensor dOut2 = Tensor::empty({c.B, c.Tq, c.C}, Device::CUDA);
    cuda::attention_forward(dp(dOut2), nullptr, oq, ok, ov, d);  // inference path: scratch P
    CHECK(dOut2.to_vector() == dOut.to_vector());

    Tensor gq0 = randn({c.B, c.Tq, c.C}, 85), gk0 = randn({c.B, c.Tk, c.C}, 86), gv0 = randn({c.B, c.Tk, c.C}, 87);
    Tensor dGq = dev(gq0), dGk = dev(gk0), dGv = dev(gv0), dSeed = dev(seed);
    cuda::attention_backward(dp(dGq), dp(dGk), dp(dGv), dp(dSeed), dp(dP), oq, ok, ov, d);
    Tensor rq, rk, rv;  // the CPU gradients of q, k, v
    if (c.fused) {
      Tensor g = qkv.grad();
      rq = g.narrow(2, 0, c.C).contiguous(), rk = g.narrow(2, c.C, c.C).contiguous();
      rv = g.narrow(2, 2 * c.C, c.C).contiguous();
    } else {
      rq = q.grad(), rk = k.grad(), rv = v.grad();
    }
    expect_close(dGq.to_vector(), plus(gq0, rq), 1e-4, 1e-5, "dq");
    expect_close(dGk.to_vector(), plus(gk0, rk), 1e-4, 1e-5, "dk");
    expect_close(dGv.to_vector(), plus(gv0, rv), 1e-4, 1e-5, "dv");
  }
}

TEST_CASE("cuda: cross_entropy with ignore_index, mask and label smoothing matches the CPU op") {
  LR_SKIP_WITHOUT_GPU();
  const int64_t N = 6, V = 1000;
  for (float eps : {0.f, 0.1f}) {
    CAPTURE(eps);
    ag::CrossEntropyOptions opt;
    opt.label_smoothing = eps;
    opt.mask = {1.f, 0.5f, 1.f, 0.f, 2.f, 1.f};
    const std::vector<int32_t> targets = {3, 999, -100, 7, 0, 512};  // row 2 ignored, row 3 masked out
    Tensor logits = leaf({2, 3, V}, 90, 3.f);
    Tensor loss = ag::cross_entropy(logits, targets, opt);
    ag::backward(loss, Tensor::full(Shape(), 0.7f));
    // Row weights as the CPU op forms them (the dispatcher does the same on the host).
    std::vector<float> w(N), scale(N);
    double W = 0.0;
    for (int64_t i = 0; i < N; ++i) W += (w[i] = targets[i] == opt.ignore_index ? 0.f : opt.mask[i]);
    for (int64_t i = 0; i < N; ++i) scale[i] = static_cast<float>(w[i] / W);
    DeviceInts dT(targets);
    Tensor dX = dev(logits), dW = dev(Tensor::from(w, {N})), dScale = dev(Tensor::from(scale, {N}));
    Tensor rowLoss = Tensor::empty({N}, Device::CUDA), lse = Tensor::empty({N}, Device::CUDA);
    Tensor dLoss = Tensor::empty(Shape(), Device::CUDA), dSeed = Tensor::full(Shape(), 0.7f, Device::CUDA);
    cuda::cross_entropy_forward(dp(rowLoss), dp(lse), dp(dX), dT.p, dp(dW), N, V, eps);
    cuda::sum_forward(dp(dLoss), dp(rowLoss), N, static_cast<float>(1.0 / W));
    CHECK(dLoss.item() == doctest::Approx(loss.item()).epsilon(1e-5));
    Tensor g0 = randn({2, 3, V}, 91), dG = dev(g0);
    cuda::cross_entropy_backward(dp(dG), dp(dX), dp(lse), dT.p, dp(dScale), dp(dSeed), N, V, eps);
    expect_close(dG.to_vector(), plus(g0, logits.grad()), 1e-5, 1e-6, "dlogits");
  }
}

TEST_CASE("cuda: fused adamw update matches optim::AdamW over several steps (AdamW and Adam + L2)") {
  LR_SKIP_WITHOUT_GPU();
  for (bool decoupled : {true, false}) {
    CAPTURE(decoupled);
    const int64_t n = 4000;
    optim::AdamWConfig cfg;
    cfg.lr = 1e-2f;
    cfg.weight_decay = 0.1f;
    cfg.decoupled = decoupled;
    Tensor p = leaf({40, 100}, 100);  // 2-D: weight decay applies
    Tensor dP = dev(p), dM = Tensor::zeros({n}, Device::CUDA), dV = Tensor::zeros({n}, Device::CUDA);
    optim::AdamW opt({nn::NamedTensor{"w", p}}, cfg);
    for (int t = 1; t <= 3; ++t) {
      Tensor g = randn({40, 100}, 100 + t);
      p.set_grad(g);
      opt.step();
      const float c1 = 1.f - std::pow(cfg.beta1, static_cast<float>(t));
      const float c2 = 1.f - std::pow(cfg.beta2, static_cast<float>(t));
      Tensor dGrad = dev(g);
      cuda::adamw_update(dp(dP), dp(dM), dp(dV), dp(dGrad), n, cfg.lr, cfg.beta1, cfg.beta2, cfg.eps,
                         cfg.weight_decay, c1, c2, decoupled);
    }
    expect_close(dP, p, 1e-5, 1e-6, "parameters after 3 steps");
    const auto state = opt.state_dict();
    expect_close(dM.to_vector(), state.at("m.w").to_vector(), 1e-5, 1e-7, "first moment");
    expect_close(dV.to_vector(), state.at("v.w").to_vector(), 1e-5, 1e-9, "second moment");
  }
}

#else  // !LOWRANK_HAVE_CUDA

TEST_CASE("cuda: backend not built") {
  MESSAGE("this build has no CUDA backend (no nvcc found, or -DLOWRANK_CUDA=OFF): CUDA tests not compiled");
}

#endif
