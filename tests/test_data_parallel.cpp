// Data-parallel training under mpirun (optim/dist.h, examples/common/data_parallel.h): 2 ranks with 2
// examples each train as 1 process with 4 (every step's loss, the saved weights, within float32
// rounding), for FT and LoRA in finetune_e2e, LoRA in finetune, pretraining in train_gpt, a classifier in finetune_glue; ranks started with different options,
// a batch that does not split and an error on one rank end every rank with exit status 1, never a hang.
// Each case skips, saying why, in a build without MPI or where mpirun is missing.
#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "cli_util.h"
#include "nn/checkpoint.h"
#include "nn/hf_gpt2.h"
#include "tensor/safetensors.h"
#include "test_util.h"

using namespace lowrank;
using namespace lowrank::testing;
namespace fs = std::filesystem;

namespace {

const std::string kMpiexec = LOWRANK_MPIEXEC;

// "" when 2 ranks can be started, else why not.
std::string why_no_mpi() {
  if (kMpiexec.empty() || kMpiexec.find("NOTFOUND") != std::string::npos)
    return "this build has no MPI (-DLOWRANK_MPI=OFF or libopenmpi-dev missing)";
  if (!fs::exists(kMpiexec)) return "mpirun (" + kMpiexec + ") is missing";
  return "";
}

#define DP_SKIP_WITHOUT_MPI()                                 \
  do {                                                        \
    if (const std::string why = why_no_mpi(); !why.empty()) { \
      MESSAGE("skipped: " << why);                            \
      return;                                                 \
    }                                                         \
  } while (0)

// mpirun's start for ranks on this machine: --oversubscribe (2 ranks on however many cores),
// --allow-run-as-root where CI runs as root; `timeout` turns a hang into a failure.
std::string mpirun_prefix() {
  return "timeout 100 " + kMpiexec + " --oversubscribe" + (geteuid() == 0 ? " --allow-run-as-root" : "") +
         " --mca btl self,vader";
}

// mpirun -np n build/<binary> args
Run run_ranks(int n, const std::string& binary, const std::string& args, const TempDir& t) {
  return run_command(mpirun_prefix() + " -np " + std::to_string(n) + " " + example_path(binary) + " " + args, t);
}

std::string tiny_base(const TempDir& t) { return write_tiny_hf_base(t.file("base"), 16, 128); }

// |a - b| <= rel * max(|a|, |b|) + abs_tol, for every element of two lists.
void check_close(const std::vector<float>& a, const std::vector<float>& b, double rel, double abs_tol,
                 const std::string& what) {
  REQUIRE(a.size() == b.size());
  double worst = 0;
  size_t at = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = std::fabs(double(a[i]) - double(b[i])) - rel * std::max(std::fabs(a[i]), std::fabs(b[i]));
    if (d > worst) worst = d, at = i;
  }
  CAPTURE(what);
  CAPTURE(at);
  CHECK(worst <= abs_tol);
}

// Every tensor of two safetensors files, within the tolerance.
void check_same_tensors(const std::string& one, const std::string& two, double rel, double abs_tol) {
  const SafetensorsFile a = load_safetensors(one), b = load_safetensors(two);
  REQUIRE(a.tensors.size() == b.tensors.size());
  for (const auto& [name, t] : a.tensors) {
    REQUIRE(b.tensors.count(name) == 1);
    check_close(t.to_vector(), b.tensors.at(name).to_vector(), rel, abs_tol, name);
  }
}

std::vector<float> losses_of(const nlohmann::json& j) { return j.at("losses").get<std::vector<float>>(); }

}  // namespace

TEST_CASE("data parallel: finetune_e2e on 2 ranks x 2 examples trains as 1 process x 4, FT and LoRA") {
  DP_SKIP_WITHOUT_MPI();
  TempDir t("dp_e2e");
  const std::string base = tiny_base(t);
  for (const std::string method : {"lora", "ft"}) {
    CAPTURE(method);
    const std::string common = "--init " + base + " --method " + method +
                               " --steps 20 --batch-size 4 --dropout 0 --warmup 5 --lr 2e-3 --threads 1"
                               " --test-mrs 1 --beam 1 --show 0";
    const auto outputs = [&](const std::string& tag) {
      const std::string saved = method == "lora" ? " --save-adapter " + t.file(tag + ".safetensors")
                                                 : " --export-merged " + t.file(tag + "_merged");
      return common + saved + " --outputs " + t.file(tag + ".txt") + " --json " + t.file(tag + ".json");
    };
    const Run one = run_example("finetune_e2e", outputs(method + "1"), t);
    CAPTURE(one.err);
    REQUIRE(one.rc == 0);
    const Run two = run_ranks(2, "finetune_e2e", outputs(method + "2"), t);
    CAPTURE(two.err);
    REQUIRE(two.rc == 0);
    // Rank 0 alone prints and writes.
    CHECK(std::count(two.out.begin(), two.out.end(), '\n') == std::count(one.out.begin(), one.out.end(), '\n'));
    const nlohmann::json j1 = read_json_file(t.file(method + "1.json")), j2 = read_json_file(t.file(method + "2.json"));
    check_close(losses_of(j1), losses_of(j2), 1e-5, 0, "losses");
    CHECK(j1.at("examples_seen") == j2.at("examples_seen"));
    // Weights: 1e-5 relative, plus 1e-5 absolute (a 200th of one step at lr 2e-3) for the elements whose
    // gradient is near zero, where Adam's division by sqrt(v) magnifies float32 rounding.
    if (method == "lora")
      check_same_tensors(t.file("lora1.safetensors"), t.file("lora2.safetensors"), 1e-5, 1e-5);
    else
      check_same_tensors(t.file("ft1_merged/model.safetensors"), t.file("ft2_merged/model.safetensors"), 1e-5, 1e-5);
  }
}

TEST_CASE("data parallel: finetune on 2 ranks trains LoRA on a JSONL file as 1 process does") {
  DP_SKIP_WITHOUT_MPI();
  TempDir t("dp_finetune");
  const std::string base = tiny_base(t), data = t.file("train.jsonl");
  std::string jsonl;
  for (int i = 0; i < 40; ++i)
    jsonl += nlohmann::json{{"prompt", "Q: " + std::to_string(i % 7) + "+" + std::to_string(i % 5) + "="},
                            {"completion", " " + std::to_string(i % 7 + i % 5)}}
                 .dump() +
             "\n";
  write_bytes(data, jsonl);
  const std::string common = "--init " + base + " --data " + data +
                             " --batch-size 4 --accum 2 --steps 8 --eval-every 4 --dropout 0 --lr 5e-3 --threads 1";
  const Run one = run_example("finetune", common + " --out " + t.file("one"), t);
  CAPTURE(one.err);
  REQUIRE(one.rc == 0);
  const Run two = run_ranks(2, "finetune", common + " --out " + t.file("two"), t);
  CAPTURE(two.err);
  REQUIRE(two.rc == 0);
  const nlohmann::json a = read_json_file(t.file("one/metrics.json")), b = read_json_file(t.file("two/metrics.json"));
  check_close(losses_of(a), losses_of(b), 1e-5, 0, "losses");
  CHECK(a.at("best_step") == b.at("best_step"));
  check_same_tensors(t.file("one/adapter.safetensors"), t.file("two/adapter.safetensors"), 1e-5, 1e-5);
}

TEST_CASE("data parallel: train_gpt on 2 ranks x 2 sequences trains as 1 process x 4") {
  DP_SKIP_WITHOUT_MPI();
  TempDir t("dp_train_gpt");
  const std::string common =
      "--tokenizer char --model tiny --block-size 16 --batch-size 4 --steps 10 --eval-every 0 --eval-batches 2"
      " --threads 1";
  const Run one =
      run_example("train_gpt", common + " --save " + t.file("one.safetensors") + " --json " + t.file("one.json"), t);
  CAPTURE(one.err);
  REQUIRE(one.rc == 0);
  const Run two =
      run_ranks(2, "train_gpt", common + " --save " + t.file("two.safetensors") + " --json " + t.file("two.json"), t);
  CAPTURE(two.err);
  REQUIRE(two.rc == 0);
  const nlohmann::json a = read_json_file(t.file("one.json")), b = read_json_file(t.file("two.json"));
  check_close({a.at("final_train_loss").get<float>(), a.at("val_loss").get<float>()},
              {b.at("final_train_loss").get<float>(), b.at("val_loss").get<float>()}, 1e-5, 0, "losses");
  check_same_tensors(t.file("one.safetensors"), t.file("two.safetensors"), 1e-5, 1e-5);
}

TEST_CASE("data parallel: finetune_glue on 2 ranks x 2 examples trains as 1 process x 4") {
  DP_SKIP_WITHOUT_MPI();
  TempDir t("dp_glue");
  nn::GPTConfig c = nn::config_by_name("tiny");
  c.vocab_size = 50257;
  c.n_layer = 1;
  Rng rng(1);
  nn::GPT model(c, rng);
  const std::string base = t.file("base.safetensors");
  nn::save_model(base, model, {}, "BF16");
  const std::string common =
      "--task sst2 --steps 10 --train-examples 32 --max-len 16 --batch-size 4 --dropout 0"
      " --seeds 1 --lr 1e-2 --threads 1 --init " +
      base;
  const Run one = run_example(
      "finetune_glue", common + " --save-adapter " + t.file("one.safetensors") + " --json " + t.file("one.json"), t);
  CAPTURE(one.err);
  REQUIRE(one.rc == 0);
  const Run two = run_ranks(
      2, "finetune_glue", common + " --save-adapter " + t.file("two.safetensors") + " --json " + t.file("two.json"), t);
  CAPTURE(two.err);
  REQUIRE(two.rc == 0);
  const nlohmann::json a = read_json_file(t.file("one.json"))["runs"][0], b = read_json_file(t.file("two.json"))["runs"][0];
  check_close({a.at("final_train_loss").get<float>(), a.at("dev_loss").get<float>()},
              {b.at("final_train_loss").get<float>(), b.at("dev_loss").get<float>()}, 1e-5, 0, "losses");
  check_same_tensors(t.file("one.safetensors"), t.file("two.safetensors"), 1e-5, 1e-5);
  check_same_tensors(t.file("one.head.safetensors"), t.file("two.head.safetensors"), 1e-5, 1e-5);
}

TEST_CASE("data parallel: ranks with different options, an unsplittable batch or a failing rank all exit 1") {
  DP_SKIP_WITHOUT_MPI();
  TempDir t("dp_fail");
  const std::string base = tiny_base(t);
  const std::string common = "--init " + base + " --steps 3 --batch-size 4 --threads 1 --test-mrs 1 --beam 1";
  const std::string bin = example_path("finetune_e2e");
  // Different options on the two ranks (MPMD: one command line each): one line names the option.
  Run r = run_command(mpirun_prefix() + " -np 1 " + bin + " " + common + " --lr 1e-3 --outputs " + t.file("o.txt") +
                          " : -np 1 " + bin + " " + common + " --lr 2e-3 --outputs " + t.file("o.txt"),
                      t);
  CAPTURE(r.err);
  CHECK(r.rc == 1);
  CHECK(contains(r.err,
                 "error: the 2 ranks were started with different options: --lr: rank 0 has '1e-3', rank 1 has '2e-3'"));
  CHECK(!fs::exists(t.file("o.txt")));
  // A global batch of 3 does not split over 2 ranks.
  r = run_ranks(2, "finetune_e2e", common + " --batch-size 3 --outputs " + t.file("o.txt"), t);
  CAPTURE(r.err);
  CHECK(r.rc == 1);
  CHECK(contains(r.err, "--batch-size 3 does not split over the 2 ranks"));
  CHECK(!fs::exists(t.file("o.txt")));
  // Rank 1 alone cannot read its base (another working folder): it aborts the group, rank 0 does not wait.
  fs::create_directories(t.file("a"));
  fs::create_directories(t.file("b"));
  fs::copy(base, t.file("a/base"), fs::copy_options::recursive);
  const std::string rel = "--init base --steps 3 --batch-size 4 --threads 1 --test-mrs 1 --beam 1 --outputs o.txt";
  r = run_command(mpirun_prefix() + " -np 1 --wdir " + t.file("a") + " " + bin + " " + rel + " : -np 1 --wdir " +
                      t.file("b") + " " + bin + " " + rel,
                  t);
  CAPTURE(r.err);
  CHECK(r.rc != 0);
  CHECK(r.rc != 124);  // not timeout's: no rank hung
  CHECK(contains(r.err, "error: rank 1: "));
  CHECK(!fs::exists(t.file("a/o.txt")));
}
