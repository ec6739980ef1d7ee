#pragma once
// The pieces of a GLUE run, shared by finetune_glue (the paper's Table 2 analog) and ablation (Tables
// 5 and 6), each of which runs the training loop in its own code: a causal GPT from train_gpt becomes
// a classifier (nn::classifier_from_gpt, mean or last-token pooling), the method (LoRA or a baseline) is applied to the encoder and the
// freshly initialised classification head always trains, as in the paper's GLUE experiments
// (Hu et al., 2021, Section 5.2), where every method trains the task head beside its own parameters.
// AdamW (GlueOptimizer), linear warmup then linear decay (glue_schedule), batches from EpochBatches.
// Header-only like cli.h, so each example stays one .cpp that CMake globs up.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "data/bpe.h"
#include "data/glue.h"
#include "examples/common/batches.h"
#include "examples/common/cli.h"
#include "examples/common/results.h"
#include "lora/methods.h"
#include "nn/classifier.h"
#include "optim/adamw.h"
#include "optim/schedule.h"
#include "tensor/safetensors.h"

namespace lowrank::examples {

struct GlueRunConfig {
  std::string init;              // base checkpoint (train_gpt, GPT-2 BPE vocabulary)
  std::string pooling = "mean";  // nn::pooling_by_name: mean, or last (GPT-2's choice)
  lora::MethodConfig method;
  int64_t steps = 300, batch_size = 16, warmup = 30, eval_batch = 64;
  int64_t eval_every = 0;  // steps between learning-curve points (dev loss); 0: only the end
  float lr = 1e-3f, weight_decay = 0.01f, clip = 1.f, dropout = 0.1f;  // dropout: model (and LoRA's own)
  float head_lr = 0.f;                          // peak learning rate of the classification head; 0: lr
  bool train_wte = false;                       // a diagnosis, not a method: the token embedding trains too (9.6M)
  float loraplus_lr_ratio = 0.f;                // LoRA+: every lora_B learns at this times lr (0 or 1: off)
  bool progress = true;                         // a progress bar on stderr during training
  tensor::Device device = tensor::Device::CPU;  // where the model trains (--device)
};

struct GlueData {
  data::GlueTask task;
  std::unique_ptr<data::GlueDataset> train, dev;
};

struct GlueRunResult {
  int64_t trainable = 0;  // the method's parameters in the encoder (the paper's "# Trainable Parameters")
  int64_t head = 0;       // the classification head, trained by every method on top
  int64_t total = 0, steps = 0;
  double final_loss = NAN, train_seconds = 0, tokens_per_s = 0, eval_seconds = 0;
  data::ClassificationScores dev;
  double dev_loss = NAN;          // mean cross-entropy on the dev split
  std::vector<CurvePoint> curve;  // dev loss every eval_every steps, and at the end
};

// The task's train split (a fixed subset of train_examples when > 0, drawn with seed 0 so every run
// and seed sees the same examples) and its dev split, encoded once for every run.
inline GlueData load_glue_data(const std::string& glue_dir, const std::string& task, const data::Tokenizer& tok,
                               int64_t max_len, int64_t train_examples) {
  GlueData d{data::glue_task(task), nullptr, nullptr};
  auto train = data::glue_subset(data::load_glue(task, glue_dir + "/" + task + "/train.tsv"), train_examples, 0);
  d.train = std::make_unique<data::GlueDataset>(train, tok, max_len);
  d.dev = std::make_unique<data::GlueDataset>(data::load_glue(task, glue_dir + "/" + task + "/dev.tsv"), tok, max_len);
  return d;
}

// Classifier from the checkpoint, the method applied to the encoder, the head trainable.
inline std::unique_ptr<nn::Classifier> glue_model(const GlueRunConfig& c, const GlueData& d, Rng& rng) {
  const int64_t n_classes = d.task.n_classes;
  const std::string& m = c.method.method;
  LR_CHECK(m != "prefix-embed" && m != "prefix-layer", "method ", m,
           " cannot run on padded GLUE batches (the paper reports no prefix baseline on GLUE either)");
  std::unique_ptr<nn::Classifier> clf =
      nn::classifier_from_gpt(c.init, n_classes, rng, c.dropout, nn::pooling_by_name(c.pooling), c.device);
  LR_CHECK(clf->encoder.config.vocab_size == 50257, c.init, ": vocabulary ", clf->encoder.config.vocab_size,
           " is not GPT-2 BPE's 50257 (pretrain with --tokenizer bpe)");
  lora::apply_method(clf->encoder, c.method, rng);
  clf->dense->set_requires_grad(true);
  clf->out_proj->set_requires_grad(true);
  if (c.train_wte) clf->encoder.wte.set_requires_grad(true);
  LR_CHECK(d.train->max_len() <= clf->encoder.config.n_positions, "--max-len ", d.train->max_len(),
           " exceeds the base's n_positions ", clf->encoder.config.n_positions);
  return clf;
}

// The classification head's tensors under their saved names (classifier.dense.*, classifier.out_proj.*).
inline std::vector<nn::NamedTensor> head_tensors(nn::Classifier& clf) {
  std::vector<nn::NamedTensor> v;
  clf.dense->collect("classifier.dense.", v);
  clf.out_proj->collect("classifier.out_proj.", v);
  return v;
}

// Two AdamWs over disjoint tensors: the method's in the encoder, and the classification head, so that
// the freshly initialised head can train at its own rate (GlueRunConfig::head_lr). With head_lr = lr
// the updates are exactly those of one AdamW over both (Adam's update is per tensor).
struct GlueOptimizer {
  optim::AdamW encoder, head;
  float head_scale = 1.f;  // head lr / lr, applied at every step of the schedule

  GlueOptimizer(nn::Classifier& clf, const GlueRunConfig& c)
      : encoder(clf.encoder.named_parameters(), config(c, &clf)),
        head(head_tensors(clf), config(c)),
        head_scale(c.head_lr > 0.f ? c.head_lr / c.lr : 1.f) {}
  void zero_grad() {
    encoder.zero_grad();
    head.zero_grad();
  }
  void step(float lr) {
    encoder.step(lr);
    head.step(lr * head_scale);
  }

 private:
  static optim::AdamWConfig config(const GlueRunConfig& c, nn::Classifier* clf = nullptr) {
    optim::AdamWConfig oc;
    oc.weight_decay = c.weight_decay;
    if (clf && c.method.method == "lora") oc.lr_scale = lora::loraplus_lr_scale(clf->encoder, c.loraplus_lr_ratio);
    return oc;
  }
};

struct GlueEval {
  data::ClassificationScores scores;  // accuracy and F1 (class 1) of the argmax predictions
  double loss = NAN;                  // mean cross-entropy
};

// The classifier on a whole split, without dropout.
inline GlueEval glue_evaluate(nn::Classifier& clf, const data::GlueDataset& ds, int64_t B) {
  autograd::NoGradGuard ng;
  std::vector<int32_t> pred, gold;
  double loss_sum = 0.0;
  for (int64_t i = 0; i < ds.num_eval_batches(B); ++i) {
    data::GlueBatch b = ds.eval_batch(i, B);
    Tensor logits = clf.forward(b.ids, b.B, b.T, b.lengths, {});  // (B, n_classes)
    loss_sum += autograd::cross_entropy(logits, b.labels).item() * static_cast<double>(b.B);
    const int64_t K = logits.size(1);
    std::vector<float> v = logits.to_vector();
    for (int64_t r = 0; r < b.B; ++r) {
      const float* row = v.data() + r * K;
      pred.push_back(static_cast<int32_t>(std::max_element(row, row + K) - row));
      gold.push_back(b.labels[static_cast<size_t>(r)]);
    }
  }
  return {data::classification_scores(pred, gold), loss_sum / static_cast<double>(pred.size())};
}

// The paper's GLUE schedule: linear warmup, then linear decay to 0 at the last step.
inline optim::Schedule glue_schedule(const GlueRunConfig& c) {
  optim::Schedule s{c.lr, c.warmup, c.steps, "linear", 0.f};
  s.validate();
  return s;
}

// What the loop reports: a progress bar (when c.progress) with the smoothed loss (EMA 0.95) and
// tokens/s, a learning-curve point (dev loss) every c.eval_every steps whose evaluation time is not
// training time, and at the end the training time and throughput.
class GlueTrainLog {
 public:
  GlueTrainLog(const GlueRunConfig& c, const data::GlueDataset& dev) : c_(c), dev_(dev), bar_(c.steps) {
    r_.steps = c.steps;
  }

  void update(int64_t step, const data::GlueBatch& b, float l, nn::Classifier& clf) {
    loss_avg_ = step == 0 ? l : 0.95 * loss_avg_ + 0.05 * l;
    tokens_ += static_cast<double>(b.tokens);
    examples_ += b.B;
    if (c_.progress) bar_.update(step + 1, loss_avg_, tokens_ / (timer_.seconds() - eval_s_));
    if (c_.eval_every > 0 && (step + 1) % c_.eval_every == 0 && step + 1 < c_.steps) {
      Timer et;
      const GlueEval e = glue_evaluate(clf, dev_, c_.eval_batch);
      r_.curve.push_back({step + 1, examples_, loss_avg_, e.loss});
      if (c_.progress)
        std::fprintf(stderr, "\nstep %ld: dev loss %.4f, accuracy %.4f\n", static_cast<long>(step + 1), e.loss,
                     e.scores.accuracy);
      eval_s_ += et.seconds();
    }
  }
  GlueRunResult finish() {
    if (c_.progress) bar_.finish();
    r_.train_seconds = timer_.seconds() - eval_s_;
    r_.tokens_per_s = tokens_ / r_.train_seconds;
    r_.final_loss = loss_avg_;
    r_.curve.push_back({c_.steps, examples_, loss_avg_, NAN});  // its dev loss: glue_finish
    return r_;
  }

 private:
  const GlueRunConfig& c_;
  const data::GlueDataset& dev_;
  ProgressBar bar_;
  Timer timer_;
  GlueRunResult r_;
  int64_t examples_ = 0;
  double tokens_ = 0.0, loss_avg_ = 0.0, eval_s_ = 0.0;
};

// The LoRA adapter (lora::save_adapter: encoder tensors, config, base hash) at path, and the trained
// head beside it at <path without .safetensors>.head.safetensors: both are needed to classify.
inline void save_glue_adapter(const std::string& path, nn::Classifier& clf, const lora::LoRAConfig& cfg) {
  lora::save_adapter(path, clf.encoder, cfg);
  std::map<std::string, Tensor> head;
  for (const nn::NamedTensor& t : head_tensors(clf)) head[t.name] = t.tensor;
  const std::string ext = ".safetensors";
  const bool has_ext = path.size() > ext.size() && path.compare(path.size() - ext.size(), ext.size(), ext) == 0;
  tensor::save_safetensors((has_ext ? path.substr(0, path.size() - ext.size()) : path) + ".head" + ext, head,
                           {{"format", "lowrank-classifier-head"}});
}

// After training: the parameter counts, the dev scores, and the LoRA adapter when save_adapter is set.
inline GlueRunResult glue_finish(nn::Classifier& clf, const GlueData& d, const GlueRunConfig& c, GlueRunResult r,
                                 const std::string& save_adapter = "") {
  r.trainable = clf.encoder.num_trainable_parameters();
  r.head = clf.num_trainable_parameters() - r.trainable;
  r.total = clf.num_parameters();
  Timer timer;
  const GlueEval e = glue_evaluate(clf, *d.dev, c.eval_batch);
  r.eval_seconds = timer.seconds();
  r.dev = e.scores;
  r.dev_loss = e.loss;
  if (!r.curve.empty()) r.curve.back().valid_loss = e.loss;
  if (!save_adapter.empty()) {
    LR_CHECK(c.method.method == "lora", "--save-adapter needs --method lora");
    save_glue_adapter(save_adapter, clf, c.method.lora);
  }
  return r;
}

// "1,2,3" -> {1, 2, 3}; throws naming the bad item (the --seeds option of both examples).
inline std::vector<uint64_t> parse_seeds(const std::string& s) {
  std::vector<uint64_t> seeds;
  for (const std::string& item : split_list(s)) {
    size_t used = 0;
    unsigned long long v = 0;
    try {
      v = std::stoull(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    LR_CHECK(used == item.size() && used > 0, "--seeds: '", item, "' is not a non-negative integer");
    seeds.push_back(v);
  }
  LR_CHECK(!seeds.empty(), "--seeds: no seed given");
  return seeds;
}

// Mean and sample standard deviation (n - 1; 0 for a single value), as the paper's "±" over seeds.
inline std::pair<double, double> mean_std(const std::vector<double>& v) {
  double m = 0.0, s = 0.0;
  for (double x : v) m += x / static_cast<double>(v.size());
  for (double x : v) s += (x - m) * (x - m);
  return {m, v.size() > 1 ? std::sqrt(s / static_cast<double>(v.size() - 1)) : 0.0};
}

}  // namespace lowrank::examples
