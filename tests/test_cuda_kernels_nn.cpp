// The NN kernels of cuda/kernels.h against the CPU ops: softmax, layernorm, embedding, dropout,
// attention and cross-entropy (GEMM, elementwise and reductions are in test_cuda.cpp, which also
// explains the method: references from the public autograd ops, device gradient buffers starting
// from random G0 so that accumulation is checked; the fused adamw update is in test_cuda_optim.cpp).
// Every test skips when no GPU is present.
#include "test_util.h"

#ifdef LOWRANK_HAVE_CUDA

#include "cuda_test_util.h"
#include "tensor/philox.h"

using namespace lowrank;
namespace ag = lowrank::autograd;

using namespace lowrank::cudatest;

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
  const EmbeddingReference ref = embedding_reference();
  const int64_t V = ref.V, C = ref.C, N = ref.N;
  const Tensor &weight = ref.weight, &seed = ref.seed, &y = ref.y;
  DeviceInts dIds(ref.ids);
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

TEST_CASE("cuda: dropout kernel draws the CPU op's mask from the same key and matches it") {
  LR_SKIP_WITHOUT_GPU();
  const int64_t n = 3003;  // not a multiple of 4: the last Philox group is partial
  const float p = 0.3f;
  Tensor x = leaf({3, 1001}, 70), seed = randn({3, 1001}, 71), g0 = randn({3, 1001}, 72);
  Rng rng_cpu(73), rng_key(73);
  Tensor y = ag::dropout(x, p, rng_cpu, true);
  ag::backward(y, seed);
  const uint64_t key = rng_key.next_u64();  // the op's one draw per call
  // The mask from the host compilation of tensor/philox.h; the kernel runs the device compilation.
  std::vector<float> mask(n), y_host(n), x_host = x.to_vector();
  for (int64_t g = 0; g < tensor::philox::dropout_groups(n); ++g)
    tensor::philox::dropout_group(y_host.data(), mask.data(), x_host.data(), n, uint64_t(g), key, p, 1.f / (1.f - p));
  Tensor dMask = Tensor::empty({n}, Device::CUDA), dX = dev(x), dY = Tensor::empty({n}, Device::CUDA),
         dSeed = dev(seed), dG = dev(g0);
  cuda::dropout_forward(dp(dY), dp(dMask), dp(dX), n, p, key);
  cuda::dropout_backward(dp(dG), dp(dSeed), dp(dMask), n);
  CHECK(dMask.to_vector() == mask);          // integer hash, exact float conversion: bit-identical
  CHECK(dY.to_vector() == y.to_vector());    // one multiply per element: exact
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

#endif  // LOWRANK_HAVE_CUDA
