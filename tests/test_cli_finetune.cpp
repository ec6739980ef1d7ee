// finetune and to_jsonl as a user runs them: a JSONL file in, an adapter (ours, peft's), a merged model,
// metrics and a curve out; an exact resume; E2E through finetune equal to finetune_e2e; every bad input
// refused in one line with nothing written. Names start with "own data:" (the labs' graders).
#include <doctest/doctest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "cli_util.h"
#include "lora/lora.h"
#include "nn/checkpoint.h"
#include "nn/hf_gpt2.h"
#include "test_util.h"

using namespace lowrank;
using namespace lowrank::testing;
namespace fs = std::filesystem;

namespace {

// finetune's --init.
std::string tiny_hf_base(const TempDir& t, int64_t n_positions = 64) {
  return write_tiny_hf_base(t.file("base"), 16, n_positions);
}

// n prompt/completion records: "Q: a+b=" -> " c".
std::string sums_jsonl(int n) {
  std::string s;
  for (int i = 0; i < n; ++i)
    s += nlohmann::json{{"prompt", "Q: " + std::to_string(i % 7) + "+" + std::to_string(i % 5) + "="},
                        {"completion", " " + std::to_string(i % 7 + i % 5)}}
             .dump() +
         "\n";
  return s;
}


// Exit status 1, one "error: ..." line containing `expect`, and `out` never created.
void check_refused_run(const std::string& args, const std::string& expect, const std::string& out, const TempDir& t) {
  CAPTURE(args);
  const Run r = run_example("finetune", args, t);
  CAPTURE(r.err);
  CHECK(r.rc == 1);
  CHECK(r.err.rfind("error: ", 0) == 0);
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  CHECK(contains(r.err, expect));
  CHECK(!fs::exists(out));
}

}  // namespace

TEST_CASE("own data: finetune trains LoRA on a JSONL file, adapter, peft, merged model, metrics and curve out") {
  TempDir t("ft_cli");
  const std::string base = tiny_hf_base(t), data = t.file("train.jsonl"), out = t.file("run");
  write_bytes(data, sums_jsonl(60));
  const std::string peft = t.file("peft"), merged = t.file("merged");
  const Run r = run_example("finetune",
                            "--init " + base + " --data " + data + " --out " + out +
                                " --val-frac 0.1 --batch-size 4 --epochs 2 --lr 1e-2 --eval-every 5 --threads 1"
                                " --save-peft " +
                                peft + " --export-merged " + merged,
                            t);
  CAPTURE(r.err);
  REQUIRE(r.rc == 0);
  const nlohmann::json m = read_json_file(out + "/metrics.json");
  CHECK(m.at("data").at("train_examples") == 54);  // 6 of 60 held out (ceil 10%)
  CHECK(m.at("data").at("valid_examples") == 6);
  CHECK(m.at("steps") == 2 * (54 / 4));
  CHECK(m.at("losses").size() == m.at("steps").get<size_t>());
  CHECK(m.at("curve").size() == 6);  // every 5 steps of 26, and the end
  CHECK(m.at("best_valid_loss").get<double>() <= m.at("valid_loss").get<double>());
  CHECK(m.at("exported_step") == m.at("best_step"));
  CHECK(m.at("losses").back().get<double>() < m.at("losses").front().get<double>());
  CHECK(contains(read_bytes(out + "/curve.svg"), "<polyline"));
  CHECK(contains(r.out, "best valid loss"));

  // The adapter in --out, the peft directory and the merged model are the same trained model.
  Rng r0(0);
  auto ours = nn::load_model(base, r0), theirs = nn::load_model(base, r0), plain = nn::load_model(base, r0);
  lora::apply_lora(*ours, lora::read_adapter_config(out + "/adapter.safetensors"), r0);
  lora::load_adapter(out + "/adapter.safetensors", *ours);
  lora::load_peft(peft, *theirs);
  auto merged_model = nn::load_model(merged, r0);
  const std::vector<int32_t> ids = {48, 25, 513, 10, 19, 28};
  autograd::NoGradGuard ng;
  const auto a = ours->forward(ids, 1, 6, {}).to_vector(), b = theirs->forward(ids, 1, 6, {}).to_vector(),
             c = merged_model->forward(ids, 1, 6, {}).to_vector(), p = plain->forward(ids, 1, 6, {}).to_vector();
  float d_peft = 0, d_merged = 0, d_base = 0;
  for (size_t i = 0; i < a.size(); ++i)
    d_peft = std::max(d_peft, std::fabs(a[i] - b[i])), d_merged = std::max(d_merged, std::fabs(a[i] - c[i])),
    d_base = std::max(d_base, std::fabs(a[i] - p[i]));
  CHECK(d_peft < 1e-5f);
  CHECK(d_merged < 1e-4f);
  CHECK(d_base > 1e-4f);

  // The training file scores as generate's requests: every record's completion is the expected one.
  const Run g =
      run_example("generate",
                  "--init " + base + " --adapter " + out + "/adapter.safetensors --input " + data + " --output " +
                      t.file("gen.jsonl") + " --max-new-tokens 3 --threads 1 --json " + t.file("gen.json"),
                  t);
  CAPTURE(g.err);
  REQUIRE(g.rc == 0);
  const nlohmann::json gm = read_json_file(t.file("gen.json"));
  CHECK(gm.at("expected") == 60);
  CHECK(gm.at("exact_match").get<double>() >= 0.0);
  CHECK(contains(g.out, "exact match"));
  const nlohmann::json first =
      nlohmann::json::parse(read_bytes(t.file("gen.jsonl")).substr(0, read_bytes(t.file("gen.jsonl")).find('\n')));
  CHECK(first.at("expected") == " 0");
  CHECK(first.at("match").is_boolean());
}

TEST_CASE("own data: finetune --stop-after then --resume gives the uninterrupted run's losses and adapter") {
  TempDir t("ft_resume");
  const std::string base = tiny_hf_base(t), data = t.file("train.jsonl");
  write_bytes(data, sums_jsonl(40));
  const std::string common = "--init " + base + " --data " + data +
                             " --batch-size 4 --accum 2 --steps 9 --eval-every 2 --dropout 0.1 --lr 5e-3 --threads 1";
  Run r = run_example("finetune", common + " --out " + t.file("whole"), t);
  CAPTURE(r.err);
  REQUIRE(r.rc == 0);
  r = run_example("finetune", common + " --out " + t.file("parts") + " --stop-after 4", t);
  CAPTURE(r.err);
  REQUIRE(r.rc == 0);
  CHECK(contains(r.out, "stopped after step 4 of 9"));
  CHECK(!fs::exists(t.file("parts/metrics.json")));
  // Another run's options are refused, and the checkpoint is left for the right one.
  const std::string ckpt = t.file("parts/checkpoint.safetensors");
  r = run_example("finetune", common + " --seed 2 --out " + t.file("parts") + " --resume " + ckpt, t);
  CHECK(r.rc == 1);
  CHECK(contains(r.err, "written by another run"));
  r = run_example("finetune", common + " --out " + t.file("parts") + " --resume " + ckpt, t);
  CAPTURE(r.err);
  REQUIRE(r.rc == 0);
  const nlohmann::json whole = read_json_file(t.file("whole/metrics.json")), parts = read_json_file(t.file("parts/metrics.json"));
  CHECK(whole.at("losses") == parts.at("losses"));
  CHECK(whole.at("curve") == parts.at("curve"));
  CHECK(parts.at("resumed_at") == 4);
  CHECK(whole.at("examples_seen") == 9 * 8);
  CHECK(read_bytes(t.file("whole/adapter.safetensors")) == read_bytes(t.file("parts/adapter.safetensors")));
}

TEST_CASE("own data: finetune on E2E as JSON Lines gives finetune_e2e's losses at the same seed") {
  TempDir t("ft_e2e");
  const std::string base = tiny_hf_base(t, 128);
  for (const char* split : {"train", "valid"}) {
    const Run c = run_example(
        "to_jsonl", std::string("--from e2e --split ") + split + " --out " + t.file(split + std::string(".jsonl")), t);
    REQUIRE(c.rc == 0);
  }
  // finetune_e2e's recipe, spelled out for finetune (whose own defaults differ).
  Run r = run_example("finetune",
                      "--init " + base + " --data " + t.file("train.jsonl") + " --val " + t.file("valid.jsonl") +
                          " --out " + t.file("run") +
                          " --steps 4 --rank 4 --alpha 32 --dropout 0.1 --lr 1e-3"
                          " --warmup 30 --label-smoothing 0.1 --max-len 128 --eval-batches 50 --threads 1",
                      t);
  CAPTURE(r.err);
  REQUIRE(r.rc == 0);
  r = run_example("finetune_e2e",
                  "--init " + base + " --steps 4 --threads 1 --test-mrs 1 --beam 1 --show 0 --outputs " +
                      t.file("o.txt") + " --json " + t.file("e2e.json"),
                  t);
  CAPTURE(r.err);
  REQUIRE(r.rc == 0);
  const nlohmann::json a = read_json_file(t.file("run/metrics.json")), b = read_json_file(t.file("e2e.json"));
  REQUIRE(a.at("losses").size() == 4);
  CHECK(a.at("losses") == b.at("losses"));
  CHECK(a.at("valid_loss") == b.at("valid_loss"));
}

TEST_CASE("own data: finetune reads chat messages and plain text") {
  TempDir t("ft_formats");
  const std::string base = tiny_hf_base(t);
  std::string chat;
  for (int i = 0; i < 12; ++i)
    chat += R"({"messages": [{"role": "user", "content": "say )" + std::to_string(i) +
            R"("}, {"role": "assistant", "content": ")" + std::to_string(i) + R"("}]})" + "\n";
  write_bytes(t.file("chat.jsonl"), chat);
  write_bytes(t.file("notes.txt"), "one document\nover two lines\n\nanother one\n\na third\n\nand a fourth\n");
  for (const auto& [file, format] : {std::pair{"chat.jsonl", "messages"}, std::pair{"notes.txt", "txt"}}) {
    const Run r =
        run_example("finetune",
                    "--init " + base + " --data " + t.file(file) + " --out " + t.file(file + std::string(".out")) +
                        " --batch-size 2 --steps 3 --val-frac 0.25 --threads 1",
                    t);
    CAPTURE(r.err);
    REQUIRE(r.rc == 0);
    CHECK(read_json_file(t.file(file + std::string(".out/metrics.json"))).at("data").at("format") == format);
  }
}

TEST_CASE("own data: finetune refuses bad data and options in one line and writes nothing") {
  TempDir t("ft_bad");
  const std::string base = tiny_hf_base(t, 16), out = t.file("out");
  const std::string init = "--init " + base + " --threads 1 --out " + out;
  auto data = [&](const std::string& name, const std::string& text) {
    write_bytes(t.file(name), text);
    return " --data " + t.file(name);
  };
  const std::string good = data("good.jsonl", sums_jsonl(20));
  check_refused_run(init + data("a.jsonl", "{\"text\": \"a\"}\n{oops}\n"), "a.jsonl:2: not valid JSON", out, t);
  check_refused_run(init + data("b.jsonl", "{\"prompt\": \"p\", \"completion\": \"c\"}\n{\"prompt\": \"p\"}\n"),
                    "b.jsonl:2: field 'completion' is missing", out, t);
  check_refused_run(init + data("c.jsonl", "{\"prompt\": 1, \"completion\": \"c\"}\n"),
                    "c.jsonl:1: field 'prompt' is number", out, t);
  check_refused_run(init + data("d.jsonl", "{\"prompt\": \"p\", \"completion\": \"\"}\n"),
                    "d.jsonl:1: field 'completion' is empty", out, t);
  std::string long_prompt = "a";
  for (int i = 0; i < 20; ++i) long_prompt += " a";  // 21 tokens, the window is 16
  check_refused_run(
      init + data("e.jsonl", "{\"prompt\": \"" + long_prompt + "\", \"completion\": \" c\"}\n") + " --val-frac 0",
      "e.jsonl:1 has a context of", out, t);
  check_refused_run(init + data("f.jsonl", "{\"question\": \"q\", \"answer\": \"a\"}\n"),
                    "f.jsonl:1: a record in none of the formats", out, t);
  check_refused_run(init + data("g.jsonl", "{\"text\": \"a\"}\n") + " --val-frac 0.5", "leaving nothing to train on",
                    out, t);
  check_refused_run(init + good + " --max-len 17", "--max-len 17 exceeds the model's context of 16 tokens", out, t);
  check_refused_run(init + good + " --format csv", "--format: unknown format 'csv'", out, t);
  check_refused_run(init + good + " --warmup 5x", "--warmup '5x'", out, t);
  check_refused_run(init + good + " --method ft --save-peft " + t.file("p"), "--save-peft needs --method lora", out, t);
  check_refused_run(init + good + " --val " + t.file("good.jsonl") + " --val-frac 0.1",
                    "--val and --val-frac exclude each other", out, t);
  check_refused_run("--init " + base + good, "--out is required", out, t);
  // A diverging run stops with the reason as its last line (after the progress bar) and exports nothing.
  const Run nan = run_example("finetune", init + good + " --lr 1e30 --steps 3", t);
  CAPTURE(nan.err);
  CHECK(nan.rc == 1);
  CHECK(contains(nan.err, "error: loss is"));
  CHECK(!fs::exists(out + "/metrics.json"));
  CHECK(!fs::exists(out + "/adapter.safetensors"));
  fs::remove_all(out);
  // A folder that already holds a run is not overwritten.
  fs::create_directories(out);
  write_bytes(out + "/metrics.json", "{}");
  const Run r = run_example("finetune", init + good, t);
  CHECK(r.rc == 1);
  CHECK(contains(r.err, "already holds a run"));
  CHECK(read_bytes(out + "/metrics.json") == "{}");
}

TEST_CASE("own data: to_jsonl refuses unknown data sets, splits and malformed input in one line") {
  TempDir t("to_jsonl_bad");
  check_refused("to_jsonl", "--from imdb --out " + t.file("x.jsonl"), "--from: unknown data set 'imdb'");
  check_refused("to_jsonl", "--from e2e --split dev --out " + t.file("x.jsonl"),
                "--split dev: E2E has train, valid and test");
  check_refused("to_jsonl", "--from sst2 --split test --out " + t.file("x.jsonl"),
                "--split test: GLUE has train and dev");
  check_refused("to_jsonl", "--from e2e --out /nonexistent/x.jsonl", "folder '/nonexistent' does not exist");
  write_bytes(t.file("bad.txt"), "name : X||X is a pub .\nno separator here\n");
  check_refused("to_jsonl", "--from e2e --input " + t.file("bad.txt") + " --out " + t.file("x.jsonl"),
                "bad.txt:2: no \"||\"");
  CHECK(!fs::exists(t.file("x.jsonl")));
}
