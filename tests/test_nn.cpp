// GPT modules: HF parameter names, exact parameter counts of the real configs (built on the
// meta device, nothing allocated), causality, and a gradient check of a whole tiny GPT.
#include <set>

#include "nn/gpt.h"
#include "test_util.h"

using namespace lowrank;
using namespace lowrank::testing;

namespace {}  // namespace

TEST_CASE("gpt: parameter names follow Hugging Face GPT-2") {
  Rng rng(1);
  nn::GPT model(tiny_config(), rng);
  std::vector<std::string> names;
  for (auto& p : model.named_parameters()) names.push_back(p.name);
  std::vector<std::string> expect_prefix = {"wte.weight",
                                            "wpe.weight",
                                            "h.0.ln_1.weight",
                                            "h.0.ln_1.bias",
                                            "h.0.attn.c_attn.weight",
                                            "h.0.attn.c_attn.bias",
                                            "h.0.attn.c_proj.weight",
                                            "h.0.attn.c_proj.bias",
                                            "h.0.ln_2.weight",
                                            "h.0.ln_2.bias",
                                            "h.0.mlp.c_fc.weight",
                                            "h.0.mlp.c_fc.bias",
                                            "h.0.mlp.c_proj.weight",
                                            "h.0.mlp.c_proj.bias"};
  REQUIRE(names.size() == 2 + 12 * 2 + 2);
  for (size_t i = 0; i < expect_prefix.size(); ++i) CHECK(names[i] == expect_prefix[i]);
  CHECK(names[names.size() - 2] == "ln_f.weight");
  CHECK(names.back() == "ln_f.bias");
  CHECK(std::set<std::string>(names.begin(), names.end()).size() == names.size());
}

TEST_CASE("gpt: parameter counts of GPT-2 small/medium/large match the published ones, without allocating") {
  const size_t before = tensor::cpu_bytes_in_use();
  Rng rng(1);
  struct Case {
    const char* name;
    int64_t count;
  };
  for (Case c : {Case{"gpt2", 124439808}, Case{"gpt2-medium", 354823168}, Case{"gpt2-large", 774030080}}) {
    CAPTURE(c.name);
    nn::GPT model(nn::config_by_name(c.name), rng, Device::Meta);
    CHECK(model.num_parameters() == c.count);
  }
  nn::GPT gpt3(nn::config_by_name("gpt3-175b"), rng, Device::Meta);
  CHECK(gpt3.num_parameters() > 174'000'000'000LL);
  CHECK(gpt3.num_parameters() < 176'000'000'000LL);
  CHECK(tensor::cpu_bytes_in_use() == before);
}

TEST_CASE("gpt: configs validate and unknown names list the known ones") {
  CHECK(error_of([] { nn::config_by_name("gpt5"); }).find("known: tiny") != std::string::npos);
  nn::GPTConfig c = tiny_config();
  c.n_head = 3;
  Rng rng(1);
  CHECK(error_of([&] { nn::GPT m(c, rng); }).find("not divisible by n_head 3") != std::string::npos);
}

TEST_CASE("gpt: logits at position t do not depend on tokens after t") {
  Rng rng(2);
  nn::GPT model(tiny_config(), rng);
  autograd::NoGradGuard ng;
  std::vector<int32_t> ids = {1, 5, 7, 2, 9, 3, 4, 11};
  Tensor a = model.forward(ids, 1, 8, {});
  for (int t = 0; t < 7; ++t) {
    std::vector<int32_t> changed = ids;
    changed[t + 1] = (changed[t + 1] + 7) % 23;
    Tensor b = model.forward(changed, 1, 8, {});
    for (int s = 0; s <= t; ++s)
      for (int v = 0; v < 23; ++v) REQUIRE(a.at({0, s, v}) == b.at({0, s, v}));
    bool later_changed = false;
    for (int v = 0; v < 23; ++v) later_changed = later_changed || a.at({0, t + 1, v}) != b.at({0, t + 1, v});
    CHECK(later_changed);
  }
  CHECK(error_of([&] { model.forward({1, 2}, 1, 3, {}); }).find("2 ids for B=1 T=3") != std::string::npos);
  std::vector<int32_t> long_ids(9, 1);
  CHECK(error_of([&] { model.forward(long_ids, 1, 9, {}); }).find("exceeds n_positions 8") != std::string::npos);
}

TEST_CASE("gpt: gradient check of the loss w.r.t. parameters of every kind") {
  nn::GPTConfig cfg = tiny_config();
  Rng rng(3);
  nn::GPT model(cfg, rng);
  // Give LayerNorm gains and all biases non-trivial values so their gradients are exercised.
  Rng noise(4);
  for (auto& p : model.named_parameters())
    if (p.tensor.ndim() == 1)
      p.tensor.copy_(Tensor::randn(p.tensor.shape(), noise, 0.3f, p.name.find("ln") != std::string::npos ? 1.f : 0.f));
  std::vector<int32_t> ids = {1, 5, 7, 2, 9, 3, 4, 11, 0, 22, 13, 6};
  std::vector<int32_t> targets = {5, 7, 2, 9, 3, 4, 11, 0, 22, 13, 6, 8};
  std::vector<Tensor> inputs;
  for (auto& p : model.named_parameters()) inputs.push_back(p.tensor);
  autograd::GradCheckOptions opt;
  opt.max_per_input = 6;
  check_grad([&] { return autograd::cross_entropy(model.forward(ids, 2, 6, {}), targets); }, inputs, opt);
}

TEST_CASE("gpt: incremental forward with a KV cache equals the full forward (also with prefixes)") {
  nn::GPTConfig cfg = tiny_config();
  Rng rng(5);
  nn::GPT model(cfg, rng);
  Rng prng(6);
  std::vector<int32_t> ids = {1, 5, 7, 2, 9, 3};
  for (int variant = 0; variant < 3; ++variant) {
    CAPTURE(variant);
    if (variant == 1) model.prefix_embed = Tensor::randn({2, cfg.n_embd}, prng, 0.5f);
    if (variant == 2) {
      model.prefix_embed = Tensor();
      for (auto& b : model.h) {
        b->attn.prefix_k = Tensor::randn({3, cfg.n_embd}, prng, 0.5f);
        b->attn.prefix_v = Tensor::randn({3, cfg.n_embd}, prng, 0.5f);
      }
    }
    autograd::NoGradGuard ng;
    Tensor full = model.forward(ids, 1, 6, {});
    nn::KVCache cache;
    nn::Context ctx;
    ctx.cache = &cache;
    Tensor first = model.forward({1, 5, 7}, 1, 3, ctx);  // a prompt, then one token at a time
    for (int t = 0; t < 3; ++t)
      for (int v = 0; v < cfg.vocab_size; ++v)
        REQUIRE(first.at({0, t, v}) == doctest::Approx(full.at({0, t, v})).epsilon(1e-5));
    for (int t = 3; t < 6; ++t) {
      Tensor step = model.forward({ids[static_cast<size_t>(t)]}, 1, 1, ctx);
      for (int v = 0; v < cfg.vocab_size; ++v)
        REQUIRE(step.at({0, 0, v}) == doctest::Approx(full.at({0, t, v})).epsilon(1e-4).scale(1.0));
    }
    CHECK(cache.positions == 6);
  }
}

TEST_CASE(
    "gpt: head_at gives the full head's logits at the chosen rows, and the same masked loss and gradients, fused too") {
  nn::GPTConfig cfg = tiny_config();
  Rng rng(3);
  nn::GPT model(cfg, rng);
  Rng noise(4);  // as in the gradient check above: non-trivial LayerNorm gains and biases
  for (auto& p : model.named_parameters())
    if (p.tensor.ndim() == 1)
      p.tensor.copy_(Tensor::randn(p.tensor.shape(), noise, 0.3f, p.name.find("ln") != std::string::npos ? 1.f : 0.f));
  std::vector<int32_t> ids = {1, 5, 7, 2, 9, 3, 4, 11, 0, 22, 13, 6};
  std::vector<int32_t> targets = {5, 7, 2, 9, 3, 4, 11, 0, 22, 13, 6, 8};
  std::vector<float> mask = {0, 0, 1, 1, 0, 1, 0, 0, 0, 1, 1, 1};  // (B=2, T=6): a completion-only mask
  std::vector<int32_t> rows, row_targets;
  for (int32_t i = 0; i < 12; ++i)
    if (mask[i] > 0.f) {
      rows.push_back(i);
      row_targets.push_back(targets[i]);
    }
  const int64_t V = cfg.vocab_size;
  const std::vector<float> full = model.forward(ids, 2, 6, {}).to_vector();
  const std::vector<float> picked = model.head_at(model.hidden(ids, 2, 6, {}), rows).to_vector();
  REQUIRE(picked.size() == rows.size() * static_cast<size_t>(V));
  for (size_t r = 0; r < rows.size(); ++r)
    for (int64_t v = 0; v < V; ++v) CHECK(picked[r * V + v] == doctest::Approx(full[rows[r] * V + v]).epsilon(1e-5));

  auto grads_of = [&](const std::function<Tensor()>& loss_fn, float& loss) {
    for (auto& p : model.named_parameters()) p.tensor.zero_grad();
    Tensor l = loss_fn();
    loss = l.item();
    autograd::backward(l);
    std::vector<std::vector<float>> g;
    for (auto& p : model.named_parameters()) {
      const Tensor d = p.tensor.grad();
      g.push_back(d.defined() ? d.to_vector() : std::vector<float>{});
    }
    return g;
  };
  autograd::CrossEntropyOptions masked;
  masked.mask = mask;
  masked.label_smoothing = 0.1f;
  autograd::CrossEntropyOptions smooth;
  smooth.label_smoothing = 0.1f;
  float l_full = 0.f, l_rows = 0.f;
  const auto g_full =
      grads_of([&] { return autograd::cross_entropy(model.forward(ids, 2, 6, {}), targets, masked); }, l_full);
  const auto g_rows = grads_of(
      [&] { return autograd::cross_entropy(model.head_at(model.hidden(ids, 2, 6, {}), rows), row_targets, smooth); },
      l_rows);
  CHECK(l_rows == doctest::Approx(l_full).epsilon(1e-6));
  REQUIRE(g_full.size() == g_rows.size());
  for (size_t k = 0; k < g_full.size(); ++k)
    for (size_t i = 0; i < g_full[k].size(); ++i)
      CHECK(g_rows[k][i] == doctest::Approx(g_full[k][i]).epsilon(1e-4).scale(1e-6));
  float l_fused = 0.f;  // the head fused with the loss (GPT::head_loss): the same loss and gradients
  const auto g_fused =
      grads_of([&] { return model.head_loss(model.hidden(ids, 2, 6, {}), rows, row_targets, smooth); }, l_fused);
  CHECK(l_fused == doctest::Approx(l_full).epsilon(1e-6));
  REQUIRE(g_full.size() == g_fused.size());
  for (size_t k = 0; k < g_full.size(); ++k)
    for (size_t i = 0; i < g_full[k].size(); ++i)
      CHECK(g_fused[k][i] == doctest::Approx(g_full[k][i]).epsilon(1e-4).scale(1e-6));

  std::vector<Tensor> inputs;
  for (auto& p : model.named_parameters()) inputs.push_back(p.tensor);
  autograd::GradCheckOptions opt;
  opt.max_per_input = 4;
  check_grad(
      [&] { return autograd::cross_entropy(model.head_at(model.hidden(ids, 2, 6, {}), rows), row_targets, smooth); },
      inputs, opt);
  CHECK(error_of([&] { model.head_at(model.hidden(ids, 2, 6, {}), {12}); }).find("out of range") != std::string::npos);
  CHECK(error_of([&] { model.head_loss(model.hidden(ids, 2, 6, {}), {12}, {0}, smooth); }).find("out of range") !=
        std::string::npos);
}
