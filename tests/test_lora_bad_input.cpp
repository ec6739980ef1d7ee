// Bad LoRA input (docs/reliability.md): peft directories with mis-shaped tensors or wrongly typed config fields,
// adapter files whose rank disagrees with their tensors, and ranks above a module's width. Each is a
// clear error naming the file (or the op) and the values, read before anything is allocated or copied.
#include <fstream>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "lora/lora.h"
#include "nn/checkpoint.h"
#include "test_util.h"

using namespace lowrank;
using namespace lowrank::testing;

namespace {

std::unique_ptr<nn::GPT> tiny_gpt() {
  nn::GPTConfig c = nn::config_by_name("tiny");
  c.vocab_size = 23;
  c.n_positions = 8;
  c.n_embd = 8;
  c.n_head = 2;
  c.n_layer = 2;
  Rng rng(1);
  return std::make_unique<nn::GPT>(c, rng);
}

lora::LoRAConfig qv(int64_t r = 2) {
  lora::LoRAConfig c;
  c.targets = {"q", "v"};
  c.r = r;
  c.alpha = 8.f;
  return c;
}

// A peft directory of a q,v adapter written by save_peft (c_attn's A (2r, C), B (3C, 2r)).
std::string write_peft(const TempDir& tmp) {
  const std::string dir = tmp.file("adapter");
  auto model = tiny_gpt();
  Rng rng(5);
  lora::apply_lora(*model, qv(), rng);
  lora::save_peft(dir, *model, qv());
  return dir;
}

void write_text(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

const std::string kB0 = "base_model.model.transformer.h.0.attn.c_attn.lora_B.weight";
const std::string kA0 = "base_model.model.transformer.h.0.attn.c_attn.lora_A.weight";

}  // namespace

TEST_CASE("bad input: peft lora_B of the wrong shape is refused before it is read") {
  TempDir tmp("peft_shape");
  const std::string dir = write_peft(tmp);
  const std::string st = dir + "/adapter_model.safetensors";
  SafetensorsFile f = load_safetensors(st);
  SUBCASE("B (24, 1) under our per-slice metadata: block_layout used to read 96 floats of 24") {
    f.tensors[kB0] = Tensor::zeros({24, 1});
  }
  SUBCASE("B (24, 0) with r = 2^20 in the metadata: the old read ran megabytes past an empty buffer") {
    nlohmann::json meta = nlohmann::json::parse(f.metadata.at("lowrank.lora.config"));
    meta["r"] = 1 << 20;
    f.metadata["lowrank.lora.config"] = meta.dump();
    f.tensors[kA0] = Tensor::zeros({2 << 20, 0});
    f.tensors[kB0] = Tensor::zeros({24, 0});
  }
  save_safetensors(st, f.tensors, f.metadata);
  auto model = tiny_gpt();
  const std::string err = error_of([&] { lora::load_peft(dir, *model); });
  CHECK(contains(err, st));
  CHECK(contains(err, "lora_B.weight"));
  CHECK(contains(err, "do not fit a 8 -> 24 module"));
  CHECK(dynamic_cast<lora::LoRAFusedQKV*>(model->h[0]->attn.c_attn.get()) == nullptr);  // still plain
}

TEST_CASE("bad input: adapter_config.json of the wrong JSON types names the file and the field") {
  TempDir tmp("peft_types");
  const std::string dir = write_peft(tmp);
  const std::string cfg = dir + "/adapter_config.json";
  const nlohmann::json good = nlohmann::json::parse(std::ifstream(cfg));
  struct Case {
    std::string text, expect;
  };
  auto with = [&](const char* key, const nlohmann::json& v) {
    nlohmann::json j = good;
    j[key] = v;
    return j.dump();
  };
  const std::vector<Case> cases = {{"[]", "expected a JSON object, got array"},
                                   {"3", "expected a JSON object, got number"},
                                   {with("use_dora", "no"), "field 'use_dora' is \"no\""},
                                   {with("peft_type", 7), "field 'peft_type' is 7"},
                                   {with("lora_alpha", "16"), "field 'lora_alpha' is \"16\""},
                                   {with("lora_dropout", "x"), "field 'lora_dropout' is \"x\""},
                                   {with("use_rslora", 1), "field 'use_rslora' is 1"},
                                   {with("bias", false), "field 'bias' is false"},
                                   {with("alpha_pattern", nlohmann::json::array()), "field 'alpha_pattern'"}};
  for (const Case& c : cases) {
    CAPTURE(c.text);
    write_text(cfg, c.text);
    auto model = tiny_gpt();
    const std::string err = error_of([&] { lora::load_peft(dir, *model); });
    CHECK(contains(err, cfg));
    CHECK(contains(err, c.expect));
  }
  write_text(cfg, good.dump());
  auto model = tiny_gpt();
  CHECK_NOTHROW(lora::load_peft(dir, *model));
}

TEST_CASE("bad input: an adapter file's rank is checked against its own tensors") {
  TempDir tmp("adapter_rank");
  const std::string path = tmp.file("a.safetensors");
  auto model = tiny_gpt();
  Rng rng(5);
  lora::apply_lora(*model, qv(), rng);
  lora::save_adapter(path, *model, qv());
  SafetensorsFile f = load_safetensors(path);
  nlohmann::json meta = nlohmann::json::parse(f.metadata.at("lora.config"));
  meta["r"] = int64_t{1} << 40;  // subspace would have applied this rank: 140 TB
  f.metadata["lora.config"] = meta.dump();
  save_safetensors(path, f.tensors, f.metadata);
  const std::string err = error_of([&] { lora::read_adapter_config(path); });
  CHECK(contains(err, path));
  CHECK(contains(err, "lora.config' says r=1099511627776"));
  CHECK(contains(err, "has shape (2, 8)"));
}

TEST_CASE("bad input: an adapter file's rank and layers must be JSON integers, not floats cast to int64") {
  TempDir tmp("adapter_types");
  const std::string path = tmp.file("a.safetensors");
  auto model = tiny_gpt();
  Rng rng(5);
  lora::apply_lora(*model, qv(), rng);
  lora::save_adapter(path, *model, qv());
  const SafetensorsFile f = load_safetensors(path);
  // A float used to go through json's cast to int64: 2.5 loaded as rank 2, 1e300 was undefined behaviour.
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"r", "1e300"}, {"r", "2.5"}, {"r", "\"2\""}, {"layers", "[0.5]"}, {"layers", "[1e300]"}, {"layers", "3"}};
  for (const auto& c : cases) {
    const std::string field = c.first, bad = c.second;  // named copies: clang 14's lambdas cannot capture bindings
    CAPTURE(field + " = " + bad);
    nlohmann::json meta = nlohmann::json::parse(f.metadata.at("lora.config"));
    meta[field] = nlohmann::json::parse(bad);
    std::map<std::string, std::string> metadata = f.metadata;
    metadata["lora.config"] = meta.dump();
    save_safetensors(path, f.tensors, metadata);
    const std::string err = error_of([&] { lora::read_adapter_config(path); });
    CHECK(contains(err, path));
    CHECK(contains(err, "field '" + field + "' is " + meta[field].dump() + ", not a"));
  }
}

TEST_CASE("bad input: apply_lora refuses a rank above the adapted module's width, touching nothing") {
  auto model = tiny_gpt();  // C = 8
  Rng rng(5);
  std::string err = error_of([&] { lora::apply_lora(*model, qv(9), rng); });
  CHECK(contains(err, "apply_lora: r=9 exceeds 8"));
  CHECK(contains(err, "h.0.attn.c_attn"));
  CHECK(dynamic_cast<lora::LoRAFusedQKV*>(model->h[0]->attn.c_attn.get()) == nullptr);  // still plain
  CHECK(model->num_trainable_parameters() == model->num_parameters());
  lora::LoRAConfig mlp = qv(8);
  mlp.targets = {"o", "mlp"};
  CHECK_NOTHROW(lora::apply_lora(*model, mlp, rng));  // r = C is the largest that means something
}
