// The bf16 policy through the E2E trainer as a user runs it: 200 LoRA steps of finetune_e2e on E2E's
// training set, once in fp32 and once with --precision bf16 (every frozen GEMM in bf16: W0 of each
// layer, forward and dx, and the tied head), follow one learning curve. The base is a one-layer GPT of
// width 32 with GPT-2's vocabulary, so that every frozen product is above the thin GEMMs' size of 16.
// Where this CPU has no bf16 GEMM both runs are fp32 and must agree exactly.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli_util.h"
#include "tensor/gemm_bf16.h"
#include "test_util.h"

using namespace lowrank;
using namespace lowrank::testing;

namespace {

struct Curve {
  std::vector<double> train, valid;  // at steps 50, 100, 150, 200
};

// 200 steps of finetune_e2e at this precision; the learning curve of its results row.
Curve run_e2e(const std::string& base, const std::string& precision, const TempDir& t) {
  const std::string results = t.file("results_" + precision + ".json");
  const Run r = run_example("finetune_e2e",
                            "--init " + base +
                                " --steps 200 --batch-size 4 --warmup 10 --lr 5e-3 --rank 8 --targets q,v,mlp,wte"
                                " --eval-every 50 --test-mrs 1"
                                " --beam 1 --max-new-tokens 4 --show 0 --threads 1 --precision " +
                                precision + " --outputs " + t.file("o_" + precision + ".txt") + " --results " + results,
                            t);
  CAPTURE(r.err);
  REQUIRE(r.rc == 0);
  const nlohmann::json row = read_json_file(results).at("runs").at(0);
  Curve c;
  for (const auto& p : row.at("curve")) {
    c.train.push_back(p.at("train_loss").get<double>());
    c.valid.push_back(p.at("valid_loss").get<double>());
  }
  REQUIRE(c.valid.size() == 4);
  return c;
}

}  // namespace

TEST_CASE("bf16 cli: 200 E2E steps of LoRA in bf16 follow the fp32 run's train and valid losses within 1%") {
  TempDir t("bf16_e2e200");
  const std::string base = write_tiny_hf_base(t.file("base"), 32, 128);
  const Curve fp32 = run_e2e(base, "fp32", t), bf16 = run_e2e(base, "bf16", t);
  CHECK(fp32.valid.back() < fp32.valid.front() - 0.1);  // it learns: the comparison is of a moving curve
  const bool here = tensor::bf16_gemm_available();
  if (!here) MESSAGE("no bf16 GEMM here (" << tensor::bf16_gemm_info() << "): both runs are fp32");
  double worst = 0.0;
  for (size_t i = 0; i < fp32.valid.size(); ++i) {
    CAPTURE(i);
    // bf16 rounds each frozen operand and attention's operands to 8 significant bits; over 200 steps the
    // losses move apart by a few tenths of a percent at most (docs/precision.md), well inside 1%.
    const double tol = here ? 1e-2 : 0.0;
    CHECK(std::fabs(bf16.valid[i] - fp32.valid[i]) <= tol * fp32.valid[i]);
    CHECK(std::fabs(bf16.train[i] - fp32.train[i]) <= tol * fp32.train[i]);
    worst =
        std::max({worst, std::fabs(bf16.valid[i] / fp32.valid[i] - 1), std::fabs(bf16.train[i] / fp32.train[i] - 1)});
  }
  MESSAGE("largest relative loss difference bf16 vs fp32: " << worst);
}
