// --precision bf16 in the programs that take it (docs/precision.md), run as a user runs them: finetune
// and finetune_e2e train LoRA with the frozen weights in bf16 and record the precision in their
// fingerprint, results key and rows (fp32 runs keep theirs unchanged); bench_step writes the precision,
// the bf16 path and its bf16 GEMMs per step into its JSON, and reports the fallback where oneDNN's ISA
// has no bf16, and on CUDA the bf16 products it ran; full fine-tuning in bf16 is refused in one line.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "cli_util.h"
#include "nn/checkpoint.h"
#include "nn/hf_gpt2.h"
#include "tensor/gemm_bf16.h"
#include "test_util.h"
#ifdef LOWRANK_HAVE_CUDA
#include "cuda/memory.h"
#endif

using namespace lowrank;
using namespace lowrank::testing;

namespace {

// Width 32: every frozen product above the thin GEMMs' size of 16, so that it runs in bf16.
std::string bf16_base(const TempDir& t) { return write_tiny_hf_base(t.file("base"), 32, 128); }

}  // namespace

TEST_CASE("bf16 cli: finetune --precision bf16 trains LoRA and records the precision in metrics and fingerprint") {
  TempDir t("bf16_ft");
  const std::string base = bf16_base(t), data = t.file("train.jsonl");
  std::string lines;
  for (int i = 0; i < 24; ++i)
    lines += nlohmann::json{{"prompt", "Q: " + std::to_string(i % 7) + "+" + std::to_string(i % 5) + "="},
                            {"completion", " " + std::to_string(i % 7 + i % 5)}}
                 .dump() +
             "\n";
  write_bytes(data, lines);
  const std::string common =
      "--init " + base + " --data " + data + " --val-frac 0 --batch-size 4 --steps 4 --threads 1";
  const Run r = run_example("finetune", common + " --out " + t.file("bf16") + " --precision bf16", t);
  CAPTURE(r.err);
  REQUIRE(r.rc == 0);
  CHECK(contains(r.out, "precision bf16: frozen weights' GEMMs in bf16"));
  const nlohmann::json m = read_json_file(t.file("bf16/metrics.json"));
  CHECK(m.at("precision") == "bf16");
  CHECK(m.at("bf16_gemm") == tensor::bf16_gemm_info());
  CHECK(contains(m.at("model").at("fingerprint").get<std::string>(), "\"precision\":\"bf16\""));
  for (const nlohmann::json& l : m.at("losses")) CHECK(std::isfinite(l.get<double>()));
  // An fp32 run's metrics and fingerprint carry no precision: runs from before --precision keep theirs.
  const Run f = run_example("finetune", common + " --out " + t.file("fp32"), t);
  REQUIRE(f.rc == 0);
  const nlohmann::json m32 = read_json_file(t.file("fp32/metrics.json"));
  CHECK(!m32.contains("precision"));
  CHECK(!contains(m32.at("model").at("fingerprint").get<std::string>(), "precision"));
  check_refused("finetune", common + " --out " + t.file("ft") + " --method ft --precision bf16",
                "--precision bf16 runs the frozen weights in bf16, and --method ft trains every weight");
  check_refused("finetune", common + " --out " + t.file("x") + " --precision fp16",
                "unknown precision 'fp16' (expected fp32 or bf16)");
}

TEST_CASE("bf16 cli: finetune_e2e --precision bf16 keys its results row apart from fp32 rows") {
  TempDir t("bf16_e2e");
  const std::string base = bf16_base(t), results = t.file("results.json");
  const Run r = run_example("finetune_e2e",
                            "--init " + base +
                                " --steps 2 --batch-size 2 --warmup 0 --test-mrs 1 --beam 1 --max-new-tokens 8 --show 0"
                                " --threads 1 --precision bf16 --outputs " +
                                t.file("o.txt") + " --results " + results,
                            t);
  CAPTURE(r.err);
  REQUIRE(r.rc == 0);
  const nlohmann::json rows = read_json_file(results);
  const nlohmann::json& row = rows.is_array() ? rows.at(0) : rows.at("runs").at(0);
  CAPTURE(row.dump());
  CHECK(contains(row.at("key").get<std::string>(), " bf16 B=2 "));
  CHECK(row.at("precision") == "bf16");
  CHECK(row.at("bf16_gemm") == tensor::bf16_gemm_info());
  check_refused("finetune_e2e", "--init " + base + " --method ft --precision bf16 --threads 1",
                "--precision bf16 runs the frozen weights in bf16, and --method ft trains every weight");
}

TEST_CASE("bf16 cli: bench_step --precision bf16 runs a few steps and writes the bf16 path into its JSON") {
  TempDir tmp("bf16_bench");
  const std::string json_path = tmp.file("b.json"), args =
                                                        "--model tiny --seq 32 --steps 2 --warmup 1 --threads 1 "
                                                        "--precision bf16 --json " +
                                                        json_path;
  Run r = run_example("bench_step", args, tmp);
  CAPTURE(r.err);
  REQUIRE(r.rc == 0);
  nlohmann::json j = read_json_file(json_path);
  CHECK(j.at("precision") == "bf16");
  CHECK(j.at("bf16_gemm") == tensor::bf16_gemm_info());
  REQUIRE(j.at("methods").size() == 2);
  CHECK(j.at("methods").at(0).at("method") == "ft");  // every weight trains: only attention runs in bf16
  const double ft = j.at("methods").at(0).at("bf16_gemms_per_step").get<double>();
  const double lora = j.at("methods").at(1).at("bf16_gemms_per_step").get<double>();
  if (tensor::bf16_gemm_available()) {
    CHECK(ft > 0);
    CHECK(lora > ft);  // attention and the frozen weights
    CHECK(j.at("bf16_gemm_gflop_per_s").get<double>() > 0);
  } else {
    MESSAGE("no bf16 GEMM here: " << tensor::bf16_gemm_info());
    CHECK(ft == 0);
    CHECK(lora == 0);
  }
  // oneDNN held to an ISA without bf16: the same run falls back to fp32 and says so.
  r = run_command("ONEDNN_MAX_CPU_ISA=AVX512_CORE " + example_path("bench_step") + " " + args, tmp);
  CAPTURE(r.err);
  REQUIRE(r.rc == 0);
  j = read_json_file(json_path);
  CHECK(j.at("bf16_gemm").get<std::string>().rfind("fp32 fallback: ", 0) == 0);
  CHECK(j.at("methods").at(1).at("bf16_gemms_per_step") == 0);
  CHECK(!j.contains("bf16_gemm_gflop_per_s"));
}

#ifdef LOWRANK_HAVE_CUDA
// On CUDA the same run multiplies its frozen weights through cuBLAS's bf16 GemmEx, every bf16 product
// counted as on the CPU: where the CPU has a bf16 GEMM too, both devices report the same products per step.
TEST_CASE("bf16 cli: bench_step --device cuda --precision bf16 reports its bf16 GEMMs per step as the CPU does") {
  if (!cuda::available()) {
    MESSAGE("no CUDA device: skipped");
    return;
  }
  TempDir tmp("bf16_bench_cuda");
  const std::string args = "--model tiny --seq 32 --steps 2 --warmup 1 --threads 1 --precision bf16 --json ";
  Run r = run_example("bench_step", args + tmp.file("gpu.json") + " --device cuda --batch 1", tmp);
  CAPTURE(r.err);
  REQUIRE(r.rc == 0);
  const nlohmann::json gpu = read_json_file(tmp.file("gpu.json"));
  CHECK(gpu.at("precision") == "bf16");
  CHECK(gpu.at("bf16_gemm").get<std::string>().rfind("bf16 cuBLAS GemmEx", 0) == 0);
  CHECK(gpu.at("bf16_gemm_gflop_per_s").get<double>() > 0);
  REQUIRE(gpu.at("methods").size() == 2);
  CHECK(gpu.at("methods").at(0).at("bf16_gemms_per_step") == 0);  // ft: nothing frozen
  const double lora = gpu.at("methods").at(1).at("bf16_gemms_per_step").get<double>();
  CHECK(lora > 0);
  if (!tensor::bf16_gemm_available()) return;
  r = run_example("bench_step", args + tmp.file("cpu.json") + " --batch 1", tmp);
  REQUIRE(r.rc == 0);
  CHECK(read_json_file(tmp.file("cpu.json")).at("methods").at(1).at("bf16_gemms_per_step").get<double>() == lora);
}

// finetune trains LoRA on CUDA with its frozen weights in bf16 and says which GEMM ran; full fine-tuning
// in bf16 stays refused on this device too.
TEST_CASE("bf16 cli: finetune --device cuda --precision bf16 trains LoRA through cuBLAS's bf16 GEMM") {
  if (!cuda::available()) {
    MESSAGE("no CUDA device: skipped");
    return;
  }
  TempDir t("bf16_ft_cuda");
  const std::string base = bf16_base(t), data = t.file("train.jsonl");
  std::string lines;
  for (int i = 0; i < 8; ++i)
    lines +=
        nlohmann::json{{"prompt", "Q: " + std::to_string(i) + "="}, {"completion", " " + std::to_string(i)}}.dump() +
        "\n";
  write_bytes(data, lines);
  const std::string common = "--init " + base + " --data " + data +
                             " --val-frac 0 --batch-size 4 --steps 2 --threads 1 --device cuda --precision bf16";
  const Run r = run_example("finetune", common + " --out " + t.file("bf16"), t);
  CAPTURE(r.err);
  REQUIRE(r.rc == 0);
  const nlohmann::json m = read_json_file(t.file("bf16/metrics.json"));
  CHECK(m.at("precision") == "bf16");
  CHECK(m.at("bf16_gemm").get<std::string>().rfind("bf16 cuBLAS GemmEx", 0) == 0);
  for (const nlohmann::json& l : m.at("losses")) CHECK(std::isfinite(l.get<double>()));
  check_refused("finetune", common + " --out " + t.file("ft") + " --method ft",
                "--precision bf16 runs the frozen weights in bf16, and --method ft trains every weight");
}
#endif
