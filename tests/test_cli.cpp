// Bad command lines: examples/common/checks.h's option rules on their own, then the real
// train_gpt and finetune_e2e binaries, which must exit 1 with one line "error: <reason>" before any
// work starts and write nothing.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli_util.h"
#include "examples/common/checks.h"
#include "nn/checkpoint.h"
#include "tensor/safetensors.h"

using namespace lowrank;
using namespace lowrank::testing;

namespace {

// The error of check_options over `args`, parsed by an example-like option set.
std::string check_error(std::vector<std::string> args) {
  cxxopts::Options o("t", "t");
  // clang-format off
  o.add_options()("batch-size", "", cxxopts::value<int64_t>()->default_value("8"))(
      "accum", "", cxxopts::value<int64_t>()->default_value("1"))("lr", "", cxxopts::value<float>()->default_value("1e-3"))(
      "clip", "", cxxopts::value<float>()->default_value("1"))("threads", "", cxxopts::value<int>()->default_value("0"))(
      "n-embd", "", cxxopts::value<int64_t>()->default_value("0"))("dropout", "", cxxopts::value<float>()->default_value("0"))(
      "json", "", cxxopts::value<std::string>()->default_value(""))("save", "", cxxopts::value<std::string>());
  // clang-format on
  args.insert(args.begin(), "t");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  const cxxopts::ParseResult r = o.parse(static_cast<int>(argv.size()), argv.data());
  return error_of([&] { examples::check_options(r); });
}

}  // namespace

TEST_CASE("cli: check_options refuses nonsense values naming the option and the value") {
  CHECK(check_error({}) == "");
  CHECK(check_error({"--batch-size", "1", "--clip", "0", "--threads", "2", "--lr", "0"}) == "");
  CHECK(contains(check_error({"--batch-size", "0"}), "--batch-size 0: must be at least 1"));
  CHECK(contains(check_error({"--batch-size", "-1"}), "--batch-size -1: must be at least 1"));
  CHECK(contains(check_error({"--accum", "0"}), "--accum 0: must be at least 1"));
  CHECK(contains(check_error({"--lr", "-1"}), "--lr -1: must be at least 0"));
  CHECK(contains(check_error({"--clip", "-1"}), "--clip -1: must be at least 0"));
  CHECK(contains(check_error({"--threads", "-1"}), "--threads -1: must be at least 0"));
  CHECK(contains(check_error({"--n-embd", "-8"}), "--n-embd -8: must be at least 0"));
  CHECK(contains(check_error({"--dropout", "1"}), "--dropout 1: must be in [0, 1)"));
}

TEST_CASE("cli: output files must go into an existing folder, checked before any work") {
  TempDir tmp("out_path");
  CHECK(check_error({"--json", tmp.file("m.json"), "--save", tmp.file("x.safetensors")}) == "");
  CHECK(contains(check_error({"--save", "/nonexistent/x"}), "--save /nonexistent/x: folder '/nonexistent' does not"));
  CHECK(contains(check_error({"--json", tmp.file("no/m.json")}), "does not exist"));
  CHECK(contains(check_error({"--json", tmp.dir.string()}), "is a folder"));
  CHECK(check_error({"--json", "m.json"}) == "");  // the current folder
}

TEST_CASE("cli: train_gpt refuses bad options in one line before training, writing nothing") {
  TempDir tmp("train_gpt_out");
  const std::string save = " --save " + tmp.file("ck.safetensors");
  check_refused("train_gpt", "--batch-size 0" + save, "--batch-size 0");
  check_refused("train_gpt", "--batch-size -1" + save, "--batch-size -1");
  check_refused("train_gpt", "--accum 0" + save, "--accum 0");
  check_refused("train_gpt", "--lr -1" + save, "--lr -1");
  check_refused("train_gpt", "--n-embd -8" + save, "--n-embd -8");
  check_refused("train_gpt", "--clip -1" + save, "--clip -1");
  check_refused("train_gpt", "--threads -1" + save, "--threads -1");
  check_refused("train_gpt", "--save /nonexistent/x", "folder '/nonexistent' does not exist");
  check_refused("train_gpt", "--json /nonexistent/m.json", "--json /nonexistent/m.json");
  CHECK(tmp.entries().empty());
}

TEST_CASE("cli: train_gpt --resume with --steps below the checkpoint's step is refused") {
  TempDir tmp("train_gpt_resume");
  const std::string ck = tmp.file("ck.safetensors");
  const std::string tiny = "--tokenizer char --model tiny --block-size 16 --batch-size 2 --eval-batches 1 --threads 1";
  const Run first = run_example("train_gpt", tiny + " --steps 3 --eval-every 0 --save " + ck, tmp);
  CAPTURE(first.err);
  REQUIRE(first.rc == 0);
  check_refused("train_gpt", tiny + " --steps 2 --resume " + ck, "--steps 2 is below the step 3 of --resume");
}

TEST_CASE("cli: finetune_e2e refuses bad options in one line before loading or training") {
  TempDir tmp("e2e_out");
  const std::string init = " --init " + tmp.file("missing.safetensors");
  check_refused("finetune_e2e", "--steps 0 --batch-size 0" + init, "--batch-size 0");
  check_refused("finetune_e2e", "--method ft --save-adapter " + tmp.file("a.safetensors") + init,
                "--save-adapter needs --method lora, got --method ft");
  check_refused("finetune_e2e", "--outputs /nonexistent/o.txt" + init, "--outputs /nonexistent/o.txt");
  check_refused("finetune_e2e", "--json /nonexistent/m.json" + init, "--json /nonexistent/m.json");
  check_refused("finetune_e2e", "--results /nonexistent/r.json" + init, "--results /nonexistent/r.json");
  CHECK(tmp.entries().empty());
}

TEST_CASE("cli: finetune_e2e --rank above the model's width is refused before training") {
  TempDir tmp("e2e_rank");
  nn::GPTConfig c = nn::config_by_name("tiny");  // C = 32
  c.vocab_size = 50257;                          // GPT-2 BPE's, as finetune_e2e requires
  c.n_layer = 1;
  Rng rng(1);
  nn::GPT model(c, rng);
  const std::string base = tmp.file("base.safetensors");
  nn::save_model(base, model, {}, "BF16");
  check_refused("finetune_e2e", "--rank 1000 --threads 1 --init " + base + " --outputs " + tmp.file("o.txt"),
                "apply_lora: r=1000 exceeds 32");
}

TEST_CASE("cli: train_gpt --init refuses shape options the file decides") {
  TempDir tmp("train_gpt_init");
  const std::string ck = tmp.file("base.safetensors");
  const std::string tiny = "--tokenizer char --model tiny --block-size 16 --batch-size 2 --eval-batches 1 --threads 1";
  const Run first = run_example("train_gpt", tiny + " --steps 1 --eval-every 0 --save " + ck, tmp);
  CAPTURE(first.err);
  REQUIRE(first.rc == 0);
  TempDir out("train_gpt_init_out");
  for (const std::string opt : {"--n-layer 3", "--n-embd 64", "--n-head 2", "--model mini", "--dropout 0.1"})
    check_refused("train_gpt",
                  "--tokenizer char --block-size 16 --threads 1 --init " + ck + " " + opt + " --save " +
                      out.file("x.safetensors"),
                  "cannot be combined with --init");
}

TEST_CASE("cli: a diverging train_gpt never writes a non-finite checkpoint over the last good one") {
  TempDir tmp("train_gpt_nan");
  const std::string ck = tmp.file("ck.safetensors");
  const Run r = run_example("train_gpt",
                            "--tokenizer char --model tiny --block-size 16 --batch-size 2 --eval-every 0 --threads 1"
                            " --lr 1e3 --clip 0 --warmup 0 --decay constant --steps 20 --save-every 1 --save " +
                                ck,
                            tmp);
  CAPTURE(r.err);
  CHECK(r.rc == 1);  // stopped: by the NaN loss check or by the save that refuses non-finite tensors
  CHECK((contains(r.err, "non-finite") || contains(r.err, "loss is")));
  if (std::ifstream(ck).good()) {  // the last checkpoint written is a finite one
    const SafetensorsFile f = load_safetensors(ck);
    for (const auto& [name, t] : f.tensors)
      for (int64_t i = 0; i < t.numel(); ++i) REQUIRE(std::isfinite(t.data()[i]));
  }
}

TEST_CASE("cli: results_table --merge adds rows run elsewhere, replacing only rows of the same key") {
  TempDir tmp("results_merge");
  const auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(tmp.file(name)) << text;
    return tmp.file(name);
  };
  const std::string row = R"({"method": "lora", "bleu": B, "test_mrs": 630, "curve": [], "key": "K"})";
  const auto with = [&](std::string r, const std::string& key, const std::string& bleu) {
    r.replace(r.find("K"), 1, key);
    r.replace(r.find("B"), 1, bleu);
    return r;
  };
  const std::string e2e = write("e2e.json", R"({"table": "e2e", "runs": [)" + with(row, "lora seed=1", "0.5") + "," +
                                                with(row, "lora device=cuda seed=1", "0.1") + "]}");
  const std::string gpu = tmp.file("gpu/e2e.json");
  std::filesystem::create_directories(tmp.file("gpu"));
  write("gpu/e2e.json", R"({"table": "e2e", "runs": [)" + with(row, "lora device=cuda seed=1", "0.52") + "," +
                            with(row, "ft device=cuda seed=1", "0.66") + "]}");
  const Run r = run_example("results_table", "--results " + e2e + " --merge " + gpu, tmp);
  CAPTURE(r.err);
  REQUIRE(r.rc == 0);
  const nlohmann::json j = nlohmann::json::parse(read_bytes(e2e));
  REQUIRE(j["runs"].size() == 3);
  std::map<std::string, double> bleu;
  for (const auto& x : j["runs"]) bleu[x["key"].get<std::string>()] = x["bleu"].get<double>();
  CHECK(bleu["lora seed=1"] == 0.5);               // the CPU row is kept
  CHECK(bleu["lora device=cuda seed=1"] == 0.52);  // the same key is replaced
  CHECK(bleu["ft device=cuda seed=1"] == 0.66);    // a new key is added
  check_refused("results_table", "--results " + e2e + " --merge " + tmp.file("missing.json"), "cannot open");
  // --match keeps the rows whose key contains the text; --section names the markdown section written.
  const Run m = run_example("results_table", "--results " + e2e + " --match device=cuda", tmp);
  REQUIRE(m.rc == 0);
  CHECK(contains(m.out, "| lora device=cuda | 1 |"));
  CHECK(contains(m.out, "| ft device=cuda | 1 |"));
  CHECK(!contains(m.out, "| lora | 1 |"));
  write("doc.md", "a\n<!-- results:e2e_gpu -->\nold\n<!-- /results:e2e_gpu -->\nb\n");
  REQUIRE(run_example("results_table",
                      "--results " + e2e + " --match device=cuda --section e2e_gpu --markdown " + tmp.file("doc.md"),
                      tmp)
              .rc == 0);
  const std::string doc = read_bytes(tmp.file("doc.md"));
  CHECK(contains(doc, "| ft device=cuda | 1 |"));
  CHECK(!contains(doc, "old"));
  CHECK(!contains(doc, "| lora | 1 |"));
  check_refused("results_table", "--results " + e2e + " --match base=nothing", "no run's key matches 'base=nothing'");
  // '*' between parts: each part, in order.
  const Run parts = run_example("results_table", "--results " + e2e + " --match 'lora*cuda'", tmp);
  REQUIRE(parts.rc == 0);
  CHECK(contains(parts.out, "| lora device=cuda | 1 |"));
  CHECK(!contains(parts.out, "| ft device=cuda | 1 |"));
  CHECK(!contains(parts.out, "| lora | 1 |"));
  check_refused("results_table", "--results " + e2e + " --match 'cuda*lora'", "no run's key matches 'cuda*lora'");
  // --bases-svg: only the recipe's own rows are seeds of a bar; a bf16 or a variant row is a row of its own.
  const std::string lora = "lora r=4 alpha=32 targets=q,v lr=0.002", b5 = " base=gpt-e2e-base5 B=8 steps=5257 mrs=0 seed=";
  const std::string bases = write("bases.json", R"({"table": "e2e", "runs": [)" + with(row, lora + b5 + "1", "0.6") +
                                                    "," + with(row, lora + b5 + "2", "0.7") + "," +
                                                    with(row, lora + " base=gpt-e2e-base5 bf16" + b5.substr(19) + "1", "0.1") +
                                                    "," + with(row, lora + " rslora" + b5 + "3", "0.1") + "]}");
  const Run fig = run_example("results_table", "--results " + bases + " --bases-svg " + tmp.file("b.svg"), tmp);
  CAPTURE(fig.err);
  REQUIRE(fig.rc == 0);
  const std::string svg = read_bytes(tmp.file("b.svg"));
  CHECK(contains(svg, "×2"));
  CHECK(!contains(svg, "×3"));
  CHECK(!contains(svg, "×4"));
  write("glue.json", R"({"table": "glue", "runs": []})");
  const Run bad = run_example("results_table", "--results " + e2e + " --merge " + tmp.file("glue.json"), tmp);
  CHECK(bad.rc == 1);
  CHECK(contains(bad.err, "holds table 'glue'"));
}

TEST_CASE("cli: finetune_glue --results adds one row per seed, results_table makes the NLU table of them") {
  TempDir tmp("glue_results");
  nn::GPTConfig c = nn::config_by_name("tiny");  // C = 32
  c.vocab_size = 50257;                          // GPT-2 BPE's, as finetune_glue requires
  c.n_layer = 1;
  Rng rng(1);
  nn::GPT model(c, rng);
  const std::string base = tmp.file("base.safetensors"), results = tmp.file("glue.json");
  nn::save_model(base, model, {}, "BF16");
  const std::string run =
      "--task sst2 --steps 2 --train-examples 32 --max-len 16 --threads 1 --init " + base + " --results " + results;
  const Run r = run_example("finetune_glue", run + " --seeds 1,2", tmp);
  CAPTURE(r.err);
  REQUIRE(r.rc == 0);
  REQUIRE(run_example("finetune_glue", run + " --seeds 2", tmp).rc == 0);  // seed 2's row replaced, not added
  const nlohmann::json j = nlohmann::json::parse(read_bytes(results));
  CHECK(j["table"] == "glue");
  REQUIRE(j["runs"].size() == 2);
  const std::string key = "sst2 lora r=8 alpha=16 targets=q,v lr=0.001 base=base B=16 steps=2 train=32";
  for (const auto& row : j["runs"]) {
    CHECK(row["key"].get<std::string>().rfind(key + " seed=", 0) == 0);
    CHECK(row["accuracy"].get<double>() >= 0.0);
    CHECK(row["accuracy"].get<double>() <= 1.0);
    CHECK(row["trainable_params"] == 2 * 8 * (32 + 32));  // r (C + C) on Wq and Wv of the one layer
  }
  const Run t = run_example("results_table", "--results " + results, tmp);
  CAPTURE(t.err);
  REQUIRE(t.rc == 0);
  CHECK(contains(t.out, "| " + key + " | 2 | 1024 (+ "));
  check_refused("finetune_glue", "--results /nonexistent/g.json --init " + base, "--results /nonexistent/g.json");
}

TEST_CASE("cli: bench_step --profile writes the backward per op and the GEMMs per shape into its JSON") {
  TempDir tmp("bench_step");
  const std::string json_path = tmp.file("b.json");
  const Run r = run_example("bench_step",
                            "--model tiny --seq 32 --steps 2 --warmup 1 --methods lora --threads 1 "
                            "--profile --json " +
                                json_path,
                            tmp);
  CAPTURE(r.err);
  REQUIRE(r.rc == 0);
  CHECK(contains(r.out, "backward by op"));
  CHECK(contains(r.out, "GEMMs by shape"));
  const nlohmann::json j = nlohmann::json::parse(read_bytes(json_path));
  // The floor's FMA peak is the higher of the measurements before and after the steps.
  CHECK(j["fma_peak_gflop_per_s"].get<double>() ==
        std::max(j["fma_peak_gflop_per_s_before"].get<double>(), j["fma_peak_gflop_per_s_after"].get<double>()));
  const nlohmann::json& p = j["methods"][0]["profile"];
  CHECK(p["steps"] == 2);
  for (const char* op : {"linear", "attention", "cross_entropy", "layernorm"}) {
    CAPTURE(op);
    CHECK(p["backward_s_per_step"].contains(op));
  }
  REQUIRE(!p["gemm"].empty());
  bool head_forward = false;  // logits (B·T, V) = h (B·T, C) · wteᵀ: 32 x 128 x 32, once per step
  for (const nlohmann::json& g : p["gemm"]) {
    CHECK(g["calls_per_step"].get<double>() > 0);
    CHECK(g["s_per_step"].get<double>() >= 0);
    head_forward |= g["op"] == "NT 32x128x32";
    if (g["op"] == "NT 32x128x32") CHECK(g["calls_per_step"].get<double>() == 1);
  }
  CHECK(head_forward);
}
