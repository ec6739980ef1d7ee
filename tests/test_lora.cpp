// LoRA (Hu et al., 2021): modules, apply_lora, merge/unmerge, adapter files, merged export, the
// Hugging Face peft layout, and a short training run, all on tiny GPTs (the file runs in well under 2 s).
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "lora/lora.h"
#include "lora_test_util.h"
#include "nn/checkpoint.h"
#include "optim/adamw.h"
#include "test_util.h"

using namespace lowrank;
using namespace lowrank::testing;
namespace fs = std::filesystem;

TEST_CASE("lora: at init the LoRA model's logits equal the base model's exactly (B = 0)") {
  auto base = make_gpt(1), model = make_gpt(1);
  Rng rng(5);
  lora::apply_lora(*model, make_cfg({"q", "v", "o", "mlp"}), rng);
  CHECK(logits(*model) == logits(*base));
  Rng drop(9);  // training mode with LoRA dropout: still exact, B A dropout(x) = 0
  nn::Context train;
  train.training = true;
  train.rng = &drop;
  CHECK(model->forward(kLoraIds, 2, 8, train).to_vector() == logits(*base));

  auto state = nn::state_dict(*model);
  CHECK(state.count("h.0.attn.c_attn.lora_A.q"));
  CHECK(state.count("h.1.attn.c_attn.lora_B.v"));
  CHECK(!state.count("h.0.attn.c_attn.lora_A.k"));
  CHECK(state.at("h.0.mlp.c_fc.lora_A").shape() == Shape{2, 8});
  CHECK(state.at("h.0.mlp.c_fc.lora_B").shape() == Shape{32, 2});
  CHECK(contains(error_of([&] { lora::apply_lora(*model, make_cfg({"q"}), rng); }), "already has LoRA"));
  lora::LoRAConfig bad = make_cfg({"q", "c_attn"});
  CHECK(contains(error_of([&] { bad.validate(); }), "cannot be combined"));
  bad = make_cfg({"x"});
  CHECK(contains(error_of([&] { bad.validate(); }), "unknown target 'x'"));
  bad = make_cfg({"q"}, 0);
  CHECK(contains(error_of([&] { bad.validate(); }), "rank r must be >= 1"));
  auto other = make_gpt(1);
  lora::LoRAConfig far = make_cfg({"q"});
  far.layers = {2};
  CHECK(contains(error_of([&] { lora::apply_lora(*other, far, rng); }), "layer 2 out of range"));
}

TEST_CASE("lora: merge folds scale·BA into W, unmerge restores it, forwards agree") {
  auto model = make_gpt(1);
  Rng rng(5);
  lora::apply_lora(*model, make_cfg({"q", "k", "v", "o", "mlp"}), rng);
  perturb_adapter(*model, 3);
  std::map<std::string, Tensor> w0;
  for (auto& kv : nn::state_dict(*model)) w0[kv.first] = kv.second.clone();
  const std::vector<float> unmerged = logits(*model);

  lora::merge(*model);
  const std::vector<float> merged = logits(*model);
  CHECK(max_diff(merged, unmerged) <= 1e-5f);
  CHECK(max_diff(nn::state_dict(*model).at("h.0.attn.c_attn.weight").to_vector(),
                 w0.at("h.0.attn.c_attn.weight").to_vector()) > 1e-3f);  // W really changed
  auto* qkv = dynamic_cast<lora::LoRAFusedQKV*>(model->h[0]->attn.c_attn.get());
  REQUIRE(qkv);
  CHECK(qkv->merged());
  lora::merge(*model);  // merging twice is a no-op, not ΔW added twice
  CHECK(logits(*model) == merged);

  lora::unmerge(*model);
  CHECK(!qkv->merged());
  for (auto& kv : nn::state_dict(*model)) {
    CAPTURE(kv.first);
    CHECK(max_diff(kv.second.to_vector(), w0.at(kv.first).to_vector()) <= 1e-6f);
  }
  CHECK(max_diff(logits(*model), unmerged) <= 1e-5f);
}

TEST_CASE("lora: only A and B get gradients, AdamW keeps 2 x (A, B values) x 4 bytes") {
  auto model = make_gpt(1);
  Rng rng(5);
  lora::apply_lora(*model, make_cfg({"q", "v"}), rng);
  perturb_adapter(*model, 3);
  Rng drop(9);
  nn::Context ctx;
  ctx.training = true;
  ctx.rng = &drop;
  std::vector<int32_t> targets(kLoraIds.begin() + 1, kLoraIds.end());
  targets.push_back(0);
  autograd::backward(autograd::cross_entropy(model->forward(kLoraIds, 2, 8, ctx), targets));
  int64_t ab = 0;
  for (nn::NamedTensor& p : model->named_parameters()) {
    CAPTURE(p.name);
    const bool is_ab = contains(p.name, "lora_");
    CHECK(p.tensor.requires_grad() == is_ab);
    CHECK(p.tensor.grad().defined() == is_ab);  // frozen W0: no dW buffer at all
    if (is_ab) ab += p.tensor.numel();
  }
  optim::AdamW opt(model->named_parameters(), optim::AdamWConfig());
  CHECK(opt.num_tensors() == 8);  // 2 layers x (A, B) x (q, v)
  CHECK(opt.state_bytes() == static_cast<size_t>(2 * ab * 4));
}

TEST_CASE("lora: trainable counts are the sum of r·(in + out) over adapted matrices") {
  const int64_t L = 2, C = 8, r = 2;
  struct Case {
    std::vector<std::string> targets;
    std::vector<int64_t> layers;
    int64_t expect;
  };
  for (const Case& c : {Case{{"q", "v"}, {}, L * 2 * r * (C + C)},
                        Case{{"q", "k", "v", "o", "mlp"}, {}, L * (3 * r * 2 * C + r * 2 * C + 2 * r * (C + 4 * C))},
                        Case{{"c_attn"}, {}, L * r * (C + 3 * C)}, Case{{"q", "v"}, {1}, 2 * r * (C + C)}}) {
    auto model = make_gpt(1);
    Rng rng(5);
    lora::LoRAConfig cfg = make_cfg(c.targets, r);
    cfg.layers = c.layers;
    CHECK(lora::apply_lora(*model, cfg, rng) == c.expect);
    CHECK(model->num_trainable_parameters() == c.expect);
    const lora::LoRAConfig back = lora::lora_config_of(*model);
    CHECK(back.targets == c.targets);
    CHECK(back.layers == c.layers);
    CHECK(back.r == r);
    CHECK(back.alpha == cfg.alpha);
  }
}

TEST_CASE("lora: LoRALinear gradients w.r.t. x, A and B (B nonzero)") {
  Rng rng(3);
  nn::Linear base(5, 4, true, nn::Init{rng});
  lora::LoRALinear m(base, 2, 4.f, 0.f, 0.f, rng);
  CHECK(m.weight.shares_storage(base.weight));
  CHECK(!base.weight.requires_grad());
  CHECK(m.scale == 2.f);
  m.lora_B.copy_(Tensor::randn({4, 2}, rng, 0.5f));
  Tensor x = param({3, 5}, 11);
  check_grad([&] { return m.forward(x, {}); }, {x, m.lora_A, m.lora_B});
  // merged: the plain linear with W + scale·BA
  std::vector<float> before = m.forward(x, {}).to_vector();
  m.merge();
  CHECK(max_diff(autograd::linear(x, base.weight, base.bias).to_vector(), before) <= 1e-5f);
}

TEST_CASE("lora: LoRAFusedQKV gradients reach only the adapted slices, shared A too") {
  Rng rng(3);
  nn::Linear base(4, 12, true, nn::Init{rng});
  lora::LoRAFusedQKV m(base, {"v", "q"}, 2, 2.f, 0.f, 0.f, rng);
  REQUIRE(m.slices == std::vector<std::string>{"q", "v"});
  for (Tensor& b : m.lora_B) b.copy_(Tensor::randn(b.shape(), rng, 0.5f));
  Tensor x = param({2, 3, 4}, 11);
  check_grad([&] { return m.forward(x, {}); }, {x, m.lora_A[0], m.lora_B[0], m.lora_A[1], m.lora_B[1]});
  // the k third is the base layer's alone
  Tensor y = m.forward(x, {}), y0 = autograd::linear(x, base.weight, base.bias);
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t t = 0; t < 3; ++t)
      for (int64_t c = 4; c < 8; ++c) CHECK(y.at({i, t, c}) == y0.at({i, t, c}));

  lora::LoRAFusedQKV s(base, {"q", "k", "v"}, 2, 2.f, 0.f, 0.f, rng, true);
  REQUIRE(s.lora_A.size() == 1);
  for (Tensor& b : s.lora_B) b.copy_(Tensor::randn(b.shape(), rng, 0.5f));
  check_grad([&] { return s.forward(x, {}); }, {x, s.lora_A[0], s.lora_B[0], s.lora_B[1], s.lora_B[2]});
  std::vector<nn::NamedTensor> names;
  s.collect("p.", names);
  CHECK(names.size() == 2 + 1 + 3);
  CHECK(names[2].name == "p.lora_A");
  CHECK(names[3].name == "p.lora_B.q");
}

TEST_CASE("lora: bias modes none / all / lora_only choose the trainable biases") {
  for (const std::string mode : {"none", "all", "lora_only"}) {
    CAPTURE(mode);
    auto model = make_gpt(1);
    Rng rng(5);
    lora::LoRAConfig cfg = make_cfg({"q", "v"});
    cfg.layers = {1};
    cfg.bias = mode;
    lora::apply_lora(*model, cfg, rng);
    std::set<std::string> trainable, expect = {"h.1.attn.c_attn.lora_A.q", "h.1.attn.c_attn.lora_B.q",
                                               "h.1.attn.c_attn.lora_A.v", "h.1.attn.c_attn.lora_B.v"};
    for (nn::NamedTensor& p : model->named_parameters()) {
      if (p.tensor.requires_grad()) trainable.insert(p.name);
      const bool bias = p.name.size() > 4 && p.name.compare(p.name.size() - 4, 4, "bias") == 0;
      if (mode == "all" && bias) expect.insert(p.name);
    }
    if (mode == "lora_only") expect.insert("h.1.attn.c_attn.bias");
    CHECK(trainable == expect);
    CHECK(lora::lora_config_of(*model).bias == mode);
  }
}

TEST_CASE("lora: adapter save/load round trip, and named errors") {
  TempDir tmp("adapter");
  const std::string path = tmp.file("adapter.safetensors");
  lora::LoRAConfig cfg = make_cfg({"q", "v", "o"});
  cfg.bias = "lora_only";
  auto model = make_gpt(1);
  Rng rng(5);
  lora::apply_lora(*model, cfg, rng);
  perturb_adapter(*model, 3);
  lora::save_adapter(path, *model, cfg);
  SafetensorsFile f = load_safetensors(path);
  CHECK(f.tensors.size() == 2 * (4 + 2 + 2));  // per layer: A,B x q,v + A,B of c_proj + 2 biases
  CHECK(f.metadata.at("lora.base_hash").size() == 16);
  CHECK(lora::read_adapter_config(path).targets == cfg.targets);

  auto fresh = make_gpt(1);
  Rng other(77);
  lora::apply_lora(*fresh, cfg, other);
  CHECK(lora::base_hash(*fresh) == lora::base_hash(*model));  // trained biases are not hashed
  lora::load_adapter(path, *fresh);
  CHECK(logits(*fresh) == logits(*model));

  auto wrong_base = make_gpt(2);
  lora::apply_lora(*wrong_base, cfg, other);
  std::string e = error_of([&] { lora::load_adapter(path, *wrong_base); });
  CHECK(contains(e, path));
  CHECK(contains(e, "base model hash mismatch"));
  CHECK(contains(e, f.metadata.at("lora.base_hash")));

  auto wrong_cfg = make_gpt(1);
  lora::apply_lora(*wrong_cfg, make_cfg({"q", "v", "o"}, 4), other);
  e = error_of([&] { lora::load_adapter(path, *wrong_cfg); });
  CHECK(contains(e, path));
  CHECK(contains(e, "LoRA config mismatch (r 2 vs 4)"));
  CHECK(contains(error_of([&] { lora::save_adapter(path, *model, make_cfg({"q"})); }), "does not match"));

  const std::string cut = tmp.file("cut.safetensors");
  SafetensorsFile g = f;
  g.tensors.erase("h.1.attn.c_attn.lora_B.v");
  save_safetensors(cut, g.tensors, g.metadata);
  e = error_of([&] { lora::load_adapter(cut, *fresh); });
  CHECK(contains(e, cut + ": tensor 'h.1.attn.c_attn.lora_B.v' missing"));
  g = f;
  g.tensors["h.1.attn.c_attn.lora_B.v"] = Tensor::zeros({8, 3});
  save_safetensors(cut, g.tensors, g.metadata);
  CHECK(contains(error_of([&] { lora::load_adapter(cut, *fresh); }), "'h.1.attn.c_attn.lora_B.v' has shape (8, 3)"));
  g = f;
  g.tensors["h.0.mlp.c_fc.lora_A"] = Tensor::zeros({2, 8});
  save_safetensors(cut, g.tensors, g.metadata);
  CHECK(contains(error_of([&] { lora::load_adapter(cut, *fresh); }), "'h.0.mlp.c_fc.lora_A' (2, 8) is not a LoRA"));
}

TEST_CASE("lora: export_merged loads as a plain GPT with the same logits, the model is untouched") {
  TempDir tmp("merged");
  const std::string path = tmp.file("merged.safetensors");
  auto model = make_gpt(1);
  Rng rng(5);
  lora::apply_lora(*model, make_cfg({"q", "v", "mlp"}), rng);
  perturb_adapter(*model, 3);
  const std::vector<float> before = logits(*model);
  const std::vector<float> w = nn::state_dict(*model).at("h.0.attn.c_attn.weight").to_vector();
  lora::export_merged(path, *model);
  for (const auto& kv : load_safetensors(path).tensors) CHECK(!contains(kv.first, "lora"));
  Rng any(1);
  auto plain = nn::load_model(path, any);
  CHECK(dynamic_cast<lora::LoRAFusedQKV*>(plain->h[0]->attn.c_attn.get()) == nullptr);
  CHECK(max_diff(logits(*plain), before) <= 1e-5f);
  CHECK(dynamic_cast<lora::LoRAFusedQKV*>(model->h[0]->attn.c_attn.get()) != nullptr);
  CHECK(nn::state_dict(*model).at("h.0.attn.c_attn.weight").to_vector() == w);
  CHECK(logits(*model) == before);
}

namespace {
nlohmann::json read_json(const std::string& path) {
  std::ifstream is(path);
  return nlohmann::json::parse(is);
}
}  // namespace

TEST_CASE("lora: peft layout of q,v is one c_attn LoRA of rank 2r, round trip and general import") {
  TempDir tmp("peft_qv");
  const std::string dir = tmp.file("adapter");
  auto model = make_gpt(1);
  Rng rng(5);
  const lora::LoRAConfig cfg = make_cfg({"q", "v"});  // r 2, alpha 8: scale 4
  lora::apply_lora(*model, cfg, rng);
  perturb_adapter(*model, 3);
  lora::save_peft(dir, *model, cfg);
  const nlohmann::json j = read_json(dir + "/adapter_config.json");
  CHECK(j.at("peft_type") == "LORA");
  CHECK(j.at("task_type") == "CAUSAL_LM");
  CHECK(j.at("base_model_name_or_path") == "tiny");
  CHECK(j.at("r") == 4);
  CHECK(j.at("lora_alpha") == 16.0);  // alpha / r_eff = 4 = our scale
  CHECK(j.at("lora_dropout") == 0.1);
  CHECK(j.at("bias") == "none");
  CHECK(j.at("fan_in_fan_out") == true);
  CHECK(j.at("target_modules") == nlohmann::json::array({"c_attn"}));
  CHECK(j.at("rank_pattern").empty());
  SafetensorsFile f = load_safetensors(dir + "/adapter_model.safetensors");
  CHECK(f.tensors.size() == 4);
  const Tensor A = f.tensors.at("base_model.model.transformer.h.0.attn.c_attn.lora_A.weight");
  const Tensor B = f.tensors.at("base_model.model.transformer.h.0.attn.c_attn.lora_B.weight");
  REQUIRE(A.shape() == Shape{4, 8});
  REQUIRE(B.shape() == Shape{24, 4});
  auto* qkv = dynamic_cast<lora::LoRAFusedQKV*>(model->h[0]->attn.c_attn.get());
  CHECK(A.at({2, 5}) == qkv->lora_A[1].at({0, 5}));   // A = [A_q; A_v]
  CHECK(B.at({17, 3}) == qkv->lora_B[1].at({1, 1}));  // B_v: v rows, columns 2..3
  for (int64_t row = 0; row < 24; ++row)
    for (int64_t col = 0; col < 4; ++col)
      if (!((row < 8 && col < 2) || (row >= 16 && col >= 2))) CHECK(B.at({row, col}) == 0.f);

  auto back = make_gpt(1);
  lora::load_peft(dir, *back);
  CHECK(logits(*back) == logits(*model));
  CHECK(lora::lora_config_of(*back).targets == cfg.targets);
  CHECK(contains(error_of([&] { lora::load_peft(dir, *back); }), "must be a plain GPT"));

  // Without our metadata (peft's save_pretrained writes none) B's blocks still tell the slices: q, v of rank 2.
  save_safetensors(dir + "/adapter_model.safetensors", f.tensors, {{"format", "pt"}});
  auto blocks = make_gpt(1);
  lora::load_peft(dir, *blocks);
  CHECK(lora::lora_config_of(*blocks).targets == cfg.targets);
  CHECK(lora::lora_config_of(*blocks).r == 2);
  CHECK(logits(*blocks) == logits(*model));

  // A dense B (a LoRA trained by peft) is a general c_attn LoRA: three slices sharing A, exact.
  std::map<std::string, Tensor> dense = f.tensors;
  Tensor Bd = B.clone();
  for (int64_t row = 0; row < 24; ++row) Bd.data()[row * 4 + 3] += 0.01f * static_cast<float>(row + 1);
  dense["base_model.model.transformer.h.0.attn.c_attn.lora_B.weight"] = Bd;
  save_safetensors(dir + "/adapter_model.safetensors", dense, {{"format", "pt"}});
  auto general = make_gpt(1);
  lora::load_peft(dir, *general);
  const lora::LoRAConfig g = lora::lora_config_of(*general);
  CHECK(g.targets == std::vector<std::string>{"c_attn"});
  CHECK(g.r == 4);
  CHECK(contains(error_of([&] { lora::load_peft(tmp.file("none"), *make_gpt(1)); }), "adapter_config.json"));
}

TEST_CASE("lora: peft layout with o, mlp, a layer subset and trained biases") {
  TempDir tmp("peft_all");
  const std::string dir = tmp.file("adapter");
  auto model = make_gpt(1);
  Rng rng(5);
  lora::LoRAConfig cfg = make_cfg({"q", "v", "o", "mlp"});
  cfg.layers = {1};
  cfg.bias = "all";
  lora::apply_lora(*model, cfg, rng);
  perturb_adapter(*model, 3);
  lora::save_peft(dir, *model, cfg);
  const nlohmann::json j = read_json(dir + "/adapter_config.json");
  CHECK(j.at("r") == 2);
  CHECK(j.at("lora_alpha") == 8.0);
  CHECK(j.at("rank_pattern") == nlohmann::json{{"c_attn", 4}});
  CHECK(j.at("alpha_pattern") == nlohmann::json{{"c_attn", 16.0}});
  CHECK(j.at("target_modules") == nlohmann::json::array({"c_attn", "c_proj", "c_fc"}));
  CHECK(j.at("layers_to_transform") == nlohmann::json::array({1}));
  CHECK(j.at("layers_pattern") == "h");
  SafetensorsFile f = load_safetensors(dir + "/adapter_model.safetensors");
  CHECK(f.tensors.count("base_model.model.transformer.h.1.attn.c_attn.base_layer.bias"));
  CHECK(f.tensors.count("base_model.model.transformer.h.0.attn.c_attn.bias"));
  CHECK(f.tensors.count("base_model.model.transformer.ln_f.bias"));

  auto back = make_gpt(1);
  lora::load_peft(dir, *back);
  CHECK(logits(*back) == logits(*model));
  const lora::LoRAConfig b = lora::lora_config_of(*back);
  CHECK(b.layers == cfg.layers);
  CHECK(b.bias == "all");

  // Without our metadata (peft's save_pretrained) the per-slice layout is read off c_attn's B (a
  // regression test: this round trip once failed with "one r and one alpha").
  save_safetensors(dir + "/adapter_model.safetensors", f.tensors, {});
  auto again = make_gpt(1);
  lora::load_peft(dir, *again);
  CHECK(logits(*again) == logits(*model));
  CHECK(lora::lora_config_of(*again).targets == lora::lora_config_of(*model).targets);
  CHECK(lora::lora_config_of(*again).r == 2);

  // A dense c_attn B of rank 4 beside rank-2 modules: one LoRAConfig cannot say that.
  std::map<std::string, Tensor> dense = f.tensors;
  Tensor Bd = dense.at("base_model.model.transformer.h.1.attn.c_attn.lora_B.weight").clone();
  for (int64_t i = 0; i < Bd.numel(); ++i) Bd.data()[i] += 0.01f;
  dense["base_model.model.transformer.h.1.attn.c_attn.lora_B.weight"] = Bd;
  save_safetensors(dir + "/adapter_model.safetensors", dense, {});
  CHECK(contains(error_of([&] { lora::load_peft(dir, *make_gpt(1)); }), "one r and one alpha"));
}

TEST_CASE("lora: 40 AdamW steps on A and B alone lower the loss of a tiny GPT") {
  nn::GPTConfig c = tiny_config();
  c.vocab_size = 16;
  c.n_positions = 16;
  c.n_embd = 16;
  Rng init(1);
  nn::GPT model(c, init);
  // A random GPT's tied head (wte ~ N(0, 0.02²)) caps its logits near 0: give the frozen base
  // embeddings of a usable scale, as a pretrained model has, so the adapter can move the loss.
  model.wte.weight.copy_(Tensor::randn(model.wte.weight.shape(), init, 0.5f));
  Rng rng(5);
  lora::LoRAConfig cfg = make_cfg({"q", "v", "o", "mlp"}, 4, 8.f);
  cfg.dropout = 0.f;
  lora::apply_lora(model, cfg, rng);
  const std::vector<float> w = model.wte.weight.to_vector();
  const std::vector<int32_t> pattern = {3, 1, 4, 1, 5, 9, 2, 6, 5, 3};
  const int64_t B = 4, T = 16;
  std::vector<int32_t> ids, targets;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      ids.push_back(pattern[static_cast<size_t>((b + t) % 10)]);
      targets.push_back(pattern[static_cast<size_t>((b + t + 1) % 10)]);
    }
  optim::AdamWConfig oc;
  oc.lr = 2e-2f;
  optim::AdamW opt(model.named_parameters(), oc);
  std::vector<float> losses;
  for (int step = 0; step < 40; ++step) {
    opt.zero_grad();
    Tensor loss = autograd::cross_entropy(model.forward(ids, B, T, {}), targets);
    losses.push_back(loss.item());
    autograd::backward(loss);
    opt.step();
  }
  INFO("loss " << losses.front() << " -> " << losses.back());
  CHECK(losses.back() < 0.5f * losses.front());
  CHECK(losses.back() < std::log(16.f) - 1.f);  // well below the uniform guess
  CHECK(model.wte.weight.to_vector() == w);     // the base stays frozen
}

TEST_CASE("lora: GPT-3 175B trainable counts of Table 4, on the meta device (nothing allocated)") {
  const size_t before = tensor::cpu_bytes_in_use();
  struct Case {
    std::vector<std::string> targets;
    int64_t r, expect;
  };
  for (const Case& c : {Case{{"q", "v"}, 1, 4718592}, Case{{"q", "k", "v", "o"}, 4, 37748736}}) {
    Rng rng(1);
    nn::GPT model(nn::config_by_name("gpt3-175b"), rng, Device::Meta);
    CHECK(lora::apply_lora(model, make_cfg(c.targets, c.r), rng) == c.expect);  // 4.7M and 37.7M in the paper
  }
  CHECK(tensor::cpu_bytes_in_use() == before);
}
