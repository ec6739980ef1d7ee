// The autograd ops layernorm, embedding, dropout, attention and cross_entropy on CUDA tensors
// against the same ops on CPU tensors: the forward values and every gradient reached by
// autograd::backward (the device branch of each op: its allocations, uploads of integer side inputs,
// saved state and launcher arguments). Tolerances as in docs/cuda.md. Every test skips without a GPU.
#include "test_util.h"

#ifdef LOWRANK_HAVE_CUDA

#include "cuda_test_util.h"

using namespace lowrank;
namespace ag = lowrank::autograd;

using namespace lowrank::cudatest;

namespace {

// A CUDA leaf holding t's values, with its own autograd state.
Tensor dleaf(const Tensor& t) {
  Tensor d = dev(t);
  d.requires_grad_(true);
  return d;
}

// The gradient of the device twin `d` matches the CPU tensor's gradient, and stayed on the device.
void expect_grad(const Tensor& d, const Tensor& cpu, double rtol, double atol, const char* what) {
  INFO("gradient " << std::string(what));
  REQUIRE(cpu.grad().defined());
  REQUIRE(d.grad().defined());
  CHECK(d.grad().device() == Device::CUDA);
  expect_close(d.grad(), cpu.grad(), rtol, atol, what);
}

}  // namespace

TEST_CASE("cuda: layernorm op on CUDA tensors matches the CPU op (bias, no bias, strided input)") {
  LR_SKIP_WITHOUT_GPU();
  const int64_t C = 300;
  for (int variant = 0; variant < 3; ++variant) {  // 0 bias, 1 no bias, 2 bias + strided x
    CAPTURE(variant);
    const bool bias = variant != 1, strided = variant == 2;
    Tensor x = leaf(strided ? Shape{9, 2, C} : Shape{2, 9, C}, 50, 2.f), w = leaf({C}, 51);
    Tensor b = bias ? leaf({C}, 52) : Tensor(), seed = randn({2, 9, C}, 53);
    Tensor dx = dleaf(x), dw = dleaf(w), db = bias ? dleaf(b) : Tensor();
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

TEST_CASE("cuda: embedding op on CUDA tensors: exact rows, and a scatter-add bitwise equal to the CPU") {
  LR_SKIP_WITHOUT_GPU();
  const EmbeddingReference ref = embedding_reference();
  const int64_t V = ref.V, C = ref.C, N = ref.N;
  const std::vector<int32_t>& ids = ref.ids;
  const Tensor &weight = ref.weight, &seed = ref.seed, &y = ref.y;
  Tensor dweight = dleaf(weight);
  Tensor dy = ag::embedding(dweight, ids, Shape{10, 20});
  CHECK(dy.device() == Device::CUDA);
  CHECK((dy.shape() == Shape{10, 20, C}));
  CHECK(dy.to_vector() == y.to_vector());  // a copy: exact
  ag::backward(dy, dev(seed));
  REQUIRE(dweight.grad().defined());
  CHECK(dweight.grad().to_vector() == weight.grad().to_vector());  // sums in the CPU's order
  // A frozen table (GPT-2's in LoRA) still looks up on the device, recording nothing.
  Tensor frozen = dev(weight);
  Tensor yf = ag::embedding(frozen, ids, Shape{N});
  CHECK(!yf.requires_grad());
  CHECK(yf.to_vector() == y.to_vector());
  CHECK_THROWS_AS(ag::embedding(frozen, {0, static_cast<int32_t>(V)}, Shape{2}), lowrank::Error);  // id out of range
}

TEST_CASE("cuda: dropout op on CUDA tensors drops the same units as the CPU op for the same seed") {
  LR_SKIP_WITHOUT_GPU();
  const float p = 0.3f;
  Tensor x = leaf({3, 1000}, 70), seed = randn({3, 1000}, 71);
  Rng rng_cpu(73), rng_gpu(73);
  Tensor y = ag::dropout(x, p, rng_cpu, true);
  ag::backward(y, seed);
  Tensor dx = dleaf(x);
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
  std::vector<Tensor> leaves() const {
    return qkv.defined() ? std::vector<Tensor>{qkv} : std::vector<Tensor>{q, k, v};
  }
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

}  // namespace

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
    const AttnCase& c = cases[ci];
    CAPTURE(ci);
    Tensor seed = randn({c.B, c.Tq, c.C}, 84);
    AttnInputs cpu = attn_inputs(c, false);
    Tensor out = ag::attention(cpu.q, cpu.k, cpu.v, c.NH, c.causal, c.key_len);
    ag::backward(out, seed);
    AttnInputs gpu = attn_inputs(c, true);
    Tensor dout = ag::attention(gpu.q, gpu.k, gpu.v, c.NH, c.causal, c.key_len);
    CHECK(dout.device() == Device::CUDA);
    expect_close(dout, out, 1e-4, 1e-5, "forward");
    {
      ag::NoGradGuard no_grad;  // inference: no P kept, the launcher's scratch instead; same kernels
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

TEST_CASE("cuda: cross_entropy op on CUDA logits (ignore_index, mask, label smoothing), loss kept on the device") {
  LR_SKIP_WITHOUT_GPU();
  const int64_t V = 1000;
  for (float eps : {0.f, 0.1f}) {
    CAPTURE(eps);
    ag::CrossEntropyOptions opt;
    opt.label_smoothing = eps;
    opt.mask = {1.f, 0.5f, 1.f, 0.f, 2.f, 1.f};
    const std::vector<int32_t> targets = {3, 999, -100, 7, 0, 512};  // row 2 ignored, row 3 masked out
    Tensor logits = leaf({2, 3, V}, 90, 3.f), dlogits = dleaf(logits);
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

TEST_CASE("cuda: embedding, dropout, layernorm, attention and cross_entropy chained on the device match the CPU") {
  LR_SKIP_WITHOUT_GPU();
  // A toy block: token embedding (V, 3C) -> dropout -> layernorm -> fused q/k/v slices -> causal
  // attention whose (B, T, C) output serves as logits over C = V classes -> cross entropy.
  const int64_t B = 2, T = 9, V = 16, C = V;
  std::vector<int32_t> ids(B * T), targets(B * T);
  Rng rng(100);
  for (size_t i = 0; i < ids.size(); ++i) {
    ids[i] = static_cast<int32_t>(rng.randint(V));
    targets[i] = i % 5 == 4 ? -100 : static_cast<int32_t>(rng.randint(V));
  }
  Tensor wte = leaf({V, 3 * C}, 101), lnw = leaf({3 * C}, 102), lnb = leaf({3 * C}, 103, 0.1f);
  Tensor dwte = dleaf(wte), dlnw = dleaf(lnw), dlnb = dleaf(lnb);
  auto run = [&](const Tensor& emb, const Tensor& w, const Tensor& b) {
    Rng drop(104);  // the same seed on both devices: the same units dropped
    Tensor h = ag::dropout(ag::embedding(emb, ids, Shape{B, T}), 0.1f, drop, true);
    Tensor qkv = ag::layernorm(h, w, b);
    Tensor y = ag::attention(ag::slice(qkv, 2, 0, C), ag::slice(qkv, 2, C, C), ag::slice(qkv, 2, 2 * C, C), 2, true);
    return ag::cross_entropy(y, targets);
  };
  Tensor loss = run(wte, lnw, lnb);
  ag::backward(loss);
  Tensor dloss = run(dwte, dlnw, dlnb);
  CHECK(dloss.device() == Device::CUDA);
  CHECK(dloss.item() == doctest::Approx(loss.item()).epsilon(1e-4));
  ag::backward(dloss);  // seeds dloss = 1 on the device
  expect_grad(dwte, wte, 1e-3, 1e-5, "wte");
  expect_grad(dlnw, lnw, 1e-3, 1e-5, "ln weight");
  expect_grad(dlnb, lnb, 1e-3, 1e-5, "ln bias");
}

#endif  // LOWRANK_HAVE_CUDA
