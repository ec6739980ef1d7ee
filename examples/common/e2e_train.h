#pragma once
// Fine-tuning a pretrained GPT on E2E NLG (Hu et al., 2021, Section 5.5) with LoRA or a baseline:
// load the base, apply the method, train with AdamW on the completion-only masked loss, report the
// validation loss. Shared by finetune_e2e (which then decodes and scores) and subspace (which trains
// the adapters that Section 7 analyses); each of them runs the training loop in its own code
// (batch -> forward -> masked loss -> zero_grad -> backward -> clip -> AdamW step), this header gives
// the pieces: the model, the batches (batches.h), the loss, the schedule, the log.
// Randomness: one seed gives the model load and A's init (rng(seed)), the batch order (seed) and the
// dropout masks (seed + 1): a fixed seed reproduces a run exactly.
#include <cstdio>
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "data/e2e.h"
#include "data/tokenizer.h"
#include "examples/common/batches.h"
#include "examples/common/cli.h"
#include "examples/common/results.h"
#include "lora/lora.h"
#include "lora/methods.h"
#include "nn/checkpoint.h"
#include "optim/adamw.h"
#include "optim/schedule.h"

namespace lowrank::examples {

struct E2ETrainOptions {
  int64_t batch_size = 8;       // examples per step
  int64_t steps = 300;          // optimizer steps; <= 0: `epochs` over the train set
  int64_t epochs = 1;
  int64_t warmup = 30;          // linear warmup steps, then linear decay to 0
  float lr = 1e-3f;             // peak learning rate
  float weight_decay = 0.01f;   // AdamW
  float label_smoothing = 0.1f;
  float clip = 1.f;             // max gradient norm; 0: off
  int64_t max_len = 128;        // tokens per example, capped by the model's n_positions
  int64_t eval_batches = 50;    // validation batches behind the reported valid loss
  int64_t eval_every = 0;       // steps between points of the learning curve (0: only the final valid loss)
  uint64_t seed = 1;
  tensor::Device device = tensor::Device::CPU;  // where the model trains (--device)
};

// A base checkpoint with a method applied, and its optimizer over the trainable tensors.
struct E2EModel {
  std::unique_ptr<nn::GPT> model;
  std::unique_ptr<optim::AdamW> opt;
  int64_t total_params = 0, trainable = 0;
};

struct E2ETrainResult {
  float final_loss = NAN;  // smoothed (EMA 0.95) training loss at the last step
  double seconds = 0, tokens_per_s = 0, valid_loss = NAN;  // seconds: training only, curve evaluations excluded
  int64_t steps = 0, examples = 0;
  std::vector<CurvePoint> curve;  // every eval_every steps, and the end
};

struct E2ESplits {
  data::E2EDataset train, valid;
};

// The train and valid splits of loralib's E2E files in `dir`, tokenized once.
inline E2ESplits load_e2e_splits(const std::string& dir, const data::Tokenizer& tok, int64_t max_len) {
  return {data::E2EDataset(data::load_e2e(dir + "/train.txt"), tok, max_len),
          data::E2EDataset(data::load_e2e(dir + "/valid.txt"), tok, max_len)};
}

// A LoRA adapter to start from (--adapter): lowrank's adapter file (.safetensors, checked against the
// base's hash) or a peft directory; its own config (r, alpha, targets, layers) replaces --method's.
inline int64_t load_e2e_adapter(nn::GPT& model, const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    lora::load_peft(path, model);
  } else {
    Rng unused(0);  // A's random init is overwritten by the file's
    lora::apply_lora(model, lora::read_adapter_config(path), unused);
    lora::load_adapter(path, model);
  }
  int64_t trainable = 0;
  for (nn::NamedTensor& p : model.named_parameters())
    if (p.tensor.requires_grad()) trainable += p.tensor.numel();
  return trainable;
}

// init: a lowrank checkpoint or a Hugging Face GPT-2 directory (nn::load_model); adapter: "" or as above.
inline E2EModel prepare_e2e_model(const std::string& init, const data::Tokenizer& tok, const lora::MethodConfig& mc,
                                  const E2ETrainOptions& o, const std::string& adapter = "") {
  Rng rng(o.seed);
  E2EModel m;
  m.model = nn::load_model(init, rng, o.device);
  LR_CHECK(m.model->config.vocab_size == tok.vocab_size(), init, ": vocabulary ", m.model->config.vocab_size,
           " is not GPT-2 BPE's ", tok.vocab_size(), " (pretrain with --tokenizer bpe)");
  m.total_params = m.model->num_parameters();
  m.trainable = adapter.empty() ? lora::apply_method(*m.model, mc, rng) : load_e2e_adapter(*m.model, adapter);
  optim::AdamWConfig oc;
  oc.weight_decay = o.weight_decay;
  m.opt = std::make_unique<optim::AdamW>(m.model->named_parameters(), oc);
  return m;
}

inline int64_t e2e_max_len(const E2EModel& m, const E2ETrainOptions& o) {
  return std::min(o.max_len, m.model->config.n_positions);
}

inline void print_e2e_setup(const E2EModel& m, const std::string& method, const data::E2EDataset& train) {
  std::cout << "method " << method << ": " << m.trainable << " trainable of " << m.total_params
            << " parameters, optimizer state " << m.opt->state_bytes() << " bytes; E2E train " << train.size()
            << " examples\n";
}

// The rows of b where the loss is (mask > 0), with their targets and weights: the LM head runs only
// there (GPT::head_loss), the same loss as the full (B,T,V) logits under the mask.
struct LossRows {
  std::vector<int32_t> rows, targets;
  std::vector<float> weights;
};
inline LossRows loss_rows(const data::E2EBatch& b) {
  LossRows r;
  for (size_t i = 0; i < b.mask.size(); ++i)
    if (b.mask[i] > 0.f) {
      r.rows.push_back(static_cast<int32_t>(i));
      r.targets.push_back(b.targets[i]);
      r.weights.push_back(b.mask[i]);
    }
  return r;
}

// The masked (and smoothed) cross-entropy of a batch, the head evaluated at the loss rows only and fused
// with the loss (GPT::head_loss: the loss rows' logits are never held whole).
inline Tensor e2e_loss(nn::GPT& model, const data::E2EBatch& b, float smoothing, const nn::Context& ctx) {
  const LossRows lr = loss_rows(b);
  autograd::CrossEntropyOptions ce;
  ce.label_smoothing = smoothing;
  ce.mask = lr.weights;
  return model.head_loss(model.hidden(b.inputs, b.B, b.T, ctx), lr.rows, lr.targets, ce);
}

// Mean masked loss (no smoothing) over the first n evaluation batches of ds.
inline double e2e_eval_loss(nn::GPT& model, const data::E2EDataset& ds, int64_t B, int64_t n) {
  autograd::NoGradGuard ng;
  double sum = 0.0, tokens = 0.0;
  n = std::min(n, ds.num_eval_batches(B));
  for (int64_t i = 0; i < n; ++i) {
    data::E2EBatch b = ds.eval_batch(i, B);
    sum += e2e_loss(model, b, 0.f, {}).item() * b.tokens;
    tokens += static_cast<double>(b.tokens);
  }
  return sum / tokens;
}

// The run's optimizer steps: o.steps, or o.epochs over the train set when o.steps is 0. --steps 0
// --epochs 0 is 0 steps: no training, the loaded model (an --adapter) as it is.
inline int64_t e2e_steps(const E2ETrainOptions& o, int64_t train_size) {
  LR_CHECK(o.batch_size >= 1, "--batch-size ", o.batch_size, " must be positive");
  const int64_t steps = o.steps > 0 ? o.steps : o.epochs * (train_size / o.batch_size);
  LR_CHECK(steps > 0 || (o.steps == 0 && o.epochs == 0), "0 steps (--steps ", o.steps, ", --epochs ", o.epochs, ", ",
           train_size, " train examples, --batch-size ", o.batch_size, ")");
  return steps;
}

// The paper's schedule (Table 11): linear warmup, then linear decay to 0 at the last step.
inline optim::Schedule e2e_schedule(const E2ETrainOptions& o, int64_t steps) {
  optim::Schedule s{o.lr, o.warmup, std::max<int64_t>(steps, 1), "linear", 0.f};
  s.validate();
  return s;
}

// What the loop reports: a progress bar with the smoothed loss (EMA 0.95) and tokens/s, a point of the
// learning curve (valid loss) every o.eval_every steps, whose evaluation time is not training time,
// and at the end the final valid loss.
class E2ETrainLog {
 public:
  E2ETrainLog(int64_t steps, const E2ETrainOptions& o, const data::E2EDataset& valid)
      : o_(o), valid_(valid), bar_(steps) {
    r_.steps = steps;
  }

  // After step `step` (from 0) on batch b, whose loss was l.
  void update(int64_t step, const data::E2EBatch& b, float l, nn::GPT& model) {
    loss_avg_ = step == 0 ? l : 0.95 * loss_avg_ + 0.05 * l;
    tokens_ += static_cast<double>(b.B * b.T);
    r_.examples += b.B;
    bar_.update(step + 1, loss_avg_, tokens_ / (timer_.seconds() - eval_s_));
    if (o_.eval_every > 0 && (step + 1) % o_.eval_every == 0 && step + 1 < r_.steps) {
      Timer et;
      r_.curve.push_back({step + 1, r_.examples, loss_avg_, valid_loss(model)});
      std::fprintf(stderr, "\nstep %ld: %ld examples, valid loss %.4f\n", static_cast<long>(step + 1),
                   static_cast<long>(r_.examples), r_.curve.back().valid_loss);
      eval_s_ += et.seconds();
    }
  }

  E2ETrainResult finish(nn::GPT& model) {
    if (r_.steps > 0) bar_.finish();
    r_.seconds = timer_.seconds() - eval_s_;
    r_.tokens_per_s = r_.steps > 0 ? tokens_ / r_.seconds : 0.0;
    r_.final_loss = static_cast<float>(loss_avg_);
    r_.valid_loss = valid_loss(model);
    r_.curve.push_back({r_.steps, r_.examples, loss_avg_, r_.valid_loss});
    return r_;
  }

 private:
  double valid_loss(nn::GPT& model) const { return e2e_eval_loss(model, valid_, o_.batch_size, o_.eval_batches); }

  const E2ETrainOptions& o_;
  const data::E2EDataset& valid_;
  ProgressBar bar_;
  Timer timer_;
  E2ETrainResult r_;
  double loss_avg_ = NAN, tokens_ = 0.0, eval_s_ = 0.0;
};

}  // namespace lowrank::examples
