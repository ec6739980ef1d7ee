#pragma once
// One cell of the E2E ablation (examples/ablation.cpp --task e2e): LoRA on a set of weights at rank r,
// trained on E2E with finetune_e2e's recipe (examples/common/finetune_train.h: completion-only loss, label
// smoothing, AdamW, linear warmup/decay), then scored on the validation split: its masked loss, and the
// five metrics of beam-search outputs for a spread of validation MRs against all their references.
// The paper's Tables 5 and 6 report validation accuracy (WikiSQL, MultiNLI); the test MRs stay for
// the Table 3 analog.
#include <string>
#include <vector>

#include "data/e2e.h"
#include "data/metrics.h"
#include "examples/common/e2e_decode.h"
#include "examples/common/finetune_train.h"
#include "examples/common/train_loop.h"
#include "nn/generate.h"

namespace lowrank::examples {

// The tokenized splits and the validation MRs that every cell decodes (loaded once).
struct E2EAblationData {
  E2ESplits splits;
  std::vector<data::E2EGroup> mrs;
};

// max_len: tokens per training example; n_mrs validation MRs, every stride-th from the first.
inline E2EAblationData load_e2e_ablation_data(const std::string& dir, const data::Tokenizer& tok, int64_t max_len,
                                              int64_t n_mrs, int64_t stride) {
  return {load_e2e_splits(dir, tok, max_len),
          data::pick_test_mrs(data::group_by_mr(data::load_e2e(dir + "/valid.txt")), n_mrs, stride)};
}

struct E2ECellResult {
  int64_t trainable = 0;
  TrainResult train;
  data::MetricScores scores;
  double decode_seconds = 0;
};

// Trains the LoRA config mc on d's train split (seed to.seed), then decodes and scores d.mrs.
// The loop is finetune_e2e's (train_loop.h).
inline E2ECellResult run_e2e_cell(const std::string& init, const data::Tokenizer& tok, const E2EAblationData& d,
                                  const lora::MethodConfig& mc, const FinetuneOptions& to,
                                  const nn::DecodeOptions& dec) {
  FinetuneModel em = prepare_model(init, tok, mc, to);
  E2ECellResult r;
  r.trainable = em.trainable;
  r.train = train_loop(em, d.splits.train, &d.splits.valid, to);
  const auto [hyps, refs] = decode_test(*em.model, tok, d.mrs, dec, 8, r.decode_seconds);
  r.scores = data::e2e_metrics(hyps, refs);
  return r;
}

}  // namespace lowrank::examples
