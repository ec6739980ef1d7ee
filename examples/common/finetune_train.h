#pragma once
// The pieces of LoRA (or baseline) fine-tuning on a completion-masked language-model loss, shared by
// finetune (the user's data), finetune_e2e (E2E NLG, Hu et al., 2021, Section 5.5), ablation and
// subspace: the model (a base with the method applied, its AdamW), the loss, the schedule and the step
// count. The loop itself is examples/common/train_loop.h.
// Randomness: one seed gives the model load and A's init (rng(seed)), the batch order (seed) and the
// dropout masks (seed + 1): a fixed seed reproduces a run exactly.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "autograd/weight_gemm.h"
#include "data/e2e.h"
#include "data/tokenizer.h"
#include "examples/common/batches.h"
#include "examples/common/cli.h"
#include "examples/common/model_load.h"
#include "examples/common/results.h"
#include "lora/lora.h"
#include "lora/methods.h"
#include "nn/checkpoint.h"
#include "optim/adamw.h"
#include "optim/schedule.h"
#include "tensor/gemm_bf16.h"
#include "tensor/precision.h"

namespace lowrank::examples {

struct FinetuneOptions {
  int64_t batch_size = 8;  // examples per micro-batch
  int64_t accum = 1;       // micro-batches per optimizer step (gradient accumulation)
  int64_t steps = 300;     // optimizer steps; <= 0: `epochs` over the train set
  int64_t epochs = 1;
  int64_t warmup = 30;           // linear warmup steps, then `decay` to 0
  std::string decay = "linear";  // linear | cosine | constant (optim::Schedule)
  float lr = 1e-3f;              // peak learning rate
  float weight_decay = 0.01f;    // AdamW
  float label_smoothing = 0.1f;
  float clip = 1.f;           // max gradient norm; 0: off
  int64_t max_len = 128;      // tokens per example, capped by the model's n_positions
  int64_t eval_batches = 50;  // validation batches behind a valid loss (0: the whole split)
  int64_t eval_every = 0;     // steps between points of the learning curve (0: only the final valid loss)
  uint64_t seed = 1;
  float loraplus_lr_ratio = 0.f;                // LoRA+: lora_B's learning rate is this times lr (0 or 1: off)
  tensor::Device device = tensor::Device::CPU;  // where the model trains (--device)
  tensor::Precision precision = tensor::Precision::fp32;  // --precision (tensor/precision.h)
};

// The method options finetune and finetune_e2e share: --method, --rank, --alpha, --dropout, --targets,
// --use-rslora, --init-lora-weights, --use-dora, --adapter-dim, --prefix-len.
inline lora::MethodConfig method_config(const cxxopts::ParseResult& a) {
  lora::MethodConfig m;
  m.method = a["method"].as<std::string>();
  m.lora.r = a["rank"].as<int64_t>();
  m.lora.alpha = a["alpha"].as<float>();
  m.lora.dropout = a["dropout"].as<float>();
  m.lora.targets = split_list(a["targets"].as<std::string>());
  m.lora.use_rslora = a["use-rslora"].as<bool>();
  m.lora.init_lora_weights = a["init-lora-weights"].as<std::string>();
  m.lora.use_dora = a["use-dora"].as<bool>();
  m.adapter_dim = a["adapter-dim"].as<int64_t>();
  m.prefix_len = a["prefix-len"].as<int64_t>();
  return m;
}

// The trainable tensors of the model, by name, in named_parameters order.
inline std::vector<nn::NamedTensor> trainable_tensors(nn::GPT& model) {
  std::vector<nn::NamedTensor> out;
  for (nn::NamedTensor& p : model.named_parameters())
    if (p.tensor.requires_grad()) out.push_back(p);
  return out;
}

// --precision fp32|bf16. bf16 computes with the frozen weights in bf16 and keeps what trains in fp32
// (docs/precision.md), on either device, so it is refused where it would change nothing: full
// fine-tuning (every weight trains, in fp32).
inline tensor::Precision precision_option(const cxxopts::ParseResult& a) {
  const tensor::Precision p = tensor::parse_precision(a["precision"].as<std::string>());
  if (p == tensor::Precision::fp32) return p;
  LR_CHECK(a["method"].as<std::string>() != "ft",
           "--precision bf16 runs the frozen weights in bf16, and --method ft trains every weight (in fp32): "
           "use --precision fp32, or a method that freezes the base (lora)");
  return p;
}

// The options finetune and finetune_e2e share, read from their command lines (each adds its own:
// finetune's warmup share and schedule, finetune_e2e's warmup steps).
inline FinetuneOptions shared_train_options(const cxxopts::ParseResult& a) {
  FinetuneOptions o;
  o.batch_size = a["batch-size"].as<int64_t>();
  o.accum = a["accum"].as<int64_t>();
  o.steps = a["steps"].as<int64_t>();
  o.epochs = a["epochs"].as<int64_t>();
  o.lr = a["lr"].as<float>();
  o.weight_decay = a["weight-decay"].as<float>();
  o.label_smoothing = a["label-smoothing"].as<float>();
  o.clip = a["clip"].as<float>();
  o.max_len = a["max-len"].as<int64_t>();
  o.seed = a["seed"].as<uint64_t>();
  o.eval_every = a["eval-every"].as<int64_t>();
  o.loraplus_lr_ratio = a["loraplus-lr-ratio"].as<float>();
  LR_CHECK(std::isfinite(o.loraplus_lr_ratio) && o.loraplus_lr_ratio >= 0.f, "--loraplus-lr-ratio ",
           o.loraplus_lr_ratio, " must be >= 0 (0 or 1: off)");
  LR_CHECK(o.loraplus_lr_ratio == 0.f || o.loraplus_lr_ratio == 1.f || a["method"].as<std::string>() == "lora",
           "--loraplus-lr-ratio needs --method lora, got --method ", a["method"].as<std::string>());
  o.device = device_option(a);
  o.precision = precision_option(a);
  return o;
}

// A base checkpoint with a method applied, and its optimizer over the trainable tensors.
struct FinetuneModel {
  std::unique_ptr<nn::GPT> model;
  std::unique_ptr<optim::AdamW> opt;
  int64_t total_params = 0, trainable = 0;
};

struct TrainResult {
  float final_loss = NAN;                                  // smoothed (EMA 0.95) training loss at the last step
  double seconds = 0, tokens_per_s = 0, valid_loss = NAN;  // seconds: training only, curve evaluations excluded
  double best_valid_loss = NAN;                            // the lowest valid loss of the curve, at best_step
  int64_t steps = 0, examples = 0, best_step = 0;
  int64_t first_step = 0;         // > 0: resumed there
  std::vector<CurvePoint> curve;  // every eval_every steps, and the end
  std::vector<float> losses;      // every step's training loss (mean over its micro-batches)
  std::vector<Tensor> best;       // the trainable tensors at best_step (empty without validation)
};

struct E2ESplits {
  data::E2EDataset train, valid;
};

// The train and valid splits of loralib's E2E files in `dir`, tokenized once.
inline E2ESplits load_e2e_splits(const std::string& dir, const data::Tokenizer& tok, int64_t max_len) {
  return {data::E2EDataset(data::load_e2e(dir + "/train.txt"), tok, max_len),
          data::E2EDataset(data::load_e2e(dir + "/valid.txt"), tok, max_len)};
}

// init: a lowrank checkpoint or a Hugging Face GPT-2 directory (nn::load_model); adapter: "" or as above.
inline FinetuneModel prepare_model(const std::string& init, const data::Tokenizer& tok, const lora::MethodConfig& mc,
                                   const FinetuneOptions& o, const std::string& adapter = "") {
  // The precision is the process's (tensor/precision.h): training, validation and decoding all run at it.
  tensor::set_precision(o.precision);
  if (o.precision == tensor::Precision::bf16)
    std::cout << "precision bf16: frozen weights' GEMMs in bf16 (attention's products too on the CPU), trainable "
                 "ones fp32 ("
              << autograd::bf16_gemm_info(o.device) << ")\n";
  Rng rng(o.seed);
  FinetuneModel m;
  m.model = nn::load_model(init, rng, o.device);
  LR_CHECK(m.model->config.vocab_size == tok.vocab_size(), init, ": vocabulary ", m.model->config.vocab_size,
           " is not GPT-2 BPE's ", tok.vocab_size(), " (pretrain with --tokenizer bpe)");
  m.total_params = m.model->num_parameters();
  m.trainable = adapter.empty() ? lora::apply_method(*m.model, mc, rng) : load_adapter_into(*m.model, adapter);
  optim::AdamWConfig oc;
  oc.weight_decay = o.weight_decay;
  if (o.loraplus_lr_ratio != 0.f && o.loraplus_lr_ratio != 1.f)
    oc.lr_scale = lora::loraplus_lr_scale(*m.model, o.loraplus_lr_ratio);
  m.opt = std::make_unique<optim::AdamW>(m.model->named_parameters(), oc);
  return m;
}

inline int64_t max_len_for(const FinetuneModel& m, const FinetuneOptions& o) {
  return std::min(o.max_len, m.model->config.n_positions);
}

// what: the data's name ("E2E train", "train.jsonl").
inline void print_setup(const FinetuneModel& m, const std::string& method, const data::SftDataset& train,
                        const std::string& what = "E2E train") {
  std::cout << "method " << method << ": " << m.trainable << " trainable of " << m.total_params
            << " parameters, optimizer state " << m.opt->state_bytes() << " bytes; " << what << " " << train.size()
            << " examples\n";
}

// The rows of b where the loss is (mask > 0), with their targets and weights: the LM head runs only
// there (GPT::head_loss), the same loss as the full (B,T,V) logits under the mask.
struct LossRows {
  std::vector<int32_t> rows, targets;
  std::vector<float> weights;
};
inline LossRows loss_rows(const data::SftBatch& b) {
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
inline Tensor sft_loss(nn::GPT& model, const data::SftBatch& b, float smoothing, const nn::Context& ctx) {
  const LossRows lr = loss_rows(b);
  autograd::CrossEntropyOptions ce;
  ce.label_smoothing = smoothing;
  ce.mask = lr.weights;
  return model.head_loss(model.hidden(b.inputs, b.B, b.T, ctx), lr.rows, lr.targets, ce);
}

// Mean masked loss (no smoothing) over the first n evaluation batches of ds (n <= 0: all of them).
inline double eval_loss(nn::GPT& model, const data::SftDataset& ds, int64_t B, int64_t n) {
  autograd::NoGradGuard ng;
  double sum = 0.0, tokens = 0.0;
  n = n > 0 ? std::min(n, ds.num_eval_batches(B)) : ds.num_eval_batches(B);
  for (int64_t i = 0; i < n; ++i) {
    data::SftBatch b = ds.eval_batch(i, B);
    sum += sft_loss(model, b, 0.f, {}).item() * b.tokens;
    tokens += static_cast<double>(b.tokens);
  }
  return sum / tokens;
}

// The run's optimizer steps: o.steps, or o.epochs over the train set when o.steps is 0 (a step takes
// batch_size x accum examples). --steps 0 --epochs 0 is 0 steps: no training, the loaded model (an
// --adapter) as it is.
inline int64_t train_steps(const FinetuneOptions& o, int64_t train_size) {
  LR_CHECK(o.batch_size >= 1, "--batch-size ", o.batch_size, " must be positive");
  LR_CHECK(o.accum >= 1, "--accum ", o.accum, " must be positive");
  const int64_t steps = o.steps > 0 ? o.steps : o.epochs * (train_size / (o.batch_size * o.accum));
  LR_CHECK(steps > 0 || (o.steps == 0 && o.epochs == 0), "0 steps (--steps ", o.steps, ", --epochs ", o.epochs, ", ",
           train_size, " train examples, --batch-size ", o.batch_size, ")");
  return steps;
}

// Linear warmup, then o.decay to 0 at the last step; the paper's (Table 11) is linear.
inline optim::Schedule make_schedule(const FinetuneOptions& o, int64_t steps) {
  optim::Schedule s{o.lr, o.warmup, std::max<int64_t>(steps, 1), o.decay, 0.f};
  s.validate();
  return s;
}

}  // namespace lowrank::examples
