// LoRA on the token embedding (lora::LoRAEmbedding, target "wte"): the lookup and the tied head both
// see E + scale·AᵀBᵀ, gradients, merge exactness, counts, adapter files, merged export, peft refusal.
#include <cmath>

#include "lora/lora.h"
#include "lora_test_util.h"
#include "nn/checkpoint.h"
#include "nn/generate.h"
#include "nn/sample.h"
#include "test_util.h"

using namespace lowrank;
using namespace lowrank::testing;

namespace {

lora::LoRAConfig wte_cfg(std::vector<std::string> targets = {"q", "v", "wte"}) { return make_cfg(std::move(targets)); }

lora::LoRAEmbedding& wte_lora(nn::GPT& m) {
  auto* e = dynamic_cast<lora::LoRAEmbedding*>(m.wte.delta.get());
  REQUIRE(e != nullptr);
  return *e;
}

}  // namespace

TEST_CASE("lora: wte A = 0 at init (logits exact), counts r(V + C), names, the blocks' draws unchanged") {
  auto base = make_gpt(1), model = make_gpt(1), qv = make_gpt(1);
  Rng rng(5), rng2(5);
  const int64_t n = lora::apply_lora(*model, wte_cfg(), rng);
  const int64_t n_qv = lora::apply_lora(*qv, wte_cfg({"q", "v"}), rng2);
  CHECK(n == n_qv + 2 * (23 + 8));  // r (V + C)
  CHECK(logits(*model) == logits(*base));
  auto state = nn::state_dict(*model);
  CHECK(state.at("wte.lora_A").shape() == Shape{2, 23});
  CHECK(state.at("wte.lora_B").shape() == Shape{8, 2});
  CHECK(!state.at("wte.weight").requires_grad());
  CHECK(state.at("h.1.attn.c_attn.lora_A.v").to_vector() ==
        nn::state_dict(*qv).at("h.1.attn.c_attn.lora_A.v").to_vector());
  const lora::LoRAConfig back = lora::lora_config_of(*model);
  CHECK(back.targets == std::vector<std::string>{"q", "v", "wte"});
  CHECK(back.r == 2);
  CHECK(back.alpha == 8.f);
  CHECK(contains(error_of([&] { lora::apply_lora(*model, wte_cfg({"wte"}), rng); }), "already has LoRA"));
}

TEST_CASE("lora: wte lookup and head equal an explicit table E + scale·AᵀBᵀ, merge is exact for both") {
  auto model = make_gpt(1);
  Rng rng(5);
  lora::apply_lora(*model, wte_cfg({"wte"}), rng);
  perturb_adapter(*model, 3);
  lora::LoRAEmbedding& e = wte_lora(*model);
  CHECK(e.scale == 4.f);
  // the explicit table, formed element by element
  const int64_t V = 23, C = 8, r = 2;
  std::vector<float> E = model->wte.weight.to_vector(), A = e.lora_A.to_vector(), Bm = e.lora_B.to_vector();
  for (int64_t v = 0; v < V; ++v)
    for (int64_t c = 0; c < C; ++c) {
      double d = 0.0;
      for (int64_t k = 0; k < r; ++k) d += static_cast<double>(A[k * V + v]) * Bm[c * r + k];
      E[v * C + c] += static_cast<float>(4.0 * d);
    }
  auto ref = make_gpt(1);
  ref->wte.weight.copy_(Tensor::from(E, {V, C}));
  const std::vector<float> unmerged = logits(*model);
  CHECK(max_diff(unmerged, logits(*ref)) <= 1e-5f);
  {
    autograd::NoGradGuard ng;  // head_at's rows equal the full head's
    Tensor h = model->hidden(kLoraIds, 2, 8, {});
    const std::vector<float> rows = model->head_at(h, {3, 12}).to_vector();
    std::vector<float> want(unmerged.begin() + 3 * V, unmerged.begin() + 4 * V);
    want.insert(want.end(), unmerged.begin() + 12 * V, unmerged.begin() + 13 * V);
    CHECK(max_diff(rows, want) <= 1e-6f);
  }
  // head_loss: unmerged it takes the unfused head (weight + ΔE), merged the fused one on the merged table
  auto head_loss = [&] {
    autograd::NoGradGuard ng;
    return model->head_loss(model->hidden(kLoraIds, 2, 8, {}), {3, 12}, {5, 7}, {}).item();
  };
  const float loss_unmerged = head_loss();
  {
    autograd::NoGradGuard ng;
    const float want =
        autograd::cross_entropy(model->head_at(model->hidden(kLoraIds, 2, 8, {}), {3, 12}), {5, 7}).item();
    CHECK(loss_unmerged == want);
  }
  const std::vector<float> e0 = model->wte.weight.to_vector();
  lora::merge(*model);
  CHECK(e.merged());
  CHECK(head_loss() == doctest::Approx(loss_unmerged).epsilon(1e-5));
  CHECK(max_diff(model->wte.weight.to_vector(), E) <= 1e-6f);
  CHECK(max_diff(logits(*model), unmerged) <= 1e-5f);
  CHECK(contains(error_of([&] { lora::base_hash(*model); }), "wte is merged"));
  lora::unmerge(*model);
  CHECK(max_diff(model->wte.weight.to_vector(), e0) <= 1e-6f);
}

TEST_CASE("lora: wte gradients of the lookup and of the tied head w.r.t. h, A and B") {
  Rng rng(3);
  nn::Embedding table(11, 6, nn::Init{rng});
  table.delta = std::make_unique<lora::LoRAEmbedding>(table, 3, 6.f, 0.f, rng);
  auto& d = dynamic_cast<lora::LoRAEmbedding&>(*table.delta);
  CHECK(d.weight.shares_storage(table.weight));
  CHECK(!table.weight.requires_grad());
  CHECK(d.lora_A.to_vector() == std::vector<float>(33, 0.f));
  d.lora_A.copy_(Tensor::randn({3, 11}, rng, 0.5f));  // A nonzero, so B's gradient is too
  const std::vector<int32_t> ids = {4, 0, 10, 4, 7};  // a repeated id accumulates
  check_grad([&] { return table.forward(ids, {5}); }, {d.lora_A, d.lora_B});
  Tensor h = param({2, 3, 6}, 11);
  check_grad([&] { return table.project(h); }, {h, d.lora_A, d.lora_B});
}

TEST_CASE("lora: wte adapter round trip, merged export, wte alone, and peft refuses it with a reason") {
  TempDir tmp("wte");
  const std::string path = tmp.file("adapter.safetensors");
  for (const auto& targets : {std::vector<std::string>{"q", "v", "wte"}, std::vector<std::string>{"wte"}}) {
    CAPTURE(targets.size());
    const lora::LoRAConfig cfg = wte_cfg(targets);
    auto model = make_gpt(1);
    Rng rng(5);
    lora::apply_lora(*model, cfg, rng);
    perturb_adapter(*model, 3);
    lora::save_adapter(path, *model, cfg);
    CHECK(load_safetensors(path).tensors.count("wte.lora_A"));
    CHECK(lora::read_adapter_config(path).targets == targets);
    auto fresh = make_gpt(1);
    Rng other(77);
    lora::apply_lora(*fresh, cfg, other);
    lora::load_adapter(path, *fresh);
    const std::vector<float> before = logits(*model);
    CHECK(logits(*fresh) == before);

    const std::string merged = tmp.file("merged.safetensors");
    const std::vector<float> w = model->wte.weight.to_vector();
    lora::export_merged(merged, *model);
    Rng any(1);
    auto plain = nn::load_model(merged, any);
    CHECK(!plain->wte.delta);
    CHECK(max_diff(logits(*plain), before) <= 1e-5f);
    CHECK(model->wte.delta);  // the model is put back as it was
    CHECK(model->wte.weight.to_vector() == w);
    CHECK(logits(*model) == before);

    const std::string e = error_of([&] { lora::save_peft(tmp.file("peft"), *model, cfg); });
    CHECK(contains(e, "target wte"));
    CHECK(contains(e, "tied lm_head"));
  }
}

TEST_CASE("lora: wte decoding sees ΔE (next_logits, batched beams): unmerged equals merged") {
  auto model = make_gpt(1);
  Rng rng(5);
  lora::apply_lora(*model, wte_cfg({"wte"}), rng);
  perturb_adapter(*model, 3);
  const std::vector<int32_t> prompt = {1, 5, 7};
  nn::DecodeOptions opt;
  opt.max_new_tokens = 4;
  opt.beam_size = 3;
  opt.eos_id = 22;
  const std::vector<float> next = nn::next_logits(*model, prompt);
  const auto beams = nn::beam_search_batch(*model, {prompt, {4, 2}}, opt);
  lora::merge(*model);
  CHECK(max_diff(nn::next_logits(*model, prompt), next) <= 1e-5f);
  CHECK(nn::beam_search_batch(*model, {prompt, {4, 2}}, opt) == beams);
}
