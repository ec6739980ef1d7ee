// The GEMM FLOP count of a training step (examples/common/step_flops.h) that bench_step's floors rest on:
// the hand-counted figures for GPT-2 124M at 1024 tokens, and the head on the loss rows only (--loss-rows).
#include "examples/common/step_flops.h"
#include "test_util.h"

using namespace lowrank;

namespace {

lora::MethodConfig method(const std::string& name) {
  lora::MethodConfig m;
  m.method = name;
  m.lora.r = 4;
  m.lora.targets = {"q", "v"};
  return m;
}

}  // namespace

TEST_CASE("step_flops: the hand-counted GPT-2 124M GEMM FLOPs at B=1, T=1024") {
  const nn::GPTConfig cfg = nn::config_by_name("gpt2");
  // Counted by hand (docs/benchmarks.md, "bench_step"): 874.9 GFLOP full fine-tuning, 622.9 GFLOP LoRA r=4 on Wq, Wv (GEMMs only, full T x T attention).
  CHECK(examples::step_flops(cfg, 1, 1024, method("ft")) / 1e9 == doctest::Approx(874.9).epsilon(1e-4));
  CHECK(examples::step_flops(cfg, 1, 1024, method("lora")) / 1e9 == doctest::Approx(622.9).epsilon(1e-4));
  // By hand, the LoRA terms: 12 layers x 2 targets x 3 passes x 2 GEMMs x 2·N·r·C.
  const double lora_only = 12.0 * 2 * 3 * 2 * 2.0 * 1024 * 4 * 768;
  lora::MethodConfig frozen = method("lora");
  frozen.lora.targets = {};
  CHECK(examples::step_flops(cfg, 1, 1024, method("lora")) - examples::step_flops(cfg, 1, 1024, frozen) ==
        doctest::Approx(lora_only));
}

TEST_CASE("step_flops: the head on the loss rows only") {
  const nn::GPTConfig cfg = nn::config_by_name("mini");
  const int64_t B = 8, T = 75, rows = 8 * 26;
  const double C = 192, V = 50257, head_row = 2.0 * C * V;  // one row of the (rows, C)·(C, V) GEMM
  // FT: forward, dX and dW of the tied head; LoRA: forward and dX (wte frozen).
  CHECK(examples::step_flops(cfg, B, T, method("ft")) - examples::step_flops(cfg, B, T, method("ft"), rows) ==
        doctest::Approx(3 * head_row * static_cast<double>(B * T - rows)));
  CHECK(examples::step_flops(cfg, B, T, method("lora")) - examples::step_flops(cfg, B, T, method("lora"), rows) ==
        doctest::Approx(2 * head_row * static_cast<double>(B * T - rows)));
  CHECK(examples::step_flops(cfg, B, T, method("lora"), B * T) == examples::step_flops(cfg, B, T, method("lora")));
}
