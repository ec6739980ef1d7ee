// finetune_glue: adapt a pretrained causal GPT to a GLUE task (SST-2, MRPC, RTE) with LoRA or one of
// the paper's baselines, over several seeds, and report dev accuracy (and F1 for MRPC) as mean ± std:
// the small-scale analog of Hu et al. (2021), Table 2 (RoBERTa/DeBERTa on GLUE, median of 5 seeds).
// The causal GPT becomes a classifier (nn::classifier_from_gpt); the head trains for every method.
// Prefix methods are not offered: they cannot run on padded batches, and Table 2 has none.
//   ./build/finetune_glue --init out/base-wiki.safetensors --task sst2 --method lora
//   ./build/finetune_glue --init out/base-wiki.safetensors --task sst2 --method ft --lr 5e-4
//   ./build/finetune_glue --init out/base-wiki.safetensors --task mrpc --seeds 1 --json out/glue/mrpc.json
// Pooling: the classifier reads the mean of the last hidden states over the real tokens by default;
// --pooling last reads the last real token as GPT-2 does. On our 11.5M bases (pretrained on 2-3 MB
// of text) mean pooling was clearly better: SST-2 dev, LoRA q,v r=8, 300 steps, seed 1: 0.60 vs 0.53
// (lr 1e-3) and 0.59 vs 0.52 (lr 3e-3); FT lr 1e-4: 0.62 vs 0.58.
// Measured (out/base-wiki.safetensors = mini, 4 layers, C=192, WikiText-2 valid+test + TinyShakespeare;
// defaults: SST-2, 300 steps x 16, max_len 64, seeds 1,2,3; 2-core machine shared with other jobs,
// --threads 1): LoRA 0.583 ± 0.015 dev accuracy, 17 s training per seed, 58 s for the whole run;
// FT 0.688 ± 0.019, 46 s per seed, 2m25s in all (FT updates the embeddings; LoRA keeps them frozen,
// and a base that has seen 0.5M words of Wikipedia knows few of SST-2's movie-review words).
// With other jobs on the cores use --threads 1: two OpenMP threads competing for busy cores ran 9x slower.
#include <filesystem>
#include <iostream>

#include "examples/common/glue_train.h"
#include "examples/common/results.h"
#include "tensor/parallel.h"

using namespace lowrank;
namespace ex = lowrank::examples;

namespace {

const std::string kSrc = LOWRANK_SOURCE_DIR;
const std::string kGlue = LOWRANK_GLUE_DIR;

cxxopts::Options make_options() {
  cxxopts::Options o("finetune_glue", "Fine-tune a GPT on a GLUE task with LoRA or a baseline, several seeds");
  // clang-format off
  o.add_options()
    ("task", "sst2|mrpc|rte", cxxopts::value<std::string>()->default_value("sst2"))
    ("init", "base checkpoint from train_gpt, GPT-2 BPE (required)", cxxopts::value<std::string>())
    ("method", "lora|ft|ft-top2|bitfit|adapter-h|adapter-l", cxxopts::value<std::string>()->default_value("lora"))
    ("rank", "LoRA rank r", cxxopts::value<int64_t>()->default_value("8"))
    ("alpha", "LoRA alpha (scale alpha/r)", cxxopts::value<float>()->default_value("16"))
    ("targets", "LoRA targets: q,k,v,o,mlp,wte (wte: LoRA on the token embedding and tied head)", cxxopts::value<std::string>()->default_value("q,v"))
    ("use-rslora", "rsLoRA: scale alpha/sqrt(r) instead of alpha/r (Kalajdzievski, 2023)")
    ("init-lora-weights", "gaussian | pissa | olora: A, B from W0's top singular vectors or QR, residual frozen (Meng et al., 2024; Buyukakyuz, 2024)", cxxopts::value<std::string>()->default_value("gaussian"))
    ("use-dora", "DoRA: a trainable magnitude per output feature over LoRA's direction (Liu et al., 2024)")
    ("loraplus-lr-ratio", "LoRA+: lora_B learns at this times --lr (Hayou et al., 2024; 0: off)", cxxopts::value<float>()->default_value("0"))
    ("pooling", "classifier input: mean (of the real tokens) | last (token, as GPT-2)",
     cxxopts::value<std::string>()->default_value("mean"))
    ("dropout", "model and LoRA dropout", cxxopts::value<float>()->default_value("0.1"))
    ("adapter-dim", "adapter bottleneck", cxxopts::value<int64_t>()->default_value("8"))
    ("seeds", "comma-separated seeds, one run each", cxxopts::value<std::string>()->default_value("1,2,3"))
    ("steps", "optimizer steps per seed", cxxopts::value<int64_t>()->default_value("300"))
    ("batch-size", "examples per step", cxxopts::value<int64_t>()->default_value("16"))
    ("lr", "peak learning rate (0: 5e-4 for ft/ft-top2, else 1e-3)", cxxopts::value<float>()->default_value("0"))
    ("head-lr", "peak learning rate of the classification head (0: --lr)", cxxopts::value<float>()->default_value("0"))
    ("train-wte", "diagnosis: the token embedding trains too, at --lr (not parameter-efficient)")
    ("eval-every", "steps between learning-curve points (dev loss; 0: only at the end)",
     cxxopts::value<int64_t>()->default_value("0"))
    ("warmup", "warmup steps", cxxopts::value<int64_t>()->default_value("20"))
    ("weight-decay", "AdamW decay", cxxopts::value<float>()->default_value("0.01"))
    ("clip", "max gradient norm (0: off)", cxxopts::value<float>()->default_value("1.0"))
    ("max-len", "max tokens per example (0: 64 for sst2, 128 for the pair tasks)",
     cxxopts::value<int64_t>()->default_value("0"))
    ("train-examples", "train on a fixed subset of this many (0: all)", cxxopts::value<int64_t>()->default_value("0"))
    ("eval-batch", "evaluation batch size", cxxopts::value<int64_t>()->default_value("64"))
    ("save-adapter", "write the LoRA adapter (+ .head) here; -seed<k> added with several seeds",
     cxxopts::value<std::string>()->default_value(""))
    ("device", "cpu or cuda (a GPU build)", cxxopts::value<std::string>()->default_value("cpu"))
    ("threads", "CPU threads (0: all)", cxxopts::value<int>()->default_value("0"))
    ("json", "write the results to this JSON file", cxxopts::value<std::string>()->default_value(""))
    ("results", "add one row per seed to this results file (docs/results/glue.json: the NLU table)",
     cxxopts::value<std::string>()->default_value(""))
    ("h,help", "show help");
  // clang-format on
  return o;
}

ex::GlueRunConfig run_config(const cxxopts::ParseResult& a) {
  ex::GlueRunConfig c;
  c.device = ex::device_option(a);
  c.init = a["init"].as<std::string>();
  c.pooling = a["pooling"].as<std::string>();
  c.method.method = a["method"].as<std::string>();
  c.method.lora.r = a["rank"].as<int64_t>();
  c.method.lora.alpha = a["alpha"].as<float>();
  c.method.lora.dropout = a["dropout"].as<float>();
  c.method.lora.targets = ex::split_list(a["targets"].as<std::string>());
  c.method.lora.use_rslora = a["use-rslora"].as<bool>();
  c.method.lora.init_lora_weights = a["init-lora-weights"].as<std::string>();
  c.method.lora.use_dora = a["use-dora"].as<bool>();
  c.loraplus_lr_ratio = a["loraplus-lr-ratio"].as<float>();
  const bool variant = c.method.lora.use_rslora || c.method.lora.use_dora ||
                       c.method.lora.init_lora_weights != "gaussian" || c.loraplus_lr_ratio != 0.f;
  LR_CHECK(!variant || c.method.method == "lora", "--use-rslora, --init-lora-weights, --use-dora and ",
           "--loraplus-lr-ratio need --method lora, got --method ", c.method.method);
  c.method.lora.validate();
  c.method.adapter_dim = a["adapter-dim"].as<int64_t>();
  c.steps = a["steps"].as<int64_t>();
  c.batch_size = a["batch-size"].as<int64_t>();
  c.warmup = a["warmup"].as<int64_t>();
  c.eval_batch = a["eval-batch"].as<int64_t>();
  c.eval_every = a["eval-every"].as<int64_t>();
  const bool full = c.method.method == "ft" || c.method.method == "ft-top2";
  c.lr = a["lr"].as<float>() > 0.f ? a["lr"].as<float>() : (full ? 5e-4f : 1e-3f);
  c.head_lr = a["head-lr"].as<float>();
  c.train_wte = a.count("train-wte") > 0;
  c.weight_decay = a["weight-decay"].as<float>();
  c.clip = a["clip"].as<float>();
  c.dropout = a["dropout"].as<float>();
  LR_CHECK(c.steps >= 1 && c.batch_size >= 1 && c.eval_batch >= 1, "--steps, --batch-size, --eval-batch must be >= 1");
  return c;
}

std::string adapter_path(const std::string& path, uint64_t seed, size_t n_seeds) {
  if (path.empty() || n_seeds == 1) return path;
  const size_t dot = path.rfind(".safetensors");
  const std::string tag = "-seed" + std::to_string(seed);
  return dot == std::string::npos ? path + tag : path.substr(0, dot) + tag + path.substr(dot);
}

nlohmann::json run_json(uint64_t seed, const ex::GlueRunResult& r) {
  return {{"seed", seed},
          {"accuracy", r.dev.accuracy},
          {"f1", r.dev.f1},
          {"dev_loss", r.dev_loss},
          {"curve", ex::curve_json(r.curve)},
          {"final_train_loss", r.final_loss},
          {"train_seconds", r.train_seconds},
          {"train_tokens_per_s", r.tokens_per_s},
          {"eval_seconds", r.eval_seconds}};
}

// The run's identity in a results file: task, method, its hyper-parameters, base, budget, seed.
// subset: --train-examples (0: the whole train split).
std::string run_key(const std::string& task, const ex::GlueRunConfig& c, int64_t subset, uint64_t seed) {
  std::string k = task + " " + c.method.method;
  if (c.method.method == "lora") {
    std::string t;
    for (const std::string& x : c.method.lora.targets) t += (t.empty() ? "" : ",") + x;
    k += " r=" + std::to_string(c.method.lora.r) + " alpha=" + ex::fixed(c.method.lora.alpha, 0) + " targets=" + t;
    // the variants are named only when set, so that earlier rows keep their keys
    if (c.method.lora.use_rslora) k += " rslora";
    if (c.method.lora.init_lora_weights != "gaussian") k += " " + c.method.lora.init_lora_weights;
    if (c.method.lora.use_dora) k += " dora";
    if (c.loraplus_lr_ratio != 0.f && c.loraplus_lr_ratio != 1.f) k += " loraplus=" + ex::fixed(c.loraplus_lr_ratio, 0);
  }
  if (c.method.method == "adapter-h" || c.method.method == "adapter-l")
    k += " dim=" + std::to_string(c.method.adapter_dim);
  if (c.pooling != "mean") k += " pooling=" + c.pooling;
  if (c.train_wte) k += " +wte";  // named only where it differs from the default
  if (c.dropout != 0.1f) k += " dropout=" + ex::fixed(c.dropout, 2);
  char lr[32];
  std::snprintf(lr, sizeof lr, "%g", static_cast<double>(c.lr));
  const std::filesystem::path init = std::filesystem::path(c.init).lexically_normal();
  if (c.head_lr > 0.f) {  // named only when set, so that earlier rows keep their keys
    char hl[32];
    std::snprintf(hl, sizeof hl, "%g", static_cast<double>(c.head_lr));
    k += std::string(" head_lr=") + hl;
  }
  return k + " lr=" + lr + " base=" + init.stem().string() + " B=" + std::to_string(c.batch_size) +
         " steps=" + std::to_string(c.steps) + (subset > 0 ? " train=" + std::to_string(subset) : "") +
         " seed=" + std::to_string(seed);
}

// One row per seed for the NLU results file (examples/common/results.h).
void record_runs(const std::string& path, const std::string& task, const ex::GlueRunConfig& c, const ex::GlueData& d,
                 int64_t subset, const std::vector<uint64_t>& seeds, const std::vector<ex::GlueRunResult>& runs) {
  for (size_t i = 0; i < runs.size(); ++i) {
    const ex::GlueRunResult& r = runs[i];
    nlohmann::json row = run_json(seeds[i], r);
    row.update({{"key", run_key(task, c, subset, seeds[i])},
                {"task", task},
                {"method", c.method.method},
                {"init", c.init},
                {"rank", c.method.lora.r},
                {"alpha", c.method.lora.alpha},
                {"lr", c.lr},
                {"head_lr", c.head_lr > 0.f ? c.head_lr : c.lr},
                {"batch_size", c.batch_size},
                {"steps", c.steps},
                {"pooling", c.pooling},
                {"dropout", c.dropout},
                {"epochs", static_cast<double>(c.steps * c.batch_size) / static_cast<double>(d.train->size())},
                {"trainable_params", r.trainable},
                {"head_params", r.head},
                {"total_params", r.total},
                {"report_f1", d.task.report_f1},
                {"dev_examples", d.dev->size()},
                {"threads", tensor::num_threads()},
                {"device", c.device == tensor::Device::CPU ? "cpu" : "cuda"}});
    ex::record_run(path, row);
  }
}

// One seed: the classifier from the base with the method applied, trained for --steps, scored on dev.
// Randomness: the model and LoRA's A from seed, the batch order from seed, dropout from seed + 1.
// Under mpirun each rank trains on its slice of every batch (one label per example: its loss weighs
// B_r / B) and the gradients are summed (docs/data_parallel.md); rank 0 alone saves the adapter.
ex::GlueRunResult run_seed(const ex::GlueData& d, const ex::GlueRunConfig& c, uint64_t seed,
                           const std::string& save_adapter) {
  Rng rng(seed);
  std::unique_ptr<nn::Classifier> clf = ex::glue_model(c, d, rng);
  ex::GlueOptimizer opt(*clf, c);  // AdamW over the method's tensors, another over the head
  const optim::Schedule sched = ex::glue_schedule(c);
  const int rank = optim::dist::rank();
  const bool parallel = optim::dist::size() > 1;
  ex::check_batch_split(c.batch_size);
  ex::broadcast_state(clf->named_parameters(), nullptr);  // the moments start at zero on every rank
  ex::EpochBatches<data::GlueDataset> batches(*d.train, c.batch_size, seed, parallel ? ex::rank_slice : nullptr);
  Rng drop_rng(seed + 1), rank_rng;
  ex::GlueTrainLog log(c, *d.dev);
  for (int64_t step = 0; step < c.steps; ++step) {
    if (parallel && rank > 0) rank_rng = Rng(ex::rank_dropout_seed(seed, rank, step));
    data::GlueBatch b = batches.next();
    Tensor logits = clf->forward(b.ids, b.B, b.T, b.lengths, nn::Context{true, rank > 0 ? &rank_rng : &drop_rng});
    Tensor loss = autograd::cross_entropy(logits, b.labels);  // (B, n_classes) -> mean over the rank's B
    std::vector<double> global = {loss.item() * static_cast<double>(b.B), static_cast<double>(b.B),
                                  static_cast<double>(b.tokens)};
    optim::dist::allreduce_sum(global);
    const float l = parallel ? static_cast<float>(global[0] / global[1]) : loss.item();
    LR_CHECK(std::isfinite(l), "loss is ", l, " at step ", step + 1, " (lower --lr)");
    opt.zero_grad();
    autograd::backward(parallel ? autograd::scale(loss, static_cast<float>(b.B / global[1])) : loss);
    ex::sum_gradients(clf->named_parameters());
    if (c.clip > 0.f) optim::clip_grad_norm(clf->named_parameters(), c.clip);
    opt.step(sched.lr_at(step));
    b.B = static_cast<int64_t>(global[1]), b.tokens = static_cast<int64_t>(global[2]);  // the whole batch's
    log.update(step, b, l, *clf);
  }
  return ex::glue_finish(*clf, d, c, log.finish(), optim::dist::is_root() ? save_adapter : "");
}

// Per-seed rows, then mean ± std of each score across seeds.
void print_results(const data::GlueTask& task, const std::vector<uint64_t>& seeds,
                   const std::vector<ex::GlueRunResult>& runs) {
  std::vector<std::string> header = {"seed", "dev acc"};
  if (task.report_f1) header.push_back("dev F1");
  for (const char* h : {"train loss", "train s", "tok/s"}) header.push_back(h);
  std::vector<std::vector<std::string>> rows;
  std::vector<double> acc, f1, secs;
  for (size_t i = 0; i < runs.size(); ++i) {
    const ex::GlueRunResult& r = runs[i];
    std::vector<std::string> row = {std::to_string(seeds[i]), ex::fixed(r.dev.accuracy)};
    if (task.report_f1) row.push_back(ex::fixed(r.dev.f1));
    for (std::string s : {ex::fixed(r.final_loss), ex::fixed(r.train_seconds, 1), ex::fixed(r.tokens_per_s, 0)})
      row.push_back(s);
    rows.push_back(row);
    acc.push_back(r.dev.accuracy);
    f1.push_back(r.dev.f1);
    secs.push_back(r.train_seconds);
  }
  auto pm = [](const std::vector<double>& v) {
    auto [m, s] = ex::mean_std(v);
    return ex::fixed(m) + " ± " + ex::fixed(s);
  };
  std::vector<std::string> mean = {"mean ± std", pm(acc)};
  if (task.report_f1) mean.push_back(pm(f1));
  for (std::string s : {std::string(""), ex::fixed(ex::mean_std(secs).first, 1), std::string("")}) mean.push_back(s);
  rows.push_back(mean);
  ex::print_table(header, rows);
}

void write_results(const std::string& path, const std::string& task, const ex::GlueRunConfig& cfg,
                   const ex::GlueData& d, const std::vector<ex::GlueRunResult>& runs, const nlohmann::json& per_seed) {
  std::vector<double> acc, f1;
  for (const auto& r : runs) {
    acc.push_back(r.dev.accuracy);
    f1.push_back(r.dev.f1);
  }
  ex::write_json(path, {{"task", task},
                        {"init", cfg.init},
                        {"method", cfg.method.method},
                        {"pooling", cfg.pooling},
                        {"rank", cfg.method.lora.r},
                        {"alpha", cfg.method.lora.alpha},
                        {"targets", cfg.method.lora.targets},
                        {"steps", cfg.steps},
                        {"batch_size", cfg.batch_size},
                        {"lr", cfg.lr},
                        {"max_len", d.train->max_len()},
                        {"train_examples", d.train->size()},
                        {"dev_examples", d.dev->size()},
                        {"trainable_params", runs[0].trainable},
                        {"head_params", runs[0].head},
                        {"total_params", runs[0].total},
                        {"accuracy_mean", ex::mean_std(acc).first},
                        {"accuracy_std", ex::mean_std(acc).second},
                        {"f1_mean", ex::mean_std(f1).first},
                        {"f1_std", ex::mean_std(f1).second},
                        {"runs", per_seed},
                        {"threads", tensor::num_threads()}});
}

int finetune_main(int argc, char** argv) {
  cxxopts::Options options = make_options();
  auto a = ex::parse_args(options, argc, argv);
  LR_CHECK(a.count("init"), "--init is required: a base checkpoint from train_gpt (e.g. out/base-wiki.safetensors)");
  tensor::set_num_threads(a["threads"].as<int>());
  const ex::GlueRunConfig cfg = run_config(a);
  const std::vector<uint64_t> seeds = ex::parse_seeds(a["seeds"].as<std::string>());
  data::Gpt2Bpe tok = data::Gpt2Bpe::from_dir(kSrc + "/data/assets/gpt2-bpe");
  const std::string task = a["task"].as<std::string>();
  const int64_t max_len =
      a["max-len"].as<int64_t>() > 0 ? a["max-len"].as<int64_t>() : (data::glue_task(task).pair ? 128 : 64);
  const ex::GlueData d = ex::load_glue_data(kGlue, task, tok, max_len, a["train-examples"].as<int64_t>());
  std::cout << "GLUE " << task << ": train " << d.train->size() << " (" << d.train->num_truncated() << " truncated to "
            << d.train->max_len() << " tokens), dev " << d.dev->size() << " (" << d.dev->num_truncated()
            << " truncated); method " << cfg.method.method << ", lr " << cfg.lr << ", " << cfg.steps << " steps x "
            << cfg.batch_size << "\n";
  std::vector<ex::GlueRunResult> runs;
  nlohmann::json per_seed = nlohmann::json::array();
  for (uint64_t seed : seeds) {
    runs.push_back(run_seed(d, cfg, seed, adapter_path(a["save-adapter"].as<std::string>(), seed, seeds.size())));
    const ex::GlueRunResult& r = runs.back();
    std::cout << "seed " << seed << ": dev accuracy " << ex::fixed(r.dev.accuracy)
              << (d.task.report_f1 ? ", F1 " + ex::fixed(r.dev.f1) : "") << " (" << ex::fixed(r.train_seconds, 1)
              << " s)\n";
    per_seed.push_back(run_json(seed, r));
  }
  std::cout << "trainable: " << runs[0].trainable << " (method) + " << runs[0].head << " (head) of " << runs[0].total
            << " parameters\n";
  print_results(d.task, seeds, runs);
  if (!optim::dist::is_root()) return 0;  // under mpirun rank 0 alone writes
  if (!a["json"].as<std::string>().empty()) write_results(a["json"].as<std::string>(), task, cfg, d, runs, per_seed);
  if (!a["results"].as<std::string>().empty())
    record_runs(a["results"].as<std::string>(), task, cfg, d, a["train-examples"].as<int64_t>(), seeds, runs);
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return ex::run_main(argc, argv, finetune_main); }
