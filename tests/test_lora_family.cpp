// The LoRA variants named as peft names them: rsLoRA (use_rslora, scale alpha/√r) through modules,
// merge, adapter files and the peft layout; LoRA+ (loraplus_lr_ratio, B at ratio × A's learning rate)
// in AdamW; and both through finetune's command line.
#include <cmath>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "cli_util.h"
#include "lora/lora.h"
#include "lora_test_util.h"
#include "nn/checkpoint.h"
#include "nn/hf_gpt2.h"
#include "optim/adamw.h"
#include "tensor/safetensors.h"
#include "test_util.h"

using namespace lowrank;
using namespace lowrank::testing;
namespace fs = std::filesystem;

namespace {

// r 4, alpha 8: scale 8/√4 = 4 (plain LoRA's would be 2).
lora::LoRAConfig rs_cfg(std::vector<std::string> targets) {
  lora::LoRAConfig c = make_cfg(std::move(targets), 4, 8.f);
  c.use_rslora = true;
  return c;
}

// A one-block GPT-2-vocabulary base as an HF directory and 12 prompt/completion records: what the
// finetune CLI tests below train on.
void write_tiny_run(const std::string& base, const std::string& data) {
  write_tiny_hf_base(base, 16, 32);
  std::string s;
  for (int i = 0; i < 12; ++i)
    s += nlohmann::json{{"prompt", "Q: " + std::to_string(i % 7) + "+1="},
                        {"completion", " " + std::to_string(i % 7 + 1)}}
             .dump() +
         "\n";
  write_bytes(data, s);
}

}  // namespace

TEST_CASE("lora family: rsLoRA scales every module by alpha/sqrt(r), logits unchanged at init") {
  auto base = make_gpt(1), model = make_gpt(1);
  Rng rng(5);
  lora::apply_lora(*model, rs_cfg({"q", "v", "o", "mlp", "wte"}), rng);
  CHECK(logits(*model) == logits(*base));  // B = 0 (A = 0 for wte)
  auto* qkv = dynamic_cast<lora::LoRAFusedQKV*>(model->h[0]->attn.c_attn.get());
  REQUIRE(qkv);
  CHECK(qkv->scale == 4.f);
  CHECK(qkv->rslora);
  CHECK(lora::as_lora(model->h[1]->mlp.c_proj.get())->lora_scale() == 4.f);
  CHECK(lora::as_lora(model->h[1]->attn.c_proj.get())->lora_rslora());
  CHECK(lora::embedding_lora(*model)->lora_scale() == 4.f);
  const lora::LoRAConfig back = lora::lora_config_of(*model);
  CHECK(back.use_rslora);
  CHECK(back.alpha == 8.f);
  CHECK(back.r == 4);
  CHECK(lora::lora_scale_of(4, 8.f, false) == 2.f);
  CHECK(lora::lora_scale_of(9, 6.f, true) == 2.f);

  auto plain = make_gpt(1);
  Rng rng2(5);
  lora::apply_lora(*plain, make_cfg({"q"}, 4, 8.f), rng2);
  CHECK(!lora::lora_config_of(*plain).use_rslora);
  CHECK(lora::lora_config_of(*plain).alpha == 8.f);
}

TEST_CASE("lora family: rsLoRA LoRALinear gradients w.r.t. x, A and B (B nonzero)") {
  Rng rng(3);
  nn::Linear base(5, 4, true, nn::Init{rng});
  lora::LoRALinear m(base, 4, 4.f, 0.f, 0.f, rng, lora::LoRAVariant{true});
  CHECK(m.scale == 2.f);  // 4 / √4
  CHECK(m.lora_rslora());
  m.lora_B.copy_(Tensor::randn({4, 4}, rng, 0.5f));
  Tensor x = param({3, 5}, 11);
  check_grad([&] { return m.forward(x, {}); }, {x, m.lora_A, m.lora_B});
  std::vector<float> before = m.forward(x, {}).to_vector();
  m.merge();
  CHECK(max_diff(autograd::linear(x, base.weight, base.bias).to_vector(), before) <= 1e-5f);
}

TEST_CASE("lora family: rsLoRA merge and unmerge are exact as for LoRA") {
  auto model = make_gpt(1);
  Rng rng(5);
  lora::apply_lora(*model, rs_cfg({"q", "k", "v", "o", "mlp", "wte"}), rng);
  perturb_adapter(*model, 3);
  std::map<std::string, Tensor> w0;
  for (auto& kv : nn::state_dict(*model)) w0[kv.first] = kv.second.clone();
  const std::vector<float> unmerged = logits(*model);
  lora::merge(*model);
  CHECK(max_diff(logits(*model), unmerged) <= 1e-5f);
  lora::unmerge(*model);
  for (auto& kv : nn::state_dict(*model)) {
    CAPTURE(kv.first);
    CHECK(max_diff(kv.second.to_vector(), w0.at(kv.first).to_vector()) <= 1e-6f);
  }
  CHECK(max_diff(logits(*model), unmerged) <= 1e-5f);
}

TEST_CASE("lora family: rsLoRA adapter files round trip, and a plain LoRA config is refused") {
  TempDir tmp("rslora_adapter");
  const std::string path = tmp.file("adapter.safetensors"), plain_path = tmp.file("plain.safetensors");
  const lora::LoRAConfig cfg = rs_cfg({"q", "v", "o"});
  auto model = make_gpt(1);
  Rng rng(5);
  lora::apply_lora(*model, cfg, rng);
  perturb_adapter(*model, 3);
  lora::save_adapter(path, *model, cfg);
  const nlohmann::json meta = nlohmann::json::parse(load_safetensors(path).metadata.at("lora.config"));
  CHECK(meta.at("use_rslora") == true);
  const lora::LoRAConfig read = lora::read_adapter_config(path);
  CHECK(read.use_rslora);
  CHECK(read.alpha == 8.f);

  auto fresh = make_gpt(1);
  Rng other(77);
  lora::apply_lora(*fresh, read, other);
  lora::load_adapter(path, *fresh);
  CHECK(logits(*fresh) == logits(*model));

  // Same r and alpha without rsLoRA: another scale, refused by name.
  auto wrong = make_gpt(1);
  lora::LoRAConfig no_rs = cfg;
  no_rs.use_rslora = false;
  lora::apply_lora(*wrong, no_rs, other);
  CHECK(contains(error_of([&] { lora::load_adapter(path, *wrong); }), "use_rslora"));
  // A plain adapter's metadata has no use_rslora field (files from before it read the same).
  lora::save_adapter(plain_path, *wrong, no_rs);
  CHECK(!nlohmann::json::parse(load_safetensors(plain_path).metadata.at("lora.config")).contains("use_rslora"));
  CHECK(!lora::read_adapter_config(plain_path).use_rslora);
}

TEST_CASE("lora family: rsLoRA peft export writes use_rslora and its lora_alpha, import gives the same logits") {
  TempDir tmp("rslora_peft");
  for (const std::vector<std::string>& targets :
       {std::vector<std::string>{"q", "v"}, {"q", "v", "o"}, {"c_attn", "mlp"}}) {
    CAPTURE(targets.size());
    const std::string dir = tmp.file("adapter" + std::to_string(targets.size()) + targets[0]);
    const lora::LoRAConfig cfg = rs_cfg(targets);
    auto model = make_gpt(1);
    Rng rng(5);
    lora::apply_lora(*model, cfg, rng);
    perturb_adapter(*model, 3);
    lora::save_peft(dir, *model, cfg);
    const nlohmann::json j = nlohmann::json::parse(read_bytes(dir + "/adapter_config.json"));
    CHECK(j.at("use_rslora") == true);
    // peft's scale lora_alpha / √R must be ours, 4, at the file's R
    const double R = j.at("r").get<double>();
    CHECK(j.at("lora_alpha").get<double>() / std::sqrt(R) == doctest::Approx(4.0).epsilon(1e-6));
    if (j.at("rank_pattern").contains("c_attn")) {
      const double Rq = j.at("rank_pattern").at("c_attn").get<double>();
      CHECK(j.at("alpha_pattern").at("c_attn").get<double>() / std::sqrt(Rq) == doctest::Approx(4.0).epsilon(1e-6));
    }

    auto loaded = make_gpt(1);
    lora::load_peft(dir, *loaded);
    CHECK(max_diff(logits(*loaded), logits(*model)) <= 1e-5f);
    const lora::LoRAConfig back = lora::lora_config_of(*loaded);
    CHECK(back.use_rslora);
    CHECK(back.r == 4);
    CHECK(back.alpha == doctest::Approx(8.f).epsilon(1e-6));

    // the same file read as a plain LoRA (use_rslora false, lora_alpha unchanged) is another model
    nlohmann::json flipped = j;
    flipped["use_rslora"] = false;
    write_bytes(dir + "/adapter_config.json", flipped.dump(2));
    auto plain = make_gpt(1);
    if (j.at("rank_pattern").contains("c_attn")) {  // then c_attn's scale and the others' disagree
      CHECK(contains(error_of([&] { lora::load_peft(dir, *plain); }), "one r and one alpha"));
      continue;
    }
    lora::load_peft(dir, *plain);
    CHECK(!lora::lora_config_of(*plain).use_rslora);
    CHECK(max_diff(logits(*plain), logits(*model)) > 1e-4f);
  }
}

TEST_CASE("lora family: LoRA+ steps every lora_B at ratio x lr and A at lr, as two plain AdamW would") {
  const float lr = 1e-2f, ratio = 16.f;
  optim::AdamWConfig oc;
  oc.weight_decay = 0.1f;
  auto make = [] {
    auto m = make_gpt(1);
    Rng rng(5);
    lora::apply_lora(*m, make_cfg({"q", "v", "o", "mlp", "wte"}), rng);
    perturb_adapter(*m, 3);
    return m;
  };
  auto set_grads = [](nn::GPT& m, uint64_t seed) {
    Rng g(seed);
    for (nn::NamedTensor& p : m.named_parameters())
      if (p.tensor.requires_grad()) p.tensor.set_grad(Tensor::randn(p.tensor.shape(), g, 1.f));
  };
  auto plus = make(), ref = make();
  const std::map<std::string, float> scale = lora::loraplus_lr_scale(*plus, ratio);
  CHECK(scale.size() == 2 * (2 + 1 + 2) + 1);  // per layer B_q, B_v, c_proj, c_fc, mlp.c_proj; wte
  CHECK(scale.count("h.1.attn.c_attn.lora_B.v"));
  CHECK(scale.count("wte.lora_B"));
  CHECK(!scale.count("h.0.attn.c_attn.lora_A.q"));
  CHECK(lora::loraplus_lr_scale(*plus, 1.f).empty());
  CHECK(lora::loraplus_lr_scale(*plus, 0.f).empty());

  optim::AdamWConfig pc = oc;
  pc.lr_scale = scale;
  optim::AdamW opt(plus->named_parameters(), pc);
  std::vector<nn::NamedTensor> as, bs;
  for (nn::NamedTensor& p : ref->named_parameters())
    if (p.tensor.requires_grad()) (scale.count(p.name) ? bs : as).push_back(p);
  optim::AdamW opt_a(as, oc), opt_b(bs, oc);
  for (uint64_t step = 0; step < 2; ++step) {
    set_grads(*plus, 10 + step);
    set_grads(*ref, 10 + step);
    opt.step(lr);
    opt_a.step(lr);
    opt_b.step(lr * ratio);
  }
  const auto got = nn::state_dict(*plus), want = nn::state_dict(*ref);
  for (const auto& kv : want) {
    CAPTURE(kv.first);
    CHECK(got.at(kv.first).to_vector() == kv.second.to_vector());
  }
  // the checkpoint is the same as without LoRA+: m and v of every trainable tensor
  CHECK(opt.state_dict().size() == opt_a.state_dict().size() + opt_b.state_dict().size());

  optim::AdamWConfig bad = oc;
  bad.lr_scale = {{"h.0.attn.c_attn.weight", 2.f}};
  CHECK(contains(error_of([&] { optim::AdamW x(plus->named_parameters(), bad); }), "not a trainable parameter"));
  bad.lr_scale = {{"wte.lora_B", 0.f}};
  CHECK(contains(error_of([&] { optim::AdamW x(plus->named_parameters(), bad); }), "must be > 0"));
}

TEST_CASE("lora family: finetune --use-rslora --loraplus-lr-ratio 16 trains and writes an rsLoRA adapter") {
  TempDir t("ft_family");
  const std::string base = t.file("base"), data = t.file("train.jsonl"), out = t.file("run");
  write_tiny_run(base, data);
  const Run r = run_example("finetune",
                            "--init " + base + " --data " + data + " --out " + out +
                                " --val-frac 0 --batch-size 2 --steps 3 --lr 1e-2 --threads 1 --rank 4 --alpha 8"
                                " --use-rslora --loraplus-lr-ratio 16",
                            t);
  CAPTURE(r.err);
  REQUIRE(r.rc == 0);
  const std::string adapter = out + "/adapter.safetensors";
  const lora::LoRAConfig cfg = lora::read_adapter_config(adapter);
  CHECK(cfg.use_rslora);
  CHECK(cfg.alpha == doctest::Approx(8.f));
  Rng r0(0);
  auto model = nn::load_model(base, r0);
  lora::apply_lora(*model, cfg, r0);
  lora::load_adapter(adapter, *model);
  CHECK(lora::lora_config_of(*model).use_rslora);
  CHECK(lora::as_lora(model->h[0]->attn.c_attn.get())->lora_scale() == 4.f);

  // --use-rslora belongs to the adapter's config: refused beside --adapter
  const Run again = run_example("finetune",
                                "--init " + base + " --data " + data + " --out " + t.file("run2") + " --adapter " +
                                    adapter + " --steps 1 --threads 1 --use-rslora",
                                t);
  CHECK(again.rc == 1);
  CHECK(contains(again.err, "--use-rslora cannot be combined with --adapter"));
}

TEST_CASE("lora family: finetune --init-lora-weights pissa --use-dora trains a DoRA adapter; a bad init is refused") {
  TempDir t("ft_dora");
  const std::string base = t.file("base"), data = t.file("train.jsonl"), out = t.file("run");
  write_tiny_run(base, data);
  const std::string common = "--init " + base + " --data " + data + " --val-frac 0 --batch-size 2 --steps 3 --lr 1e-2" +
                             " --threads 1 --rank 2 --alpha 8 --targets q,v,o";
  const Run r = run_example("finetune", common + " --out " + out + " --init-lora-weights pissa --use-dora", t);
  CAPTURE(r.err);
  REQUIRE(r.rc == 0);
  const lora::LoRAConfig cfg = lora::read_adapter_config(out + "/adapter.safetensors");
  CHECK(cfg.init_lora_weights == "pissa");
  CHECK(cfg.use_dora);
  Rng r0(0);
  auto model = nn::load_model(base, r0);
  lora::apply_lora(*model, cfg, r0);
  lora::load_adapter(out + "/adapter.safetensors", *model);
  auto* o = dynamic_cast<lora::LoRALinear*>(model->h[0]->attn.c_proj.get());
  REQUIRE(o);
  CHECK(o->magnitude.defined());
  CHECK(o->lora_A0.defined());

  const Run bad = run_example("finetune", common + " --out " + t.file("bad") + " --init-lora-weights svd", t);
  CHECK(bad.rc == 1);
  CHECK(contains(bad.err, "init_lora_weights must be gaussian, pissa or olora, got 'svd'"));
  CHECK(!fs::exists(t.file("bad")));
}
