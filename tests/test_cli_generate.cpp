// examples/generate.cpp end to end on a tiny GPT-2-BPE model (C = 32, one layer): its text against
// the library's decoders (nn::greedy, nn::beam_search, nn::sample_cached) on the same weights, with
// and without adapters, the JSON Lines mode, stop strings, seeds, streaming, and bad input refused.
// The sampling rules (top-p) and the stream's UTF-8 hold-back: test_generate_sampling.cpp.
#include <cstdio>
#include <filesystem>
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
#include "nn/sample.h"

using namespace lowrank;
using namespace lowrank::testing;

namespace {

const std::string kPrompt = "name : The Vaults | Type : pub | priceRange : more than £ 30<|endoftext|>";

// Random LoRA A and B (apply_lora starts B at 0, which would change nothing).
void randomize_lora(nn::GPT& m) {
  Rng rng(11);
  for (nn::NamedTensor& p : m.named_parameters())
    if (p.tensor.requires_grad()) {
      float* d = p.tensor.data();
      for (int64_t i = 0; i < p.tensor.numel(); ++i) d[i] = rng.normal() * 0.5f;
    }
}

// Weights far from a fresh init's (std 0.02), whose tiny layers let each position's own embedding
// dominate its hidden state, so that greedy text just repeats the prompt's last token.
void scramble(nn::GPT& m, Rng& rng) {
  for (nn::NamedTensor& p : m.named_parameters()) {
    if (p.name.find("ln_") != std::string::npos) continue;
    float* d = p.tensor.data();
    for (int64_t i = 0; i < p.tensor.numel(); ++i) d[i] = rng.normal() * 0.3f;
  }
}

// One tiny base (GPT-2's vocabulary, 48 positions), lowrank's adapter on it, the same adapter as peft's
// directory, and a base whose head always prefers EOS; made once, removed at exit.
struct Fixture {
  TempDir tmp{"generate_fixture"};
  std::string base = tmp.file("base.safetensors"), adapter = tmp.file("adapter.safetensors");
  std::string peft = tmp.file("peft"), eos_base = tmp.file("eos.safetensors");
  Fixture() {
    nn::GPTConfig c = nn::config_by_name("tiny");
    c.vocab_size = 50257;
    c.n_layer = 1;
    c.n_positions = 48;
    Rng rng(5);
    nn::GPT model(c, rng);
    scramble(model, rng);
    nn::save_model(base, model);
    lora::LoRAConfig lc;
    lc.r = 2;
    lc.targets = {"q", "v", "mlp"};
    lora::apply_lora(model, lc, rng);
    randomize_lora(model);
    lora::save_adapter(adapter, model, lc);
    lora::save_peft(peft, model, lc);
    nn::GPT eos(c, rng);  // ln_f outputs a long wte[EOS] for every input: EOS is every step's argmax
    float* e = eos.wte.weight.data() + 50256 * c.n_embd;
    for (int64_t i = 0; i < c.n_embd; ++i) e[i] *= 10.f;
    std::vector<float> w = eos.wte.weight.to_vector();
    std::fill(eos.ln_f.weight.data(), eos.ln_f.weight.data() + c.n_embd, 0.f);
    for (int64_t i = 0; i < c.n_embd; ++i)
      eos.ln_f.bias.data()[i] = 100.f * w[static_cast<size_t>(50256 * c.n_embd + i)];
    nn::save_model(eos_base, eos);
  }
};
const Fixture& fx() {
  static const Fixture f;
  return f;
}

std::unique_ptr<nn::GPT> load(const std::string& adapter = "") {
  Rng rng(1);
  std::unique_ptr<nn::GPT> m = examples::load_model_with_adapter(fx().base, adapter, tensor::Device::CPU, rng);
  if (!adapter.empty()) lora::merge(*m);
  return m;
}

// A shell word: s in single quotes.
std::string q(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

Run gen(const std::string& args) {
  TempDir tmp("gen_run");
  return run_example("generate", "--threads 1 --init " + fx().base + " " + args, tmp);
}

// What a completion reads as once written as JSON (bytes of a split UTF-8 character become U+FFFD).
std::string as_json_text(const std::string& s) {
  return nlohmann::json::parse(nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace))
      .get<std::string>();
}

std::string greedy_text(nn::GPT& m, const std::string& prompt, int64_t max_new) {
  nn::DecodeOptions o;
  o.max_new_tokens = max_new;
  return gpt2_bpe().decode(nn::greedy(m, gpt2_bpe().encode(prompt), o));
}

}  // namespace

TEST_CASE("own data: generate --prompt greedy prints exactly nn::greedy's completion (streamed to stdout)") {
  std::unique_ptr<nn::GPT> m = load();
  const std::string want = greedy_text(*m, kPrompt, 12);
  REQUIRE(!want.empty());
  const Run r = gen("--prompt " + q(kPrompt) + " --max-new-tokens 12");
  CAPTURE(r.err);
  REQUIRE(r.rc == 0);
  CHECK(r.out == want + "\n");
  CHECK(contains(r.err, "12 tokens"));
  TempDir tmp("gen_pf");
  write_bytes(tmp.file("p.txt"), kPrompt);  // --prompt-file: the same prompt from a file
  CHECK(gen("--prompt-file " + tmp.file("p.txt") + " --max-new-tokens 12").out == want + "\n");
}

TEST_CASE(
    "own data: generate with an adapter (lowrank's and peft's) differs from the base and equals the merged model") {
  std::unique_ptr<nn::GPT> base = load();
  const std::string plain = greedy_text(*base, kPrompt, 10);
  for (const std::string& adapter : {fx().adapter, fx().peft}) {
    CAPTURE(adapter);
    std::unique_ptr<nn::GPT> merged = load(adapter);
    const std::string want = greedy_text(*merged, kPrompt, 10);
    CHECK(want != plain);
    const Run r = gen("--adapter " + adapter + " --prompt " + q(kPrompt) + " --max-new-tokens 10");
    CAPTURE(r.err);
    CHECK(r.rc == 0);
    CHECK(r.out == want + "\n");
  }
}

TEST_CASE("own data: generate --input keeps order and ids, batched beam equals one-at-a-time beam") {
  TempDir tmp("gen_jsonl");
  const std::vector<std::string> prompts = {kPrompt, "name : Alimentum | area : city centre<|endoftext|>",
                                            "Hello world", "Hello there"};  // the last two: equal lengths
  std::string in = "{\"prompt\": " + nlohmann::json(prompts[0]).dump() + ", \"id\": \"a\"}\n\n";
  in += "{\"prompt\": " + nlohmann::json(prompts[1]).dump() + ", \"id\": {\"k\": [1, 2]}, \"max_new_tokens\": 3}\n";
  in += "{\"prompt\": " + nlohmann::json(prompts[2]).dump() + "}\n";
  in += "{\"id\": 7, \"prompt\": " + nlohmann::json(prompts[3]).dump() + "}\n";
  write_bytes(tmp.file("in.jsonl"), in);
  const Run r = gen("--input " + tmp.file("in.jsonl") + " --output " + tmp.file("out.jsonl") +
                    " --decode beam --beam 3 --length-penalty 0.9 --no-repeat-ngram 2 --max-new-tokens 6 --json " +
                    tmp.file("m.json"));
  CAPTURE(r.err);
  REQUIRE(r.rc == 0);
  const std::vector<nlohmann::json> out = read_json_lines(tmp.file("out.jsonl"));
  REQUIRE(out.size() == 4);
  CHECK(out[0]["id"] == "a");
  CHECK(out[1]["id"] == nlohmann::json::parse("{\"k\": [1, 2]}"));
  CHECK(out[2]["id"] == 2);  // no id: the request's index
  CHECK(out[3]["id"] == 7);
  std::unique_ptr<nn::GPT> m = load();
  int64_t total = 0;
  for (size_t i = 0; i < 4; ++i) {
    CAPTURE(i);
    nn::DecodeOptions o;
    o.beam_size = 3;
    o.length_penalty = 0.9f;
    o.no_repeat_ngram_size = 2;
    o.max_new_tokens = i == 1 ? 3 : 6;
    const nn::Hypothesis h = nn::beam_decode(*m, gpt2_bpe().encode(prompts[i]), o);
    CHECK(out[i]["prompt"] == prompts[i]);
    CHECK(out[i]["completion"] == as_json_text(gpt2_bpe().decode(h.tokens)));
    CHECK(out[i]["tokens"] == static_cast<int64_t>(h.tokens.size()));
    CHECK(out[i]["finish_reason"] == (h.finished ? "eos" : "length"));
    total += static_cast<int64_t>(h.tokens.size());
  }
  CHECK(out[1]["tokens"].get<int64_t>() <= 3);
  const nlohmann::json metrics = nlohmann::json::parse(read_bytes(tmp.file("m.json")));
  CHECK(metrics["requests"] == 4);
  CHECK(metrics["tokens_generated"] == total);
  CHECK(contains(r.out, "tokens/s"));
}

TEST_CASE("own data: generate stops at EOS (finish_reason eos) on a model that always predicts it") {
  TempDir tmp("gen_eos");
  write_bytes(tmp.file("in.jsonl"), "{\"prompt\": \"hi\"}\n");
  for (const char* mode : {"greedy", "beam", "sample"}) {
    CAPTURE(mode);
    TempDir run("gen_eos_run");
    const Run r = run_example("generate",
                              "--threads 1 --init " + fx().eos_base + " --decode " + mode + " --input " +
                                  tmp.file("in.jsonl") + " --output " + tmp.file("out.jsonl"),
                              run);
    CAPTURE(r.err);
    REQUIRE(r.rc == 0);
    const nlohmann::json o = read_json_lines(tmp.file("out.jsonl")).at(0);
    CHECK(o["finish_reason"] == "eos");
    CHECK(o["completion"] == "");
    CHECK(o["tokens"] == 0);
  }
}

TEST_CASE("own data: generate --stop cuts the completion before the stop string, max_new_tokens is respected") {
  std::unique_ptr<nn::GPT> m = load();
  nn::DecodeOptions o;
  o.max_new_tokens = 16;
  const std::vector<int32_t> ids = nn::greedy(*m, gpt2_bpe().encode(kPrompt), o);
  const std::string full = gpt2_bpe().decode(ids);
  std::string stop;  // a purely alphabetic token from the middle, safe on a command line
  for (size_t i = 3; i < ids.size() && stop.empty(); ++i) {
    const std::string t = gpt2_bpe().decode({ids[i]});
    if (t.size() >= 2 &&
        std::all_of(t.begin(), t.end(), [](char c) { return std::isalpha(static_cast<unsigned char>(c)); }))
      stop = t;
  }
  REQUIRE(!stop.empty());
  const std::string want = full.substr(0, full.find(stop));
  const Run r = gen("--prompt " + q(kPrompt) + " --max-new-tokens 16 --stop " + q(stop) + " --stop zzzqqq");
  CAPTURE(r.err);
  CHECK(r.out == want + "\n");
  CHECK(contains(r.err, "finish: stop"));
  TempDir tmp("gen_stop");
  write_bytes(tmp.file("in.jsonl"), "{\"prompt\": " + nlohmann::json(kPrompt).dump() + "}\n{\"prompt\": " +
                                        nlohmann::json(kPrompt).dump() + ", \"max_new_tokens\": 2}\n");
  const Run j = gen("--input " + tmp.file("in.jsonl") + " --output " + tmp.file("o.jsonl") +
                    " --max-new-tokens 16 --stop " + q(stop));
  REQUIRE(j.rc == 0);
  const std::vector<nlohmann::json> out = read_json_lines(tmp.file("o.jsonl"));
  CHECK(out[0]["completion"] == as_json_text(want));
  CHECK(out[0]["finish_reason"] == "stop");
  CHECK(out[1]["tokens"] == 2);
  CHECK(out[1]["finish_reason"] == "length");
  CHECK(out[1]["completion"] == as_json_text(gpt2_bpe().decode({ids[0], ids[1]})));
}

TEST_CASE("own data: generate --decode sample is reproducible per seed, and request i's text is its own") {
  const std::string args =
      "--decode sample --temperature 1.5 --top-k 50 --top-p 0.95 --max-new-tokens 12 --prompt " + q(kPrompt);
  const Run a = gen(args + " --seed 3"), b = gen(args + " --seed 3"), c = gen(args + " --seed 4");
  CAPTURE(a.err);
  REQUIRE(a.rc == 0);
  CHECK(a.out == b.out);
  CHECK(a.out != c.out);
  TempDir tmp("gen_sample");
  const std::string first = "{\"prompt\": " + nlohmann::json(kPrompt).dump() + "}\n";
  write_bytes(tmp.file("ab.jsonl"), first + "{\"prompt\": \"one\"}\n");
  write_bytes(tmp.file("ac.jsonl"), first + "{\"prompt\": \"two words\", \"max_new_tokens\": 3}\n");
  const std::string opts = " --decode sample --temperature 1.5 --top-k 50 --top-p 0.95 --max-new-tokens 12 --seed 3";
  REQUIRE(gen("--input " + tmp.file("ab.jsonl") + " --output " + tmp.file("ab.out") + opts).rc == 0);
  REQUIRE(gen("--input " + tmp.file("ac.jsonl") + " --output " + tmp.file("ac.out") + opts).rc == 0);
  const nlohmann::json ab = read_json_lines(tmp.file("ab.out")).at(0), ac = read_json_lines(tmp.file("ac.out")).at(0);
  CHECK(ab == ac);
  CHECK(ab["completion"] == as_json_text(a.out.substr(0, a.out.size() - 1)));  // --prompt is request 0
}

TEST_CASE("own data: generate's KV-cache sampler draws nn::sample's ids") {
  std::unique_ptr<nn::GPT> m = load();
  const std::vector<int32_t> prompt = gpt2_bpe().encode(kPrompt);
  nn::SampleOptions o;
  o.max_new_tokens = 20;
  o.temperature = 1.3f;
  o.top_p = 0.9f;
  Rng r1(9), r2(9);
  std::vector<int32_t> streamed;
  const std::vector<int32_t> cached = nn::sample_cached(*m, prompt, o, r1, [&](int32_t id) {
    streamed.push_back(id);
    return true;
  });
  CHECK(cached == nn::sample(*m, prompt, o, r2));
  CHECK(streamed == cached);
  o.max_new_tokens = 100;  // the context (48 positions) ends it: prompt + new - 1 <= 48
  Rng r3(9);
  CHECK(static_cast<int64_t>(nn::sample_cached(*m, prompt, o, r3).size()) ==
        48 - static_cast<int64_t>(prompt.size()) + 1);
}

TEST_CASE("own data: generate refuses bad input in one line, exit 1, writing nothing") {
  TempDir tmp("gen_bad");
  const std::string out = " --output " + tmp.file("out.jsonl") + " --json " + tmp.file("m.json");
  const auto refused = [&](const std::string& args, const std::string& expect) {
    check_refused("generate", "--threads 1 --init " + fx().base + " " + args, expect);
    CHECK_FALSE(std::filesystem::exists(tmp.file("out.jsonl")));
    CHECK_FALSE(std::filesystem::exists(tmp.file("m.json")));
  };
  const auto input = [&](const std::string& name, const std::string& text) {
    write_bytes(tmp.file(name), text);
    return " --input " + tmp.file(name) + out;
  };
  const std::string good = "{\"prompt\": \"hi\"}\n";
  refused(input("bad1.jsonl", good + "{\"prompt\": \"x\"\n"), "bad1.jsonl:2: not valid JSON");
  refused(input("bad2.jsonl", good + "{\"id\": 1}\n"), "bad2.jsonl:2: field 'prompt' is missing");
  refused(input("bad3.jsonl", "{\"prompt\": 5}\n"), "bad3.jsonl:1: field 'prompt' is number, expected a string");
  refused(input("bad4.jsonl", good + good + "{\"prompt\": \"\"}\n"), "bad4.jsonl:3: field 'prompt' is empty");
  std::string long_prompt;
  for (int i = 0; i < 60; ++i) long_prompt += " x";  // 60 tokens
  refused(input("bad5.jsonl", "{\"prompt\": \"" + long_prompt + "\"}\n"),
          "bad5.jsonl:1: field 'prompt' is 60 tokens, more than the model's context of 48");
  refused("--prompt " + q(long_prompt), "--prompt: 60 tokens, more than the model's context of 48");
  refused(input("bad6.jsonl", "{\"prompt\": \"hi\", \"max_tokens\": 3}\n"), "bad6.jsonl:1: unknown field 'max_tokens'");
  refused(input("bad7.jsonl", "{\"prompt\": \"hi\", \"max_new_tokens\": 0}\n"),
          "bad7.jsonl:1: field 'max_new_tokens' is 0");
  refused(input("bad8.jsonl", "\n \n"), "no requests");
  refused(input("good.jsonl", good) + " --decode sample --top-p 0", "--top-p 0: must be in (0, 1]");
  refused(input("good.jsonl", good) + " --decode sample --top-p 1.5", "--top-p 1.5");
  refused(input("good.jsonl", good) + " --decode nucleus", "--decode nucleus: expected greedy, sample or beam");
  refused(input("good.jsonl", good) + " --temperature 0.7", "--temperature applies to --decode sample, not greedy");
  refused(input("good.jsonl", good) + " --decode sample --beam 4", "--beam applies to --decode beam");
  refused("--prompt ''", "--prompt: empty prompt");
  refused("--prompt x --input " + tmp.file("good.jsonl") + out, "exactly one of --prompt, --prompt-file, --input");
  refused("--input " + tmp.file("good.jsonl"), "--input needs --output");
  refused("--input " + tmp.file("good.jsonl") + " --output /nonexistent/o.jsonl",
          "folder '/nonexistent' does not exist");
  refused("--prompt x --adapter " + tmp.file("none.safetensors"), "no such file");
  // lowrank's adapter on another base: the base hash differs.
  TempDir other("gen_other");
  nn::GPTConfig c = nn::config_by_name("tiny");
  c.vocab_size = 50257;
  c.n_layer = 1;
  c.n_positions = 48;
  Rng rng(99);
  nn::GPT m(c, rng);
  nn::save_model(other.file("b.safetensors"), m);
  check_refused("generate",
                "--threads 1 --init " + other.file("b.safetensors") + " --adapter " + fx().adapter +
                    " --prompt x --output " + tmp.file("out.jsonl"),
                "--output goes with --input");
  check_refused("generate",
                "--threads 1 --init " + other.file("b.safetensors") + " --adapter " + fx().adapter + " --input " +
                    tmp.file("good.jsonl") + out,
                "base model hash mismatch");
  CHECK_FALSE(std::filesystem::exists(tmp.file("out.jsonl")));
}
