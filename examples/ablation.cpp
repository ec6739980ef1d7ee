// ablation: which weights to adapt and with which rank, the small-scale analog of Hu et al. (2021),
// Section 7.1-7.2, Tables 5 and 6 (GPT-3 175B on WikiSQL and MultiNLI).
//   Table 5: one parameter budget, spent on Wq / Wk / Wv / Wo (r = 8), (Wq,Wk) / (Wq,Wv) (r = 4) or
//            all four (r = 2): every row trains 2·r·C·|targets| per layer, the same count.
//   Table 6: r in {1, 2, 4, 8, 64} for Wq, (Wq,Wv) and all four.
// Every cell is LoRA on our pretrained causal GPT, mean ± std over seeds, on one of two tasks:
//   --task e2e   E2E NLG with finetune_e2e's recipe (alpha 32, label smoothing 0.1, AdamW), scored on the
//                validation split: BLEU (and the other four metrics) of beam-search outputs for a spread
//                of validation MRs, and the masked validation loss (examples/common/ablation_e2e.h).
//   --task sst2  SST-2 with a trained classification head (examples/common/glue_train.h), dev accuracy.
// alpha is fixed across ranks, so the update is scaled by alpha/r as in the paper (Section 4.1), and A
// is drawn at loralib's r-independent scale (--a-init-std), as the paper's code does.
// The paper's numbers are printed beside ours for the direction of the effects only: different
// model (175B vs 12M), tasks and metric.
//   ./build/ablation --task e2e --init data/assets/gpt-e2e-base5/gpt-e2e-base5.safetensors --seeds 1 --json a.json
//   ./build/ablation --task e2e --init ... --seeds 2 --json b.json     # a second process, the other core
//   ./build/ablation --from-runs a.json,b.json --json both.json        # the tables over both files' runs
//   ./build/ablation --task sst2 --init out/base-wiki.safetensors --a-init-std 0   # the earlier SST-2 tables
// Measured: REPRODUCTION.md, "Tables 5 and 6" (E2E: 500 steps x 8 and 100 validation MRs per cell; SST-2
// on the general-text base: 57 runs of 300 steps x 16 in 22.5 minutes).
#include <functional>
#include <iostream>
#include <map>
#include <set>

#include "data/text.h"
#include "examples/common/ablation_e2e.h"
#include "examples/common/ablation_tables.h"
#include "examples/common/glue_train.h"
#include "examples/common/results.h"
#include "nn/checkpoint.h"
#include "tensor/parallel.h"

using namespace lowrank;
namespace ex = lowrank::examples;
using ex::Config;
using ex::PaperRow;
using nlohmann::json;

namespace {

const std::string kSrc = LOWRANK_SOURCE_DIR;
const std::string kGlue = LOWRANK_GLUE_DIR;
const std::string kE2E = LOWRANK_E2E_DIR;

cxxopts::Options make_options() {
  cxxopts::Options o("ablation", "LoRA target and rank ablation on E2E or SST-2 (the paper's Tables 5 and 6)");
  // clang-format off
  o.add_options()
    ("init", "base checkpoint from train_gpt, GPT-2 BPE (required unless --from-runs)", cxxopts::value<std::string>())
    ("task", "e2e (validation BLEU and loss) | sst2 (dev accuracy)", cxxopts::value<std::string>()->default_value("e2e"))
    ("table", "5 | 6 | both", cxxopts::value<std::string>()->default_value("both"))
    ("seeds", "comma-separated seeds, one run each", cxxopts::value<std::string>()->default_value("1,2,3"))
    ("steps", "optimizer steps per run (default: e2e 500, sst2 300)", cxxopts::value<int64_t>())
    ("quick", "smoke run: 1 seed, 20 steps (e2e, 10 MRs at beam 2) or 60 steps on 2000 examples (sst2)")
    ("batch-size", "examples per step (default: e2e 8, sst2 16)", cxxopts::value<int64_t>())
    ("lr", "peak learning rate (default: e2e 2e-3, the headline LoRA's; sst2 1e-3)", cxxopts::value<float>())
    ("alpha", "LoRA alpha, fixed across ranks (scale alpha/r; default: e2e 32, sst2 16)", cxxopts::value<float>())
    ("a-init-std", "std of A's Gaussian init; -1: 1/sqrt(3 C) for every r (loralib's); 0: 1/r (peft's)",
     cxxopts::value<float>()->default_value("-1"))
    ("mrs", "e2e: validation MRs decoded per cell", cxxopts::value<int64_t>()->default_value("100"))
    ("mr-stride", "e2e: every k-th validation MR (the file is sorted by restaurant)", cxxopts::value<int64_t>()->default_value("5"))
    ("beam", "e2e: beam size (length penalty 0.9, no-repeat-ngram 4, as finetune_e2e)", cxxopts::value<int64_t>()->default_value("10"))
    ("pooling", "sst2: classifier input: mean (of the real tokens) | last (token, as GPT-2)",
     cxxopts::value<std::string>()->default_value("mean"))
    ("dropout", "model and LoRA dropout", cxxopts::value<float>()->default_value("0.1"))
    ("max-len", "max tokens per example (default: e2e 128, sst2 64)", cxxopts::value<int64_t>())
    ("train-examples", "sst2: train on a fixed subset of this many (0: all)", cxxopts::value<int64_t>()->default_value("0"))
    ("from-runs", "no training: the tables over the runs of these earlier --json files (same task and settings)",
     cxxopts::value<std::string>()->default_value(""))
    ("device", "cpu or cuda (a GPU build)", cxxopts::value<std::string>()->default_value("cpu"))
    ("threads", "CPU threads (0: all)", cxxopts::value<int>()->default_value("0"))
    ("markdown", "rewrite this file's <!-- results:ablation_TASK_5 --> and _6 sections with the tables",
     cxxopts::value<std::string>()->default_value(""))
    ("json", "write every run and the tables to this JSON file", cxxopts::value<std::string>()->default_value(""))
    ("h,help", "show help");
  // clang-format on
  return o;
}

// What every cell shares: the task, the budget and the LoRA settings but targets and r.
struct Settings {
  std::string task, init;
  int64_t steps = 0, batch_size = 0, max_len = 0, mrs = 0, mr_stride = 1, beam = 10, train_examples = 0;
  float lr = 0, alpha = 0, a_init_std = 0, dropout = 0.1f;
  std::string pooling;
  tensor::Device device = tensor::Device::CPU;
  // The fields that must agree between files merged by --from-runs.
  json to_json() const {
    return {{"task", task},       {"init", init},   {"steps", steps},           {"batch_size", batch_size},
            {"lr", lr},           {"alpha", alpha}, {"a_init_std", a_init_std}, {"dropout", dropout},
            {"max_len", max_len}, {"mrs", mrs},     {"mr_stride", mr_stride},   {"beam", beam}};
  }
};

// The option's value, or the task's default when it is not given.
template <typename T>
T or_default(const cxxopts::ParseResult& a, const char* opt, T e2e, T sst2, bool is_e2e) {
  return a.count(opt) ? a[opt].as<T>() : (is_e2e ? e2e : sst2);
}

Settings read_settings(const cxxopts::ParseResult& a) {
  Settings s;
  s.task = a["task"].as<std::string>();
  LR_CHECK(s.task == "e2e" || s.task == "sst2", "--task must be e2e or sst2, got '", s.task, "'");
  LR_CHECK(a.count("init"), "--init is required: a base checkpoint from train_gpt (e.g. ",
           "data/assets/gpt-e2e-base5/gpt-e2e-base5.safetensors)");
  const bool e2e = s.task == "e2e", quick = a.count("quick") > 0;
  s.init = a["init"].as<std::string>();
  s.steps = quick ? (e2e ? 20 : 60) : or_default<int64_t>(a, "steps", 500, 300, e2e);
  s.batch_size = or_default<int64_t>(a, "batch-size", 8, 16, e2e);
  s.max_len = or_default<int64_t>(a, "max-len", 128, 64, e2e);
  s.lr = or_default<float>(a, "lr", 2e-3f, 1e-3f, e2e);
  s.alpha = or_default<float>(a, "alpha", 32.f, 16.f, e2e);
  s.a_init_std = a["a-init-std"].as<float>();
  if (s.a_init_std < 0.f)  // loralib: U(±1/sqrt(C)) has variance 1/(3C), independent of r
    s.a_init_std =
        1.f / std::sqrt(3.f * static_cast<float>(nn::read_config(tensor::load_safetensors(s.init), s.init).n_embd));
  s.dropout = a["dropout"].as<float>();
  s.mrs = e2e ? (quick ? 10 : a["mrs"].as<int64_t>()) : 0;
  s.mr_stride = e2e ? a["mr-stride"].as<int64_t>() : 1;
  s.beam = e2e ? (quick ? 2 : a["beam"].as<int64_t>()) : 0;
  s.train_examples = quick && !e2e ? 2000 : a["train-examples"].as<int64_t>();
  s.pooling = a["pooling"].as<std::string>();
  s.device = ex::device_option(a);
  LR_CHECK(s.steps >= 1 && s.batch_size >= 1 && s.max_len >= 1, "--steps, --batch-size and --max-len must be >= 1");
  LR_CHECK(!e2e || (s.mrs >= 1 && s.mr_stride >= 1 && s.beam >= 1), "--mrs, --mr-stride and --beam must be >= 1");
  return s;
}

lora::LoRAConfig lora_config(const Settings& s, const Config& cfg) {
  lora::LoRAConfig l;
  l.r = cfg.r;
  l.alpha = s.alpha;
  l.dropout = s.dropout;
  l.targets = ex::split_list(cfg.targets);
  l.init_std = s.a_init_std;
  return l;
}

// One SST-2 cell: finetune_glue's loop (examples/finetune_glue.cpp) without a progress bar.
json run_sst2_cell(const ex::GlueData& d, const ex::GlueRunConfig& c, uint64_t seed) {
  Rng rng(seed);
  std::unique_ptr<nn::Classifier> clf = ex::glue_model(c, d, rng);
  ex::GlueOptimizer opt(*clf, c);
  const optim::Schedule sched = ex::glue_schedule(c);
  ex::EpochBatches<data::GlueDataset> batches(*d.train, c.batch_size, seed);
  Rng drop_rng(seed + 1);
  ex::GlueTrainLog log(c, *d.dev);
  for (int64_t step = 0; step < c.steps; ++step) {
    const data::GlueBatch b = batches.next();
    Tensor loss =
        autograd::cross_entropy(clf->forward(b.ids, b.B, b.T, b.lengths, nn::Context{true, &drop_rng}), b.labels);
    const float l = loss.item();
    LR_CHECK(std::isfinite(l), "loss is ", l, " at step ", step + 1, " (lower --lr)");
    opt.zero_grad();
    autograd::backward(loss);
    if (c.clip > 0.f) optim::clip_grad_norm(clf->named_parameters(), c.clip);
    opt.step(sched.lr_at(step));
    log.update(step, b, l, *clf);
  }
  const ex::GlueRunResult r = ex::glue_finish(*clf, d, c, log.finish());
  return {{"trainable_params", r.trainable},
          {"accuracy", r.dev.accuracy},
          {"final_train_loss", r.final_loss},
          {"train_seconds", r.train_seconds}};
}

ex::GlueRunConfig glue_config(const Settings& s, const Config& cfg) {
  ex::GlueRunConfig c;
  c.device = s.device;
  c.init = s.init;
  c.pooling = s.pooling;
  c.method.method = "lora";
  c.method.lora = lora_config(s, cfg);
  c.steps = s.steps;
  c.batch_size = s.batch_size;
  c.warmup = std::max<int64_t>(1, c.steps / 15);  // ~6% of the steps, the paper's GLUE warmup ratio
  c.lr = s.lr;
  c.dropout = s.dropout;
  c.progress = false;  // one line per run instead
  return c;
}

// One E2E cell (examples/common/ablation_e2e.h) as a run's JSON.
json run_e2e_cell(const Settings& s, const Config& cfg, uint64_t seed, const data::Tokenizer& tok,
                  const ex::E2EAblationData& d) {
  lora::MethodConfig mc;
  mc.lora = lora_config(s, cfg);
  ex::FinetuneOptions to;
  to.batch_size = s.batch_size;
  to.steps = s.steps;
  to.warmup = std::clamp<int64_t>(s.steps / 10, 1, 30);  // finetune_e2e's 30, fewer on a short run
  to.lr = s.lr;
  to.max_len = s.max_len;
  to.eval_batches = 100;  // 800 validation examples
  to.seed = seed;
  to.device = s.device;
  nn::DecodeOptions dec;
  dec.beam_size = s.beam;  // the rest as finetune_e2e: length penalty 0.9, no-repeat-ngram 4, 64 new tokens
  dec.length_penalty = 0.9f;
  dec.no_repeat_ngram_size = 4;
  dec.max_new_tokens = 64;
  const ex::E2ECellResult r = ex::run_e2e_cell(s.init, tok, d, mc, to, dec);
  return {{"trainable_params", r.trainable},
          {"bleu", r.scores.bleu},
          {"nist", r.scores.nist},
          {"meteor", r.scores.meteor},
          {"rouge_l", r.scores.rouge_l},
          {"cider", r.scores.cider},
          {"valid_loss", r.train.valid_loss},
          {"final_train_loss", r.train.final_loss},
          {"train_seconds", r.train.seconds},
          {"decode_seconds", r.decode_seconds}};
}

using CellFn = std::function<json(const Config&, uint64_t)>;

// Every configuration × seed, one line each with the ETA; the runs' JSON rows.
json run_all(const CellFn& cell, const std::vector<Config>& configs, const std::vector<uint64_t>& seeds,
             const std::string& task) {
  json runs = json::array();
  const size_t total = configs.size() * seeds.size();
  ex::Timer timer;
  for (const Config& cfg : configs)
    for (uint64_t seed : seeds) {
      json r = cell(cfg, seed);
      r["targets"] = cfg.targets;
      r["r"] = cfg.r;
      r["seed"] = seed;
      runs.push_back(r);
      const double eta = timer.seconds() / static_cast<double>(runs.size()) * static_cast<double>(total - runs.size());
      std::cout << "[" << runs.size() << "/" << total << "] " << cfg.label() << " seed " << seed << ":";
      for (const ex::Metric& m : ex::task_metrics(task))
        std::cout << " " << m.field << " " << ex::fixed(r[m.field].get<double>(), 4);
      std::cout << " (" << ex::fixed(r["train_seconds"].get<double>(), 1) << " s train, ETA "
                << ex::format_duration(eta) << ")" << std::endl;
    }
  return runs;
}

// Trains every cell of the tables on the settings' task; the runs' JSON rows.
json train_runs(const Settings& s, const std::vector<Config>& configs, const std::vector<uint64_t>& seeds) {
  data::Gpt2Bpe tok = data::Gpt2Bpe::from_dir(kSrc + "/data/assets/gpt2-bpe");
  std::cout << s.task << ": " << configs.size() << " configurations x " << seeds.size() << " seeds, " << s.steps
            << " steps x " << s.batch_size << ", lr " << s.lr << ", alpha " << s.alpha << ", A init std "
            << s.a_init_std << "\n";
  if (s.task == "e2e") {
    const int64_t n_pos = nn::read_config(tensor::load_safetensors(s.init), s.init).n_positions;
    const ex::E2EAblationData d = ex::load_e2e_ablation_data(kE2E, tok, std::min(s.max_len, n_pos), s.mrs, s.mr_stride);
    std::cout << "E2E: train " << d.splits.train.size() << ", " << d.mrs.size() << " validation MRs decoded per cell\n";
    return run_all([&](const Config& c, uint64_t seed) { return run_e2e_cell(s, c, seed, tok, d); }, configs, seeds,
                   s.task);
  }
  const ex::GlueData d = ex::load_glue_data(kGlue, "sst2", tok, s.max_len, s.train_examples);
  std::cout << "SST-2: train " << d.train->size() << ", dev " << d.dev->size() << "\n";
  return run_all([&](const Config& c, uint64_t seed) { return run_sst2_cell(d, glue_config(s, c), seed); }, configs,
                 seeds, s.task);
}

// --from-runs: the runs of earlier --json files, which must share their settings; each cell and seed once.
json read_runs(const std::string& list, json& settings) {
  json runs = json::array();
  std::set<std::string> seen;
  for (const std::string& path : ex::split_list(list)) {
    json f;
    try {
      f = json::parse(data::read_file(path));
    } catch (const json::exception& e) {
      throw Error(cat(path, ": not JSON (", e.what(), ")"));
    }
    LR_CHECK(f.is_object() && f.contains("settings") && f.contains("runs"), path,
             ": no \"settings\" and \"runs\" (not written by ablation --json)");
    if (settings.is_null()) settings = f["settings"];
    LR_CHECK(f["settings"] == settings, path, ": settings ", f["settings"].dump(), " differ from the first file's ",
             settings.dump());
    for (const json& r : f["runs"]) {
      const std::string id =
          Config{r.at("targets"), r.at("r")}.label() + " seed " + std::to_string(r.at("seed").get<uint64_t>());
      LR_CHECK(seen.insert(id).second, path, ": ", id, " is in two of the files");
      runs.push_back(r);
    }
  }
  return runs;
}

int ablation_main(int argc, char** argv) {
  cxxopts::Options options = make_options();
  auto a = ex::parse_args(options, argc, argv);
  const std::string table = a["table"].as<std::string>(), from = a["from-runs"].as<std::string>();
  LR_CHECK(table == "5" || table == "6" || table == "both", "--table must be 5, 6 or both, got '", table, "'");
  const std::string md_path = a["markdown"].as<std::string>();
  if (!md_path.empty()) data::read_file(md_path);  // a missing file fails now, not after the runs
  tensor::set_num_threads(a["threads"].as<int>());
  ex::Timer timer;
  json settings, runs;
  if (!from.empty()) {
    runs = read_runs(from, settings);
  } else {
    const Settings s = read_settings(a);
    settings = s.to_json();
    const std::vector<uint64_t> seeds =
        a.count("quick") ? std::vector<uint64_t>{1} : ex::parse_seeds(a["seeds"].as<std::string>());
    runs = train_runs(s, ex::unique_configs(ex::rows_of(table)), seeds);
  }
  const std::string task = settings.at("task");
  json out = {{"settings", settings}, {"runs", runs}, {"seconds", timer.seconds()}, {"threads", tensor::num_threads()}};
  for (const std::string t : {"5", "6"}) {
    if (table != "both" && table != t) continue;
    const std::string md = ex::table_markdown(t == "5" ? ex::table5() : ex::table6(), runs, task, out["table" + t]);
    std::cout << "\nTable " << t << " analog (" << task << ")\n" << md;
    if (!md_path.empty()) ex::rewrite_section(md_path, "ablation_" + task + "_" + t, md);
  }
  std::cout << "total " << ex::format_duration(timer.seconds()) << "\n";
  if (!a["json"].as<std::string>().empty()) ex::write_json(a["json"].as<std::string>(), out);
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return ex::run_main(argc, argv, ablation_main); }
