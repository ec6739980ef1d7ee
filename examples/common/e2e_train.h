#pragma once
// Fine-tuning a pretrained GPT on E2E NLG (Hu et al., 2021, Section 5.5) with LoRA or a baseline:
// load the base, apply the method, train with AdamW on the completion-only masked loss, report the
// validation loss. Shared by finetune_e2e (which then decodes and scores) and subspace (which trains
// the adapters that Section 7 analyses). Each step: batch -> forward -> masked loss -> zero_grad ->
// backward -> clip -> AdamW step, learning rate from linear warmup + linear decay (the paper's).
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
#include "examples/common/cli.h"
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

// One point of the learning curve: validation loss after `examples` training examples.
struct CurvePoint {
  int64_t step = 0, examples = 0;
  double train_loss = NAN, valid_loss = NAN;
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
// there (GPT::head_at), the same loss as the full (B,T,V) logits under the mask.
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

// The masked (and smoothed) cross-entropy of a batch, the head evaluated at the loss rows only.
inline Tensor e2e_loss(nn::GPT& model, const data::E2EBatch& b, float smoothing, const nn::Context& ctx) {
  const LossRows lr = loss_rows(b);
  autograd::CrossEntropyOptions ce;
  ce.label_smoothing = smoothing;
  ce.mask = lr.weights;
  return autograd::cross_entropy(model.head_at(model.hidden(b.inputs, b.B, b.T, ctx), lr.rows), lr.targets, ce);
}

inline float e2e_loss_step(nn::GPT& model, optim::AdamW& opt, const data::E2EBatch& b, float smoothing, float clip,
                           float lr, Rng& drop_rng) {
  Tensor loss = e2e_loss(model, b, smoothing, nn::Context{true, &drop_rng});
  const float l = loss.item();
  LR_CHECK(std::isfinite(l), "loss is ", l, " (lower --lr)");
  opt.zero_grad();
  autograd::backward(loss);
  if (clip > 0.f) optim::clip_grad_norm(model.named_parameters(), clip);
  opt.step(lr);
  return l;
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

// Trains m for o.steps (or o.epochs) with a progress bar on stderr, then measures the valid loss;
// every o.eval_every steps a point of the learning curve (its evaluation time is not training time).
inline E2ETrainResult train_e2e(E2EModel& m, const E2ESplits& data, const E2ETrainOptions& o) {
  const int64_t B = o.batch_size;
  LR_CHECK(B >= 1, "train_e2e: batch size ", B, " must be positive");
  Rng shuffle_rng(o.seed), drop_rng(o.seed + 1);
  const int64_t steps = o.steps > 0 ? o.steps : o.epochs * (data.train.size() / B);
  E2ETrainResult r;
  if (o.steps == 0 && o.epochs == 0) {  // --steps 0 --epochs 0: no training, the loaded model as it is
    r.valid_loss = e2e_eval_loss(*m.model, data.valid, B, o.eval_batches);
    r.curve.push_back({0, 0, NAN, r.valid_loss});
    return r;
  }
  LR_CHECK(steps > 0, "train_e2e: 0 steps (steps ", o.steps, ", epochs ", o.epochs, ", ", data.train.size(),
           " train examples, B=", B, ")");
  optim::Schedule sched{o.lr, o.warmup, steps, "linear", 0.f};  // paper: linear
  sched.validate();
  ProgressBar bar(steps);
  Timer timer;
  double tokens = 0.0, loss_avg = 0.0, eval_s = 0.0;
  std::vector<std::vector<int64_t>> epoch;
  for (int64_t step = 0; step < steps; ++step) {
    if (epoch.empty()) {
      epoch = data.train.epoch_batches(B, shuffle_rng, true);
      std::reverse(epoch.begin(), epoch.end());  // pop_back walks the epoch in its drawn order
    }
    data::E2EBatch b = data.train.batch(epoch.back());
    epoch.pop_back();
    const float l = e2e_loss_step(*m.model, *m.opt, b, o.label_smoothing, o.clip, sched.lr_at(step), drop_rng);
    loss_avg = step == 0 ? l : 0.95 * loss_avg + 0.05 * l;
    tokens += static_cast<double>(b.B * b.T);
    r.examples += b.B;
    bar.update(step + 1, loss_avg, tokens / (timer.seconds() - eval_s));
    if (o.eval_every > 0 && (step + 1) % o.eval_every == 0 && step + 1 < steps) {
      Timer et;
      r.curve.push_back({step + 1, r.examples, loss_avg, e2e_eval_loss(*m.model, data.valid, B, o.eval_batches)});
      std::fprintf(stderr, "\nstep %ld: %ld examples, valid loss %.4f\n", static_cast<long>(step + 1),
                   static_cast<long>(r.examples), r.curve.back().valid_loss);
      eval_s += et.seconds();
    }
  }
  bar.finish();
  r.seconds = timer.seconds() - eval_s;
  r.tokens_per_s = tokens / r.seconds;
  r.final_loss = static_cast<float>(loss_avg);
  r.steps = steps;
  r.valid_loss = e2e_eval_loss(*m.model, data.valid, B, o.eval_batches);
  r.curve.push_back({steps, r.examples, loss_avg, r.valid_loss});
  return r;
}

}  // namespace lowrank::examples
