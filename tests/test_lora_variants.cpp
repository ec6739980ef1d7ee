// The LoRA variants that change the module itself, named as peft names them: init_lora_weights pissa /
// olora (A0, B0 from W0, the residual frozen) and use_dora (a trainable magnitude per output feature):
// the model unchanged at initialisation, gradients, merge and unmerge, adapter files and merged export.
#include <cmath>

#include "lora/adapter_set.h"
#include "lora/lora.h"
#include "lora/variants.h"
#include "lora_test_util.h"
#include "nn/checkpoint.h"
#include "test_util.h"

using namespace lowrank;
using namespace lowrank::testing;

namespace {

lora::LoRAConfig variant_cfg(std::vector<std::string> targets, const std::string& init, bool dora) {
  lora::LoRAConfig c = make_cfg(std::move(targets), 2, 8.f);
  c.init_lora_weights = init;
  c.use_dora = dora;
  return c;
}

struct Case {
  const char* init;
  bool dora;
};
const Case kCases[] = {{"pissa", false}, {"olora", false}, {"gaussian", true}, {"pissa", true}};

}  // namespace

TEST_CASE("lora family: pissa and olora factor W0 (full rank gives W0 back), and the residual keeps the model") {
  Rng rng(3);
  nn::Linear base(6, 5, true, nn::Init{rng});
  for (const char* init : {"pissa", "olora"}) {
    CAPTURE(std::string(init));
    // at r = min(out, in) = 5 the factors give W0 back: s·B0 A0 for pissa (√(S/s) on each side), B0 A0 = Q R
    // for olora (peft scales nothing there); at r = 2 the forward is still W0 x + b
    lora::LoRALinear full(base, 5, 10.f, 0.f, 0.f, rng, lora::LoRAVariant{false, init, false});
    Tensor w = base.weight.clone();
    w.add_(autograd::matmul(full.lora_B0, full.lora_A0), std::string(init) == "pissa" ? -full.scale : -1.f);
    CHECK(max_diff(w.to_vector(), std::vector<float>(30, 0.f)) <= 1e-5f);
    CHECK(full.lora_A.to_vector() == full.lora_A0.to_vector());
    CHECK(!full.lora_A0.requires_grad());
    CHECK(full.lora_B.requires_grad());
    lora::LoRALinear m(base, 2, 8.f, 0.f, 0.f, rng, lora::LoRAVariant{false, init, false});
    Tensor x = param({3, 6}, 11);
    autograd::NoGradGuard ng;
    CHECK(max_diff(m.forward(x, {}).to_vector(), autograd::linear(x, base.weight, base.bias).to_vector()) <= 1e-5f);
  }
  // PiSSA's A0, B0 span W0's top singular directions: s·B0 A0 is the best rank-2 approximation, so its
  // error is below that of OLoRA's rank-2 QR slice B0 A0 (Eckart–Young)
  lora::LoRALinear p(base, 2, 8.f, 0.f, 0.f, rng, lora::LoRAVariant{false, "pissa", false});
  lora::LoRALinear o(base, 2, 8.f, 0.f, 0.f, rng, lora::LoRAVariant{false, "olora", false});
  auto err = [&](const lora::LoRALinear& m) {
    Tensor w = base.weight.clone();
    w.add_(autograd::matmul(m.lora_B0, m.lora_A0), m.init == "pissa" ? -m.scale : -1.f);
    double e = 0;
    for (float v : w.to_vector()) e += v * v;
    return e;
  };
  CHECK(err(p) < err(o));
}

TEST_CASE("lora family: every variant leaves the GPT's logits unchanged at initialisation") {
  auto base = make_gpt(1);
  const std::vector<float> want = logits(*base);
  for (const Case& c : kCases)
    for (const std::vector<std::string>& targets : {std::vector<std::string>{"q", "v", "o", "mlp"}, {"c_attn"}}) {
      CAPTURE(std::string(c.init));
      CAPTURE(c.dora);
      CAPTURE(targets.size());
      auto model = make_gpt(1);
      Rng rng(5);
      lora::apply_lora(*model, variant_cfg(targets, c.init, c.dora), rng);
      CHECK(max_diff(logits(*model), want) <= 2e-5f);
      const lora::LoRAConfig back = lora::lora_config_of(*model);
      CHECK(back.init_lora_weights == c.init);
      CHECK(back.use_dora == c.dora);
    }
}

TEST_CASE("lora family: variant LoRALinear gradients w.r.t. x, A, B and DoRA's magnitude") {
  Rng rng(3);
  nn::Linear base(5, 4, true, nn::Init{rng});
  for (const Case& c : kCases) {
    CAPTURE(std::string(c.init));
    CAPTURE(c.dora);
    lora::LoRALinear m(base, 2, 4.f, 0.f, 0.f, rng, lora::LoRAVariant{false, c.init, c.dora});
    m.lora_B.add_(Tensor::randn({4, 2}, rng, 0.5f));  // away from the init, where DoRA's factor is 1
    if (c.dora) m.magnitude.add_(Tensor::randn({4}, rng, 0.3f));
    Tensor x = param({3, 5}, 11);
    std::vector<Tensor> in = {x, m.lora_A, m.lora_B};
    if (c.dora) in.push_back(m.magnitude);
    check_grad([&] { return m.forward(x, {}); }, in);
  }
}

TEST_CASE("lora family: variant LoRAFusedQKV gradients, separate slices and shared A") {
  Rng rng(4);
  nn::Linear base(6, 18, true, nn::Init{rng});
  for (const Case& c : kCases)
    for (bool shared : {false, true}) {
      CAPTURE(std::string(c.init));
      CAPTURE(c.dora);
      CAPTURE(shared);
      const std::vector<std::string> slices =
          shared ? std::vector<std::string>{"q", "k", "v"} : std::vector<std::string>{"q", "v"};
      lora::LoRAFusedQKV m(base, slices, 2, 4.f, 0.f, 0.f, rng, shared, lora::LoRAVariant{false, c.init, c.dora});
      std::vector<Tensor> in = {param({2, 3, 6}, 12)};
      for (Tensor& b : m.lora_B) b.add_(Tensor::randn(b.shape(), rng, 0.5f));
      for (Tensor& g : m.magnitude) g.add_(Tensor::randn(g.shape(), rng, 0.3f));
      for (auto* v : {&m.lora_A, &m.lora_B, &m.magnitude}) in.insert(in.end(), v->begin(), v->end());
      Tensor x = in[0];
      GradCheckOptions o;  // DoRA's norm after PiSSA's large A0: h = 1e-2 is too coarse for its curvature
      o.eps = 1e-3f;
      check_grad([&] { return m.forward(x, {}); }, in, o);
    }
}

TEST_CASE("lora family: variant merge and unmerge are exact, and export_merged holds the merged weights") {
  TempDir tmp("variant_merge");
  for (const Case& c : kCases) {
    CAPTURE(std::string(c.init));
    CAPTURE(c.dora);
    auto model = make_gpt(1);
    Rng rng(5);
    lora::apply_lora(*model, variant_cfg({"q", "v", "o", "mlp"}, c.init, c.dora), rng);
    perturb_adapter(*model, 3);
    std::map<std::string, Tensor> w0;
    for (auto& kv : nn::state_dict(*model)) w0[kv.first] = kv.second.clone();
    const std::vector<float> unmerged = logits(*model);
    CHECK(max_diff(unmerged, logits(*make_gpt(1))) > 1e-3f);  // the adapter matters
    const std::string path = tmp.file(std::string(c.init) + (c.dora ? "_dora" : "") + ".safetensors");
    lora::export_merged(path, *model);
    Rng unused(0);
    CHECK(max_diff(logits(*nn::load_model(path, unused)), unmerged) <= 1e-4f);
    lora::merge(*model);
    CHECK(max_diff(logits(*model), unmerged) <= 1e-4f);
    lora::merge(*model);  // a no-op
    CHECK(max_diff(logits(*model), unmerged) <= 1e-4f);
    lora::unmerge(*model);
    for (auto& kv : nn::state_dict(*model)) {
      CAPTURE(kv.first);
      CHECK(max_diff(kv.second.to_vector(), w0.at(kv.first).to_vector()) <= 1e-5f);
    }
    CHECK(max_diff(logits(*model), unmerged) <= 1e-5f);
  }
}

TEST_CASE("lora family: variant adapter files round trip; another variant's config is refused by name") {
  TempDir tmp("variant_files");
  for (const Case& c : kCases) {
    CAPTURE(std::string(c.init));
    CAPTURE(c.dora);
    const lora::LoRAConfig cfg = variant_cfg({"q", "v", "o"}, c.init, c.dora);
    auto model = make_gpt(1);
    Rng rng(5);
    lora::apply_lora(*model, cfg, rng);
    perturb_adapter(*model, 3);
    const std::string path = tmp.file("a.safetensors");
    lora::save_adapter(path, *model, cfg);
    const lora::LoRAConfig read = lora::read_adapter_config(path);
    CHECK(read.init_lora_weights == c.init);
    CHECK(read.use_dora == c.dora);
    auto fresh = make_gpt(1);
    Rng other(77);
    lora::apply_lora(*fresh, read, other);
    lora::load_adapter(path, *fresh);
    CHECK(logits(*fresh) == logits(*model));

    auto plain = make_gpt(1);
    lora::apply_lora(*plain, make_cfg({"q", "v", "o"}, 2, 8.f), other);
    CHECK(contains(error_of([&] { lora::load_adapter(path, *plain); }), c.dora ? "use_dora" : "init_lora_weights"));
  }
  CHECK(contains(error_of([] { variant_cfg({"q", "wte"}, "pissa", false).validate(); }), "target 'wte' takes plain"));
  CHECK(contains(error_of([] { variant_cfg({"q"}, "svd", false).validate(); }), "init_lora_weights must be"));
}

TEST_CASE("lora family: an AdapterSet serves a PiSSA adapter as its plain delta and refuses DoRA by name") {
  TempDir tmp("variant_set");
  std::vector<float> want;
  for (bool dora : {false, true}) {
    const lora::LoRAConfig cfg = variant_cfg({"q", "v", "o"}, dora ? "gaussian" : "pissa", dora);
    auto model = make_gpt(1);
    Rng rng(5);
    lora::apply_lora(*model, cfg, rng);
    perturb_adapter(*model, 3);
    lora::save_adapter(tmp.file(dora ? "d.safetensors" : "p.safetensors"), *model, cfg);
    if (!dora) want = logits(*model);
  }
  auto base = make_gpt(1);
  lora::AdapterSet set(*base);
  set.load("pissa", tmp.file("p.safetensors"));
  set.activate("pissa");
  CHECK(max_diff(logits(*base), want) <= 1e-4f);
  CHECK(contains(error_of([&] { set.load("dora", tmp.file("d.safetensors")); }), "is DoRA (use_dora)"));
}
