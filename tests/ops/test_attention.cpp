// attention, multi-head scaled dot-product attention over (B, T, C) q, k, v (autograd/attention.cpp;
// lab 4): CPU values against a double-precision reference, causal masking with Tq <= Tk, gradient
// checks (fused qkv slices too), inference, errors and thread-count independence, then the op on
// CUDA tensors against the CPU op (skipped without a GPU).
#include <cmath>

#include "tensor/parallel.h"
#include "tests/test_util.h"

#ifdef LOWRANK_HAVE_CUDA
#include "tests/cuda_test_util.h"
#endif

using namespace lowrank;
using namespace lowrank::autograd;
using namespace lowrank::testing;

// ---- CPU ----

namespace {

// Attention computed with plain loops in double from the logical elements (works for strided views).
std::vector<double> naive_attention(const Tensor& q, const Tensor& k, const Tensor& v, int NH, bool causal) {
  const int64_t B = q.size(0), Tq = q.size(1), Tk = k.size(1), C = q.size(2), hs = C / NH;
  std::vector<double> out(static_cast<size_t>(B * Tq * C), 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < NH; ++h)
      for (int64_t i = 0; i < Tq; ++i) {
        const int64_t n = causal ? i + (Tk - Tq) + 1 : Tk;  // visible keys [0, n)
        std::vector<double> s(static_cast<size_t>(n));
        double mx = -1e300, sum = 0.0;
        for (int64_t j = 0; j < n; ++j) {
          double dot = 0.0;
          for (int64_t c = h * hs; c < (h + 1) * hs; ++c) dot += double(q.at({b, i, c})) * k.at({b, j, c});
          s[j] = dot / std::sqrt(double(hs));
          mx = std::max(mx, s[j]);
        }
        for (double& x : s) sum += (x = std::exp(x - mx));
        for (int64_t c = h * hs; c < (h + 1) * hs; ++c) {
          double acc = 0.0;
          for (int64_t j = 0; j < n; ++j) acc += s[j] / sum * v.at({b, j, c});
          out[(b * Tq + i) * C + c] = acc;
        }
      }
  return out;
}

void check_close(const Tensor& t, const std::vector<double>& expect, double tol = 1e-5) {
  std::vector<float> got = t.to_vector();
  REQUIRE(got.size() == expect.size());
  double worst = 0.0;
  for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::fabs(got[i] - expect[i]));
  CHECK(worst < tol);
}

}  // namespace

TEST_CASE("attention: forward matches a double-precision reference, causal and not, Tq == Tk and Tq < Tk") {
  const int NH = 3;
  for (bool causal : {false, true})
    for (int64_t Tq : {5, 2}) {
      CAPTURE(causal);
      CAPTURE(Tq);
      Rng rng(200 + Tq);
      Tensor q = Tensor::randn({2, Tq, 12}, rng), k = Tensor::randn({2, 5, 12}, rng),
             v = Tensor::randn({2, 5, 12}, rng);
      Tensor y = attention(q, k, v, NH, causal);
      CHECK(y.shape() == Shape{2, Tq, 12});
      CHECK(y.is_contiguous());
      check_close(y, naive_attention(q, k, v, NH, causal));
    }
}

TEST_CASE("attention: the last Tq queries over all Tk keys equal the last Tq rows of full causal attention") {
  const int64_t T = 7, Tq = 3, C = 8;
  Rng rng(210);
  Tensor q = Tensor::randn({2, T, C}, rng), k = Tensor::randn({2, T, C}, rng), v = Tensor::randn({2, T, C}, rng);
  Tensor full = attention(q, k, v, 2, true);
  Tensor tail = attention(q.narrow(1, T - Tq, Tq), k, v, 2, true);  // strided batch: no copy of q
  std::vector<float> a = full.narrow(1, T - Tq, Tq).to_vector(), b = tail.to_vector();
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) CHECK(a[i] == doctest::Approx(b[i]).epsilon(1e-6).scale(1.0));
}

TEST_CASE("attention: causal outputs at positions <= t ignore k and v at t+1 exactly") {
  const int64_t T = 6, C = 8, t = 2;
  Rng rng(220);
  Tensor q = Tensor::randn({2, T, C}, rng), k = Tensor::randn({2, T, C}, rng), v = Tensor::randn({2, T, C}, rng);
  Tensor before = attention(q, k, v, 2, true);
  Tensor k2 = k.clone(), v2 = v.clone();
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t c = 0; c < C; ++c) {
      k2.set({b, t + 1, c}, 100.f + c);
      v2.set({b, t + 1, c}, -50.f);
    }
  Tensor after = attention(q, k2, v2, 2, true);
  CHECK(before.narrow(1, 0, t + 1).to_vector() == after.narrow(1, 0, t + 1).to_vector());
  CHECK(before.narrow(1, t + 1, 1).to_vector() != after.narrow(1, t + 1, 1).to_vector());
}

TEST_CASE("attention: gradients for q, k, v (Tq == Tk and Tq < Tk)") {
  for (bool causal : {false, true}) {
    CAPTURE(causal);
    Tensor q = param({2, 4, 6}, 230), k = param({2, 4, 6}, 231), v = param({2, 4, 6}, 232);
    check_grad([&] { return attention(q, k, v, 2, causal); }, {q, k, v});
    Tensor qs = param({2, 2, 6}, 233);
    check_grad([&] { return attention(qs, k, v, 2, causal); }, {qs, k, v});
  }
  Tensor x = param({2, 4, 6}, 234);  // self-attention with q = k = v the same tensor
  check_grad([&] { return attention(x, x, x, 3, true); }, {x});
}

TEST_CASE("attention: q, k, v as slices of one fused (B, T, 3C) tensor pass gradients to it") {
  const int64_t C = 6;
  Tensor qkv = param({2, 4, 3 * C}, 240);
  auto f = [&] { return attention(slice(qkv, -1, 0, C), slice(qkv, -1, C, C), slice(qkv, -1, 2 * C, C), 2, true); };
  Tensor y = f();
  Tensor qc = qkv.narrow(2, 0, C).contiguous(), kc = qkv.narrow(2, C, C).contiguous();
  check_close(y, naive_attention(qc, kc, qkv.narrow(2, 2 * C, C).contiguous(), 2, true));
  tape().clear();
  GradCheckOptions opt;
  opt.max_per_input = 2 * 4 * 3 * C;  // every element
  check_grad(f, {qkv}, opt);
}

TEST_CASE("attention: inference records no node and gives the recorded values") {
  Tensor q = param({2, 5, 8}, 250), k = param({2, 5, 8}, 251), v = param({2, 5, 8}, 252);
  tape().clear();
  Tensor y = attention(q, k, v, 2, true);
  CHECK(tape().size() == 1);
  tape().clear();
  NoGradGuard guard;
  Tensor yi = attention(q, k, v, 2, true);
  CHECK(tape().size() == 0);
  CHECK_FALSE(yi.requires_grad());
  CHECK(y.to_vector() == yi.to_vector());
}

TEST_CASE("attention: shape and stride errors name the op and the shapes") {
  Tensor q = Tensor::zeros({2, 4, 6}), k = Tensor::zeros({2, 4, 6});
  CHECK(contains(error_of([&] {
                   attention(q, k, Tensor::zeros({2, 3, 6}), 2, false);
                 }),
                 "attention: k (2, 4, 6) and v (2, 3, 6) must have the same shape"));
  Tensor k3 = Tensor::zeros({3, 4, 6});
  CHECK(contains(error_of([&] { attention(q, k3, k3, 2, false); }), "attention: q (2, 4, 6) and k (3, 4, 6)"));
  Tensor k8 = Tensor::zeros({2, 4, 8});
  CHECK(contains(error_of([&] { attention(q, k8, k8, 2, false); }), "must have the same B and C"));
  CHECK(contains(error_of([&] { attention(q, k, k, 4, false); }), "C = 6 of q (2, 4, 6) is not divisible by NH = 4"));
  CHECK(contains(error_of([&] { attention(Tensor::zeros({2, 6}), k, k, 2, false); }), "must be (B, T, C)"));
  Tensor k2 = Tensor::zeros({2, 2, 6});
  CHECK(contains(error_of([&] { attention(q, k2, k2, 2, true); }), "causal needs Tq <= Tk"));
  Tensor qt = Tensor::zeros({2, 6, 4}).transpose(1, 2);  // (2, 4, 6) with channel stride 4
  CHECK(contains(error_of([&] { attention(qt, k, k, 2, false); }), "q (2, 4, 6) must have stride 1 in its last dim"));
}

TEST_CASE("attention: forward and gradients are the same with 1 and 2 threads") {
  Tensor qkv = param({2, 64, 96}, 260);  // q, k, v read in place as strided slices of the fused qkv
  check_same_with_1_and_2_threads(
      [&] { return attention(slice(qkv, -1, 0, 32), slice(qkv, -1, 32, 32), slice(qkv, -1, 64, 32), 4, true); }, {qkv});
}

// ---- CUDA: attention 1e-4 relative (docs/cuda.md) ----
#ifdef LOWRANK_HAVE_CUDA

namespace ag = lowrank::autograd;
using namespace lowrank::cudatest;

namespace {

struct AttnCase {
  int64_t B, Tq, Tk, C;
  int NH;
  bool causal, fused;
  std::vector<int32_t> key_len;
};

// q, k, v as leaves, or (fused) as slices of one leaf qkv (B, T, 3C) whose rows are strided. The
// slices are recorded ops: make one device's inputs after the other device's backward cleared the tape.
struct AttnInputs {
  Tensor qkv, q, k, v;
  std::vector<Tensor> leaves() const { return qkv.defined() ? std::vector<Tensor>{qkv} : std::vector<Tensor>{q, k, v}; }
};

AttnInputs attn_inputs(const AttnCase& c, bool on_gpu) {
  auto make = [&](const Shape& s, uint64_t seed) { return on_gpu ? dleaf(randn(s, seed)) : leaf(s, seed); };
  AttnInputs in;
  if (c.fused) {
    in.qkv = make({c.B, c.Tq, 3 * c.C}, 80);
    in.q = ag::slice(in.qkv, 2, 0, c.C);
    in.k = ag::slice(in.qkv, 2, c.C, c.C);
    in.v = ag::slice(in.qkv, 2, 2 * c.C, c.C);
  } else {
    in.q = make({c.B, c.Tq, c.C}, 81);
    in.k = make({c.B, c.Tk, c.C}, 82);
    in.v = make({c.B, c.Tk, c.C}, 83);
  }
  return in;
}

// The op on CUDA tensors against the CPU op, forward and gradients, with fresh gradients and with
// gradients accumulated onto a random G0 (the same on both devices: backward adds to it).
void check_attention_on_cuda(const AttnCase& c) {
  for (bool accumulate : {false, true}) {
    CAPTURE(accumulate);
    Tensor seed = randn({c.B, c.Tq, c.C}, 84);
    AttnInputs cpu = attn_inputs(c, false);
    std::vector<Tensor> g0;
    if (accumulate)
      for (Tensor t : cpu.leaves()) {
        g0.push_back(randn(t.shape(), 85 + g0.size()));
        t.set_grad(g0.back().clone());
      }
    Tensor out = ag::attention(cpu.q, cpu.k, cpu.v, c.NH, c.causal, c.key_len);
    ag::backward(out, seed);
    AttnInputs gpu = attn_inputs(c, true);
    for (size_t i = 0; i < g0.size(); ++i) gpu.leaves()[i].set_grad(dev(g0[i]));
    Tensor dout = ag::attention(gpu.q, gpu.k, gpu.v, c.NH, c.causal, c.key_len);
    CHECK(dout.device() == Device::CUDA);
    expect_close(dout, out, 1e-4, 1e-5, "forward");
    {
      ag::NoGradGuard no_grad;  // inference: no node, the same kernels give the same output
      Tensor infer = ag::attention(gpu.q, gpu.k, gpu.v, c.NH, c.causal, c.key_len);
      CHECK(!infer.requires_grad());
      CHECK(infer.to_vector() == dout.to_vector());
    }
    ag::backward(dout, dev(seed));
    const std::vector<Tensor> lc = cpu.leaves(), lg = gpu.leaves();
    const char* names[] = {"dq", "dk", "dv"};
    for (size_t i = 0; i < lc.size(); ++i) expect_grad(lg[i], lc[i], 1e-4, 1e-5, c.fused ? "dqkv" : names[i]);
  }
}

}  // namespace

// Head size 8: the cuBLAS path (cuda/attention_cublas.cu).
TEST_CASE("cuda: attention op on CUDA tensors matches the CPU op (causal, prefix, key lengths, fused qkv)") {
  LR_SKIP_WITHOUT_GPU();
  const std::vector<AttnCase> cases = {
      {2, 7, 7, 24, 3, true, false, {}},          // GPT-2 style self-attention (B <= NH)
      {5, 3, 9, 16, 2, true, false, {}},          // queries are the last Tq of Tk keys (KV cache); B > NH
      {3, 6, 6, 32, 4, false, false, {6, 2, 4}},  // padded bidirectional batch
      {2, 300, 300, 16, 2, true, true, {}},       // rows longer than a block; q/k/v strided slices of qkv
      {3, 5, 5, 24, 2, true, true, {5, 3, 1}},    // fused slices with key lengths, B > NH
  };
  for (size_t ci = 0; ci < cases.size(); ++ci) {
    CAPTURE(ci);
    check_attention_on_cuda(cases[ci]);
  }
}

// Head sizes 32, 64, 128: the fused kernels (cuda/flash_attention_*.cu; tiles of 64 query rows, 32
// at hs 128, and of 32 keys: cuda/flash_attention.h), and 48, which falls back to cuBLAS. Sequence
// lengths are not multiples of the tiles; key lengths end inside a tile and before whole tiles.
TEST_CASE("cuda: attention flash kernels match the CPU op (hs 32, 64, 128, fallback 48; masks, ragged tiles)") {
  LR_SKIP_WITHOUT_GPU();
  const std::vector<AttnCase> cases = {
      {2, 70, 70, 64, 2, true, false, {}},           // hs 32, causal, 2 query tiles, 3 key tiles
      {2, 70, 70, 128, 2, false, false, {70, 45}},   // hs 64, bidirectional, key_len ends mid-tile
      {3, 5, 77, 128, 2, true, false, {77, 40, 6}},  // hs 64, Tq < Tk (KV cache) with key lengths
      {2, 1, 50, 64, 2, true, false, {50, 17}},      // hs 32, one query over a cache (decoding)
      {2, 100, 100, 128, 2, true, true, {100, 33}},  // hs 64, fused qkv (row stride 3C), causal
      {2, 40, 40, 256, 2, true, true, {}},           // hs 128, fused qkv, 2 query tiles of 32
      {1, 33, 97, 256, 2, true, false, {}},          // hs 128, Tq < Tk
      {2, 37, 37, 96, 2, true, true, {37, 20}},      // hs 48: the cuBLAS path, fused qkv
      {2, 66, 66, 64, 1, false, false, {66, 1}},     // hs 64, one head, a sequence of one key
  };
  for (size_t ci = 0; ci < cases.size(); ++ci) {
    CAPTURE(ci);
    check_attention_on_cuda(cases[ci]);
  }
}

#endif  // LOWRANK_HAVE_CUDA
