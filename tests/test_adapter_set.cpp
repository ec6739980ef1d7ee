// lora::AdapterSet: many adapters on one base, switched by merge/unmerge (exact up to rounding) or mixed
// in one batch, row by row; each equal to the adapter applied alone.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <memory>

#include "lora/adapter_set.h"
#include "lora/segmented.h"
#include "lora_test_util.h"
#include "nn/generate.h"
#include "test_util.h"

using namespace lowrank;
using namespace lowrank::testing;

namespace {

nn::GPTConfig set_config() { return tiny_config(23, 16, 16, 2, 2); }

// The base every adapter of these tests was trained on: GPT init, then weights spread out (std 0.5) so
// that the next-token distributions are peaked and greedy/beam choices are far from ties.
std::unique_ptr<nn::GPT> base_model() {
  Rng rng(11);
  auto m = std::make_unique<nn::GPT>(set_config(), rng);
  Rng noise(12);
  for (nn::NamedTensor& p : m->named_parameters()) p.tensor.add_(Tensor::randn(p.tensor.shape(), noise, 0.5f));
  return m;
}

struct AdapterFile {
  std::string name, path;
  lora::LoRAConfig cfg;
  bool peft = false;
};

// Adapters of different ranks and targets, written as after training (B nonzero): ours and peft's.
std::vector<AdapterFile> write_adapters(const TempDir& dir) {
  std::vector<AdapterFile> files = {{"qv", "", make_cfg({"q", "v"}, 2, 8.f), false},
                                    {"mlp", "", make_cfg({"o", "mlp"}, 4, 16.f), false},
                                    {"attn", "", make_cfg({"c_attn"}, 3, 6.f), true},
                                    {"emb", "", make_cfg({"q", "wte"}, 2, 4.f), false}};
  uint64_t seed = 100;
  for (AdapterFile& f : files) {
    auto m = base_model();
    Rng rng(seed);
    lora::apply_lora(*m, f.cfg, rng);
    perturb_adapter(*m, ++seed);
    f.path = (dir.dir / (f.name + (f.peft ? "" : ".safetensors"))).string();
    if (f.peft)
      lora::save_peft(f.path, *m, f.cfg);
    else
      lora::save_adapter(f.path, *m, f.cfg);
  }
  return files;
}

// The base with one adapter applied alone, unmerged: the reference a set must reproduce.
std::unique_ptr<nn::GPT> alone(const AdapterFile& f) {
  auto m = base_model();
  if (f.peft) {
    lora::load_peft(f.path, *m);
  } else {
    Rng rng(0);
    lora::apply_lora(*m, lora::read_adapter_config(f.path), rng);
    lora::load_adapter(f.path, *m);
  }
  return m;
}

std::vector<Tensor> weights(nn::GPT& m) {
  std::vector<Tensor> out;
  for (nn::NamedTensor& p : m.named_parameters()) out.push_back(p.tensor.clone());
  return out;
}

}  // namespace

TEST_CASE("adapter set: activate merges in place, equals the adapter alone, and switches back to W0") {
  TempDir dir("adapter_set_switch");
  const std::vector<AdapterFile> files = write_adapters(dir);
  auto model = base_model();
  const std::vector<float> base_logits = logits(*model);
  const std::vector<Tensor> w0 = weights(*model);
  lora::AdapterSet set(*model);
  for (const AdapterFile& f : files) set.load(f.name, f.path);
  CHECK(set.adapters().size() == files.size());
  for (const AdapterFile& f : files) {
    set.activate(f.name);
    CHECK(set.active() == f.name);
    auto ref = alone(f);  // logits of size ~30: float rounding of W0 + ΔW against x W0ᵀ + x ΔWᵀ
    CHECK(max_diff(logits(*model), logits(*ref)) < 1e-3f);
  }
  // 4 · 3 switches more, then the base: W0 back within rounding (each switch adds and subtracts a
  // float ΔW: at most a few ulps of |W0| + |ΔW| per switch).
  for (int k = 0; k < 3; ++k)
    for (const AdapterFile& f : files) set.activate(f.name);
  set.activate("");
  const std::vector<Tensor> w = weights(*model);
  float drift = 0.f;
  for (size_t i = 0; i < w.size(); ++i) drift = std::max(drift, max_diff(w[i].to_vector(), w0[i].to_vector()));
  CAPTURE(drift);
  CHECK(drift < 1e-5f);
  CHECK(max_diff(logits(*model), base_logits) < 1e-3f);
}

TEST_CASE(
    "adapter set: a mixed batch (3 adapters of different ranks, ours and peft's, and the base) decodes as each "
    "adapter alone, greedy and beam") {
  TempDir dir("adapter_set_mixed");
  std::vector<AdapterFile> files = write_adapters(dir);
  files.pop_back();  // "emb" adapts wte: served merged only (its own test below)
  auto model = base_model();
  lora::AdapterSet set(*model);
  std::map<std::string, int32_t> slot;
  for (const AdapterFile& f : files) slot[f.name] = set.load(f.name, f.path);
  // prompts of two lengths; rows of one adapter both consecutive and scattered
  const std::vector<std::vector<int32_t>> prompts = {{1, 2, 3, 4}, {5, 6, 7, 8}, {9, 10, 11, 12}, {13, 14, 15, 16},
                                                     {3, 1, 4, 1}, {2, 7, 1, 8}, {4, 4, 2},       {17, 3, 9},
                                                     {6, 5, 4},    {20, 21, 22}};
  const std::vector<std::string> who = {"qv", "qv", "mlp", "", "attn", "mlp", "attn", "", "qv", "mlp"};
  std::vector<int32_t> ids;
  for (const std::string& n : who) ids.push_back(n.empty() ? -1 : slot[n]);
  for (int64_t beam : {1, 3}) {
    CAPTURE(beam);
    nn::DecodeOptions opt;
    opt.beam_size = beam;
    opt.max_new_tokens = 6;
    opt.eos_id = 0;
    const std::vector<nn::Hypothesis> mixed = nn::beam_decode_batch(*model, prompts, ids, opt);
    REQUIRE(mixed.size() == prompts.size());
    for (size_t i = 0; i < prompts.size(); ++i) {
      CAPTURE(i);
      std::unique_ptr<nn::GPT> ref = who[i].empty() ? base_model() : nullptr;
      for (const AdapterFile& f : files)
        if (f.name == who[i]) ref = alone(f);
      const nn::Hypothesis one = nn::beam_decode(*ref, prompts[i], opt);
      CHECK(mixed[i].tokens == one.tokens);
      CHECK(std::fabs(mixed[i].log_prob - one.log_prob) < 1e-4);
    }
  }
}

TEST_CASE("adapter set: segmented forward of scattered rows equals per-row LoRA") {
  // y (N, T, out) += scale · (x Aᵀ) Bᵀ per row's adapter; rows of slot 0 scattered, slot 1 consecutive.
  const int64_t N = 5, T = 2, in = 3, out = 4;
  Rng rng(3);
  const Tensor x = Tensor::randn({N, T, in}, rng, 1.f);
  const Tensor A0 = Tensor::randn({2, in}, rng, 1.f), B0 = Tensor::randn({out, 2}, rng, 1.f);
  const Tensor A1 = Tensor::randn({1, in}, rng, 1.f), B1 = Tensor::randn({out, 1}, rng, 1.f);
  const std::vector<lora::cpu::SegmentDelta> d = {{A0.data(), B0.data(), 2, 0.5f}, {A1.data(), B1.data(), 1, 2.f}};
  const std::vector<int32_t> rows = {0, 1, 1, -1, 0};
  std::vector<float> y(static_cast<size_t>(N * T * out), 1.f);
  lora::cpu::lora_segmented_forward(y.data(), x.data(), rows.data(), N, T, in, out, d.data(), 2);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t o = 0; o < out; ++o) {
        double want = 1.0;
        const int32_t s = rows[static_cast<size_t>(n)];
        if (s >= 0) {
          const Tensor& A = s == 0 ? A0 : A1;
          const Tensor& B = s == 0 ? B0 : B1;
          const int64_t R = A.size(0);
          for (int64_t r = 0; r < R; ++r) {
            double h = 0.0;
            for (int64_t i = 0; i < in; ++i) h += double(x.data()[(n * T + t) * in + i]) * A.data()[r * in + i];
            want += d[static_cast<size_t>(s)].scale * h * B.data()[o * R + r];
          }
        }
        CHECK(y[static_cast<size_t>((n * T + t) * out + o)] == doctest::Approx(want).epsilon(1e-5));
      }
}

TEST_CASE("adapter set: bad input leaves the set as it was") {
  TempDir dir("adapter_set_bad");
  const std::vector<AdapterFile> files = write_adapters(dir);
  auto model = base_model();
  lora::AdapterSet set(*model);
  const int32_t qv = set.load("qv", files[0].path);
  const int32_t emb = set.load("emb", files[3].path);
  CHECK_THROWS_WITH_AS(set.load("qv", files[1].path), doctest::Contains("already loaded"), Error);
  CHECK_THROWS_WITH_AS(set.load("x", (dir.dir / "missing.safetensors").string()), doctest::Contains("no such file"),
                       Error);
  // an adapter trained on another base: the hash names it
  {
    Rng rng(5);
    nn::GPT other(set_config(), rng);
    lora::apply_lora(other, files[0].cfg, rng);
    const std::string p = (dir.dir / "other.safetensors").string();
    lora::save_adapter(p, other, files[0].cfg);
    CHECK_THROWS_WITH_AS(set.load("other", p), doctest::Contains("hash mismatch"), Error);
  }
  // a corrupt file
  const std::string bad = (dir.dir / "bad.safetensors").string();
  write_bytes(bad, "not a safetensors file");
  CHECK_THROWS_AS(set.load("bad", bad), Error);
  CHECK(set.adapters().size() == 2);
  CHECK_THROWS_WITH_AS(set.activate("nope"), doctest::Contains("unknown adapter 'nope'"), Error);
  CHECK(set.active().empty());
  // mixed rows: the embedding adapter, an empty slot, or with an adapter merged
  nn::DecodeOptions opt;
  opt.max_new_tokens = 2;
  opt.eos_id = 0;
  const std::vector<std::vector<int32_t>> prompts = {{1, 2}, {3, 4}};
  CHECK_THROWS_WITH_AS(nn::beam_decode_batch(*model, prompts, {qv, emb}, opt), doctest::Contains("served merged only"),
                       Error);
  CHECK_THROWS_WITH_AS(nn::beam_decode_batch(*model, prompts, {qv, 7}, opt), doctest::Contains("holds no adapter"),
                       Error);
  set.activate("qv");
  CHECK_THROWS_WITH_AS(nn::beam_decode_batch(*model, prompts, {qv, -1}, opt), doctest::Contains("is merged"), Error);
  set.unload("qv");  // unmerges first
  CHECK(set.active().empty());
  CHECK_FALSE(set.has("qv"));
  CHECK(set.load("qv2", files[0].path) == qv);  // the slot is reused
  CHECK_THROWS_WITH_AS(lora::AdapterSet(*alone(files[0])), doctest::Contains("already has LoRA"), Error);
}

TEST_CASE("adapter set: the base is plain again when the set goes, bit for bit without switches") {
  TempDir dir("adapter_set_detach");
  const std::vector<AdapterFile> files = write_adapters(dir);
  auto model = base_model();
  const std::vector<float> before = logits(*model);
  {
    lora::AdapterSet set(*model);
    set.load("qv", files[0].path);
    CHECK(dynamic_cast<lora::SegmentedLinear*>(model->h[0]->attn.c_attn.get()) != nullptr);
    CHECK(logits(*model) == before);  // no rows given: every row is the base
  }
  CHECK(dynamic_cast<lora::SegmentedLinear*>(model->h[0]->attn.c_attn.get()) == nullptr);
  CHECK(logits(*model) == before);
}

#ifdef LOWRANK_HAVE_CUDA
#include "nn/checkpoint.h"
#include "tests/cuda_test_util.h"

TEST_CASE("cuda: adapter set rows on the device equal the CPU's, merged and mixed") {
  LR_SKIP_WITHOUT_GPU();
  TempDir dir("adapter_set_cuda");
  std::vector<AdapterFile> files = write_adapters(dir);
  files.pop_back();  // "emb": merged only
  const std::string base = (dir.dir / "base.safetensors").string();
  nn::save_model(base, *base_model());
  Rng rng(1);
  std::unique_ptr<nn::GPT> cpu = nn::load_model(base, rng), gpu = nn::load_model(base, rng, Device::CUDA);
  lora::AdapterSet cs(*cpu), gs(*gpu);
  std::vector<int32_t> rows;
  for (const AdapterFile& f : files) {
    rows.push_back(cs.load(f.name, f.path));
    CHECK(gs.load(f.name, f.path) == rows.back());
  }
  rows = {rows[0], rows[0], -1, rows[2], rows[1]};  // a run of two, the base, then two single rows
  std::vector<int32_t> ids;
  for (int32_t i = 0; i < 5 * 6; ++i) ids.push_back((i * 7) % 23);
  autograd::NoGradGuard ng;
  nn::Context ctx;
  ctx.row_adapters = &rows;
  const std::vector<float> want = cpu->forward(ids, 5, 6, ctx).to_vector();
  const std::vector<float> got = gpu->forward(ids, 5, 6, ctx).to(Device::CPU).to_vector();
  CHECK(max_diff(got, want) < 1e-3f);
  cs.activate("mlp");
  gs.activate("mlp");
  CHECK(max_diff(gpu->forward(ids, 5, 6, {}).to(Device::CPU).to_vector(), cpu->forward(ids, 5, 6, {}).to_vector()) <
        1e-3f);
}
#endif  // LOWRANK_HAVE_CUDA
