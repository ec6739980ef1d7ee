// The paper's baselines and the method entry point (lora/baselines.h, lora/methods.h): each method
// trains exactly its parameters, the count formula matches real (and meta-device) models, the
// identity-at-init methods leave the logits bit-identical, the new modules pass gradient checks,
// prefixes work with the KV cache, and a few AdamW steps lower the loss.
#include <cmath>
#include <functional>
#include <set>

#include "lora/baselines.h"
#include "lora/methods.h"
#include "optim/adamw.h"
#include "test_util.h"

using namespace lowrank;
using namespace lowrank::testing;

namespace {

// Three blocks (FT-Top2 must leave the first one frozen) and room for a prefix of 4 before 6 tokens.
nn::GPTConfig baselines_config() { return tiny_config(23, 12, 8, 2, 3); }

lora::MethodConfig method(const std::string& name) {
  lora::MethodConfig m;
  m.method = name;
  m.adapter_dim = 3;
  m.prefix_len = 4;
  return m;
}

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }
bool ends(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// Which parameter names each method trains (see lora/baselines.h), for baselines_config's 3 blocks.
bool trains(const std::string& method, const std::string& n) {
  if (method == "lora") return has(n, "lora_");
  if (method == "ft") return true;
  if (method == "ft-top2") return n.rfind("h.1.", 0) == 0 || n.rfind("h.2.", 0) == 0;
  if (method == "bitfit") return ends(n, ".bias");
  if (method == "adapter-h") return has(n, ".adapter_attn.") || has(n, ".adapter_mlp.");
  if (method == "adapter-l") return has(n, ".adapter_mlp.");
  if (method == "prefix-embed") return n == "prefix_embed";
  return ends(n, "attn.prefix_k") || ends(n, "attn.prefix_v");
}

std::vector<float> logits(nn::GPT& model, const std::vector<int32_t>& ids, int64_t B, int64_t T) {
  autograd::NoGradGuard ng;
  return model.forward(ids, B, T, {}).to_vector();
}

const std::vector<int32_t> kIds = {1, 5, 7, 2, 9, 3, 4, 11, 0, 22, 13, 6};

}  // namespace

TEST_CASE("method: names, and unknown methods or sizes are errors that list the valid ones") {
  CHECK(lora::method_names() == std::vector<std::string>{"lora", "ft", "ft-top2", "bitfit", "adapter-h", "adapter-l",
                                                         "prefix-embed", "prefix-layer"});
  Rng rng(1);
  nn::GPT model(baselines_config(), rng);
  const std::string valid = "(valid: lora, ft, ft-top2, bitfit, adapter-h, adapter-l, prefix-embed, prefix-layer)";
  CHECK(error_of([&] { lora::apply_method(model, method("adapter"), rng); }) == "unknown method 'adapter' " + valid);
  CHECK(has(error_of([&] { lora::trainable_count(baselines_config(), method("lorax")); }), valid));
  lora::MethodConfig m = method("adapter-h");
  m.adapter_dim = 0;
  CHECK(has(error_of([&] { lora::apply_method(model, m, rng); }), "adapter_dim must be positive"));
  m = method("prefix-layer");
  m.prefix_len = 13;
  CHECK(has(error_of([&] { lora::apply_method(model, m, rng); }), "length 13 exceeds n_positions 12"));
}

TEST_CASE("method: each trains exactly its parameters, and the count formula equals the real count") {
  const nn::GPTConfig cfg = baselines_config();
  std::set<std::string> base;
  {
    Rng rng(2);
    nn::GPT m(cfg, rng);
    for (auto& p : m.named_parameters()) base.insert(p.name);
  }
  for (const std::string& name : lora::method_names()) {
    CAPTURE(name);
    Rng rng(2);
    nn::GPT model(cfg, rng);
    const int64_t n = lora::apply_method(model, method(name), rng);
    CHECK(n == lora::trainable_count(cfg, method(name)));
    CHECK(n == model.num_trainable_parameters());
    std::set<std::string> all, trainable;
    for (auto& p : model.named_parameters()) {
      all.insert(p.name);
      CAPTURE(p.name);
      CHECK(p.tensor.requires_grad() == trains(name, p.name));
      if (p.tensor.requires_grad()) trainable.insert(p.name);
    }
    CHECK(!trainable.empty());
    for (const std::string& b : base) CHECK(all.count(b) == 1);  // the base model is all still there
  }
  // The adapters' own names, and Adapter-L's single adapter per block.
  Rng rng(3);
  nn::GPT h(cfg, rng), l(cfg, rng);
  lora::apply_method(h, method("adapter-h"), rng);
  lora::apply_method(l, method("adapter-l"), rng);
  std::vector<std::string> names;
  for (auto& p : h.named_parameters())
    if (p.name.rfind("h.0.adapter", 0) == 0) names.push_back(p.name);
  CHECK(names == std::vector<std::string>{"h.0.adapter_attn.down.weight", "h.0.adapter_attn.down.bias",
                                          "h.0.adapter_attn.up.weight", "h.0.adapter_attn.up.bias",
                                          "h.0.adapter_mlp.down.weight", "h.0.adapter_mlp.down.bias",
                                          "h.0.adapter_mlp.up.weight", "h.0.adapter_mlp.up.bias"});
  names.clear();
  for (auto& p : l.named_parameters())
    if (p.name.rfind("h.2.adapter", 0) == 0) names.push_back(p.name);
  CHECK(names == std::vector<std::string>{"h.2.adapter_mlp.ln.weight", "h.2.adapter_mlp.ln.bias",
                                          "h.2.adapter_mlp.down.weight", "h.2.adapter_mlp.down.bias",
                                          "h.2.adapter_mlp.up.weight", "h.2.adapter_mlp.up.bias"});
}

TEST_CASE("method: LoRA's count formula follows targets, layers and bias modes") {
  const nn::GPTConfig cfg = baselines_config();
  struct Case {
    std::vector<std::string> targets;
    std::vector<int64_t> layers;
    const char* bias;
  };
  for (const Case& c :
       {Case{{"q", "v"}, {}, "none"}, Case{{"q", "k", "v", "o", "mlp"}, {1}, "none"},
        Case{{"v", "mlp"}, {0, 2}, "lora_only"}, Case{{"q"}, {}, "all"}, Case{{"c_attn", "o"}, {2}, "lora_only"}}) {
    lora::MethodConfig m = method("lora");
    m.lora.targets = c.targets;
    m.lora.layers = c.layers;
    m.lora.bias = c.bias;
    CAPTURE(c.bias);
    CAPTURE(c.targets.size());
    Rng rng(4);
    nn::GPT model(cfg, rng);
    CHECK(lora::apply_method(model, m, rng) == lora::trainable_count(cfg, m));
  }
  lora::MethodConfig m = method("lora");  // the paper's GPT-2 M setting: r = 4 on Wq, Wv of 24 layers
  CHECK(lora::trainable_count(nn::config_by_name("gpt2-medium"), m) == 24 * 2 * 4 * 2 * 1024);
}

TEST_CASE("method: counts of GPT-2 M on the meta device, and the paper's Table 3 sizes") {
  const size_t before = tensor::cpu_bytes_in_use();
  const nn::GPTConfig cfg = nn::config_by_name("gpt2-medium");
  for (const std::string& name : lora::method_names()) {
    if (name == "lora") continue;  // covered on real tiny models above
    CAPTURE(name);
    Rng rng(5);
    nn::GPT model(cfg, rng, Device::Meta);
    CHECK(lora::apply_method(model, method(name), rng) == lora::trainable_count(cfg, method(name)));
  }
  CHECK(tensor::cpu_bytes_in_use() == before);
  // Table 3 (GPT-2 M). FT: the paper prints 354.92M; HF's GPT-2 M (tied head) has 354.82M.
  CHECK(lora::trainable_count(cfg, method("ft")) == 354823168);
  CHECK(lora::trainable_count(cfg, method("ft-top2")) == 25192448);  // "25.19M": two blocks, no ln_f
  lora::MethodConfig al = method("adapter-l");
  al.adapter_dim = 224;  // "11.09M" needs Lin's LayerNorm and both biases in each adapter
  CHECK(lora::trainable_count(cfg, al) == 11089152);
}

TEST_CASE("baseline: at init LoRA, FT, FT-Top2, BitFit, Adapter-H and Adapter-L give the base logits exactly") {
  Rng base_rng(6);
  nn::GPT base(baselines_config(), base_rng);
  const std::vector<float> expect = logits(base, kIds, 2, 6);
  for (const std::string& name : lora::method_names()) {
    CAPTURE(name);
    Rng rng(6);
    nn::GPT model(baselines_config(), rng);
    Rng mrng(7);
    lora::apply_method(model, method(name), mrng);
    const bool identity = name != "prefix-embed" && name != "prefix-layer";
    if (identity) CHECK(logits(model, kIds, 2, 6) == expect);   // bit for bit (LoRA: B = 0)
    if (!identity) CHECK(logits(model, kIds, 2, 6) != expect);  // the learned prefixes are seen
  }
}

TEST_CASE("baseline: gradient checks of the adapters w.r.t. their parameters and input") {
  Rng rng(8);
  nn::Init init{rng};
  lora::HoulsbyAdapter h(8, 3, init);
  lora::LinAdapter l(8, 3, 1e-5f, init);
  // Non-zero up projections (and LN affine), so every parameter gets a non-trivial gradient.
  Rng noise(9);
  for (nn::Module* m : std::initializer_list<nn::Module*>{&h, &l})
    for (auto& p : m->named_parameters())
      p.tensor.copy_(Tensor::randn(p.tensor.shape(), noise, 0.5f, has(p.name, "ln.weight") ? 1.f : 0.f));
  Tensor x = param({2, 3, 8}, 11);
  {  // Finite differences straddling ReLU's kink would disagree: keep Lin's pre-activations away from 0.
    autograd::NoGradGuard ng;
    for (float u : autograd::linear(l.ln.forward(x), l.down.weight, l.down.bias).to_vector())
      REQUIRE(std::fabs(u) > 0.05f);
  }
  for (nn::Layer* a : std::initializer_list<nn::Layer*>{&h, &l}) {
    std::vector<Tensor> inputs = {x};
    for (auto& p : a->named_parameters()) inputs.push_back(p.tensor);
    CAPTURE(a == &l);
    check_grad([&] { return a->forward(x, {}); }, inputs);
  }
}

TEST_CASE("baseline: gradient checks of prefix_embed and prefix_k/prefix_v through a GPT loss") {
  const std::vector<int32_t> targets = {5, 7, 2, 9, 3, 4, 11, 0};
  const std::vector<int32_t> ids(kIds.begin(), kIds.begin() + 8);
  for (const char* name : {"prefix-embed", "prefix-layer"}) {
    CAPTURE(name);
    Rng rng(11);
    nn::GPT model(baselines_config(), rng);
    lora::apply_method(model, method(name), rng);
    std::vector<Tensor> inputs;
    for (auto& p : model.named_parameters())
      if (p.tensor.requires_grad()) inputs.push_back(p.tensor);
    REQUIRE(inputs.size() == (std::string(name) == "prefix-embed" ? 1u : 6u));
    GradCheckOptions opt;
    opt.max_per_input = 12;
    check_grad([&] { return autograd::cross_entropy(model.forward(ids, 2, 4, {}), targets); }, inputs, opt);
  }
}

TEST_CASE("baseline: prefixes start from real tokens' embeddings / keys and values") {
  const std::vector<int32_t> ids = {3, 17, 8};
  Rng rng(12);
  nn::GPT model(baselines_config(), rng);
  Rng mrng(13);
  lora::apply_prefix_embed(model, 3, mrng, ids);
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t c = 0; c < 8; ++c) CHECK(model.prefix_embed.at({i, c}) == model.wte.weight.at({ids[i], c}));
  lora::apply_prefix_layer(model, 3, mrng, ids);  // runs after prefix_embed: takes the real tokens' rows
  // Layer 0's keys/values are c_attn(ln_1(wte[ids] + wpe[0..3)))'s k and v slices, recomputed here.
  autograd::NoGradGuard ng;
  nn::GPT& m = model;
  Tensor x = autograd::add(m.wte.forward(ids, {3}), m.wpe.forward({0, 1, 2}, {3}));
  Tensor qkv = m.h[0]->attn.c_attn->forward(m.h[0]->ln_1.forward(x), {});
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t c = 0; c < 8; ++c) {
      CHECK(m.h[0]->attn.prefix_k.at({i, c}) == doctest::Approx(qkv.at({i, 8 + c})).epsilon(1e-5));
      CHECK(m.h[0]->attn.prefix_v.at({i, c}) == doctest::Approx(qkv.at({i, 16 + c})).epsilon(1e-5));
    }
  CHECK(has(error_of([&] { lora::apply_prefix_embed(model, 2, mrng, ids); }), "3 init ids for length 2"));
}

TEST_CASE("baseline: prefix methods decode with the KV cache exactly like the full forward") {
  const std::vector<int32_t> ids = {1, 5, 7, 2, 9, 3};
  for (const char* name : {"prefix-embed", "prefix-layer"}) {
    CAPTURE(name);
    Rng rng(14);
    nn::GPT model(baselines_config(), rng);
    lora::apply_method(model, method(name), rng);
    const std::vector<float> full = logits(model, ids, 1, 6);
    autograd::NoGradGuard ng;
    nn::KVCache cache;
    nn::Context ctx;
    ctx.cache = &cache;
    std::vector<float> inc = model.forward({1, 5, 7}, 1, 3, ctx).to_vector();  // a prompt, then one at a time
    for (size_t t = 3; t < ids.size(); ++t)
      for (float v : model.forward({ids[t]}, 1, 1, ctx).to_vector()) inc.push_back(v);
    REQUIRE(inc.size() == full.size());
    for (size_t i = 0; i < full.size(); ++i) CHECK(inc[i] == doctest::Approx(full[i]).epsilon(1e-4).scale(1.0));
  }
}

TEST_CASE("baseline: 30 AdamW steps of adapter-h and prefix-layer lower the loss of a frozen GPT") {
  // A fixed batch walking a 6-token cycle (next = the cycle's successor), which the random base
  // model does not know. The base gets unit-gain weights and a std-1 head (like a trained model's,
  // unlike GPT-2's 0.02 init) so that frozen projections and the tied head pass a learned signal on.
  const std::vector<int32_t> cycle = {4, 17, 9, 21, 2, 13};
  std::vector<int32_t> ids, targets;
  for (size_t b = 0; b < 4; ++b)
    for (size_t t = 0; t < 8; ++t) {
      ids.push_back(cycle[(b + t) % 6]);
      targets.push_back(cycle[(b + t + 1) % 6]);
    }
  for (const char* name : {"adapter-h", "prefix-layer"}) {
    CAPTURE(name);
    Rng rng(15);
    nn::GPT model(baselines_config(), rng);
    for (auto& p : model.named_parameters()) {
      const float std = p.name == "wte.weight" ? 1.f : 1.f / std::sqrt(static_cast<float>(p.tensor.size(-1)));
      if (p.tensor.ndim() == 2) p.tensor.copy_(Tensor::randn(p.tensor.shape(), rng, std));
    }
    lora::apply_method(model, method(name), rng);
    optim::AdamWConfig oc;
    oc.lr = 5e-2f;
    optim::AdamW opt(model.named_parameters(), oc);
    CHECK(opt.num_tensors() == (std::string(name) == "adapter-h" ? 24u : 6u));  // only the method's tensors
    float first = 0.f, last = 0.f;
    for (int step = 0; step < 30; ++step) {
      opt.zero_grad();
      Tensor loss = autograd::cross_entropy(model.forward(ids, 4, 8, {}), targets);
      (step == 0 ? first : last) = loss.item();
      autograd::backward(loss);
      opt.step();
    }
    INFO("loss " << first << " -> " << last);
    CHECK(last < 0.6f * first);
  }
}
