// generate --adapter NAME=PATH ...: several adapters on one base (lora::AdapterSet), requests naming
// their adapter decoded together in mixed batches, each equal to its adapter decoded alone.
#include <filesystem>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli_util.h"
#include "data/bpe.h"
#include "examples/common/model_load.h"
#include "lora/lora.h"
#include "nn/checkpoint.h"
#include "nn/generate.h"

using namespace lowrank;
using namespace lowrank::testing;

namespace {

// Every weight N(0, std): far from a fresh init, so that greedy and beam choices are clear.
void spread(nn::GPT& m, Rng& rng, float std, bool trainable_only) {
  for (nn::NamedTensor& p : m.named_parameters()) {
    if ((trainable_only && !p.tensor.requires_grad()) || p.name.find("ln_") != std::string::npos) continue;
    float* d = p.tensor.data();
    for (int64_t i = 0; i < p.tensor.numel(); ++i) d[i] = rng.normal() * std;
  }
}

// A tiny GPT-2-vocabulary base and three adapters of ranks 1, 2 and 4 on different targets, the
// last one as a peft directory; made once.
struct Fixture {
  TempDir tmp{"adapters_fixture"};
  std::string base = tmp.file("base.safetensors");
  std::vector<std::pair<std::string, std::string>> adapters;  // (name, path)
  Fixture() {
    nn::GPTConfig c = nn::config_by_name("tiny");
    c.vocab_size = 50257;
    c.n_layer = 1;
    c.n_positions = 48;
    Rng rng(5);
    nn::GPT model(c, rng);
    spread(model, rng, 0.3f, false);
    nn::save_model(base, model);
    const std::vector<std::pair<int64_t, std::vector<std::string>>> specs = {
        {1, {"q"}}, {2, {"q", "v", "mlp"}}, {4, {"c_attn", "o"}}};
    for (size_t i = 0; i < specs.size(); ++i) {
      Rng r(20 + i);
      std::unique_ptr<nn::GPT> m = nn::load_model(base, r, tensor::Device::CPU);
      lora::LoRAConfig lc;
      lc.r = specs[i].first;
      lc.alpha = 2.f * static_cast<float>(lc.r);
      lc.targets = specs[i].second;
      lora::apply_lora(*m, lc, r);
      spread(*m, r, 0.5f, true);
      const std::string name = "r" + std::to_string(lc.r);
      const bool peft = i == 2;
      const std::string path = tmp.file(name + (peft ? "" : ".safetensors"));
      if (peft)
        lora::save_peft(path, *m, lc);
      else
        lora::save_adapter(path, *m, lc);
      adapters.emplace_back(name, path);
    }
  }
  std::string flags() const {
    std::string f;
    for (const auto& [name, path] : adapters) f += " --adapter " + name + "=" + path;
    return f;
  }
};
const Fixture& fx() {
  static const Fixture f;
  return f;
}

// The base with `adapter` alone, merged, as `generate --adapter PATH` decodes.
std::unique_ptr<nn::GPT> alone(const std::string& adapter) {
  Rng rng(1);
  std::unique_ptr<nn::GPT> m = examples::load_model_with_adapter(fx().base, adapter, tensor::Device::CPU, rng);
  if (!adapter.empty()) lora::merge(*m);
  return m;
}

}  // namespace

TEST_CASE("adapters: generate --adapter NAME=PATH decodes mixed batches of 3 adapters and the base as each alone") {
  TempDir tmp("adapters_mixed");
  const std::vector<std::string> prompts = {"Hello world", "Hello there",    "The pub is", "A coffee shop",
                                            "Hello again", "Near the river", "Hello you",  "name : Alimentum"};
  const std::vector<std::string> who = {"r1", "r2", "r4", "", "r4", "r1", "", "r2"};
  std::string in;
  for (size_t i = 0; i < prompts.size(); ++i) {
    nlohmann::json j = {{"prompt", prompts[i]}};
    if (!who[i].empty()) j["adapter"] = who[i];
    in += j.dump() + "\n";
  }
  write_bytes(tmp.file("in.jsonl"), in);
  for (const std::string mode : {"greedy", "beam"}) {
    CAPTURE(mode);
    const std::string out = tmp.file(mode + ".jsonl");
    const Run r = run_example("generate",
                              "--threads 1 --init " + fx().base + fx().flags() + " --input " + tmp.file("in.jsonl") +
                                  " --output " + out + " --decode " + mode + " --max-new-tokens 8",
                              tmp);
    CAPTURE(r.err);
    REQUIRE(r.rc == 0);
    const std::vector<nlohmann::json> lines = read_json_lines(out);
    REQUIRE(lines.size() == prompts.size());
    for (size_t i = 0; i < prompts.size(); ++i) {
      CAPTURE(i);
      std::string path;
      for (const auto& [name, p] : fx().adapters)
        if (name == who[i]) path = p;
      std::unique_ptr<nn::GPT> m = alone(path);
      nn::DecodeOptions o;
      o.max_new_tokens = 8;
      o.beam_size = mode == "beam" ? 4 : 1;
      const nn::Hypothesis h = nn::beam_decode(*m, gpt2_bpe().encode(prompts[i]), o);
      CHECK(lines[i]["adapter"] == (who[i].empty() ? nlohmann::json() : nlohmann::json(who[i])));
      CHECK(lines[i]["completion"] == gpt2_bpe().decode(h.tokens));
    }
  }
}

TEST_CASE("adapters: generate refuses unknown adapters and NAME=PATH without --input, writing nothing") {
  TempDir tmp("adapters_bad");
  const std::string out = " --output " + tmp.file("out.jsonl");
  write_bytes(tmp.file("in.jsonl"), "{\"prompt\": \"hi\"}\n{\"prompt\": \"hi\", \"adapter\": \"zz\"}\n");
  const std::string base = "--threads 1 --init " + fx().base;
  check_refused("generate", base + fx().flags() + " --input " + tmp.file("in.jsonl") + out,
                "in.jsonl:2: field 'adapter': unknown adapter 'zz' (given: r1, r2, r4)");
  check_refused("generate", base + " --input " + tmp.file("in.jsonl") + out,
                "field 'adapter' names 'zz', but no --adapter NAME=PATH was given");
  check_refused("generate", base + fx().flags() + " --prompt hi", "--adapter NAME=PATH goes with --input");
  check_refused(
      "generate",
      base + " --adapter a=" + fx().adapters[0].second + " --adapter a=x --input " + tmp.file("in.jsonl") + out,
      "the name 'a' is given twice");
  check_refused("generate",
                base + " --adapter a=" + tmp.file("missing.safetensors") + " --input " + tmp.file("in.jsonl") + out,
                "adapter 'a': ");
  CHECK_FALSE(std::filesystem::exists(tmp.file("out.jsonl")));
}
