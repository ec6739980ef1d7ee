// finetune_e2e: adapt a pretrained GPT to the E2E NLG task (Hu et al., 2021, Section 5.5, Table 3)
// with LoRA or one of the paper's baselines, then decode the test MRs with beam search and score
// them with BLEU, NIST, METEOR, ROUGE-L and CIDEr.
//   ./build/train_gpt --save out/gpt-mini.safetensors                 # a base model first
//   ./build/finetune_e2e --init out/gpt-mini.safetensors --method lora --rank 4 --targets q,v
//   ./build/finetune_e2e --init out/gpt-mini.safetensors --method ft --lr 2e-4
// Training (load, apply the method, AdamW on the masked loss) lives in examples/common/e2e_train.h.
#include <fstream>
#include <iostream>

#include "data/bpe.h"
#include "data/e2e.h"
#include "data/metrics.h"
#include "examples/common/cli.h"
#include "examples/common/e2e_train.h"
#include "lora/methods.h"
#include "nn/checkpoint.h"
#include "nn/generate.h"
#include "tensor/parallel.h"

using namespace lowrank;
namespace ex = lowrank::examples;

namespace {

const std::string kSrc = LOWRANK_SOURCE_DIR;
const std::string kE2E = LOWRANK_E2E_DIR;

cxxopts::Options make_options() {
  cxxopts::Options o("finetune_e2e", "Fine-tune a GPT on E2E NLG with LoRA or a baseline, decode and score");
  o.add_options()
    ("init", "base checkpoint from train_gpt (required)", cxxopts::value<std::string>())
    ("method", "lora|ft|ft-top2|bitfit|adapter-h|adapter-l|prefix-embed|prefix-layer", cxxopts::value<std::string>()->default_value("lora"))
    ("rank", "LoRA rank r", cxxopts::value<int64_t>()->default_value("4"))
    ("alpha", "LoRA alpha (scale alpha/r)", cxxopts::value<float>()->default_value("32"))
    ("targets", "LoRA targets: q,k,v,o,mlp", cxxopts::value<std::string>()->default_value("q,v"))
    ("dropout", "LoRA / model dropout", cxxopts::value<float>()->default_value("0.1"))
    ("adapter-dim", "adapter bottleneck", cxxopts::value<int64_t>()->default_value("8"))
    ("prefix-len", "prefix length", cxxopts::value<int64_t>()->default_value("8"))
    ("steps", "optimizer steps (0: --epochs over the train set)", cxxopts::value<int64_t>()->default_value("300"))
    ("epochs", "epochs when --steps is 0", cxxopts::value<int64_t>()->default_value("1"))
    ("batch-size", "examples per step", cxxopts::value<int64_t>()->default_value("8"))
    ("lr", "peak learning rate", cxxopts::value<float>()->default_value("1e-3"))
    ("warmup", "warmup steps", cxxopts::value<int64_t>()->default_value("30"))
    ("weight-decay", "AdamW decay", cxxopts::value<float>()->default_value("0.01"))
    ("label-smoothing", "label smoothing", cxxopts::value<float>()->default_value("0.1"))
    ("clip", "max gradient norm (0: off)", cxxopts::value<float>()->default_value("1.0"))
    ("max-len", "max tokens per example", cxxopts::value<int64_t>()->default_value("128"))
    ("beam", "beam size", cxxopts::value<int64_t>()->default_value("10"))
    ("length-penalty", "beam length penalty", cxxopts::value<float>()->default_value("0.9"))
    ("no-repeat-ngram", "block repeated n-grams", cxxopts::value<int64_t>()->default_value("4"))
    ("max-new-tokens", "decode length limit", cxxopts::value<int64_t>()->default_value("64"))
    ("test-mrs", "test MRs to decode (0: all 630)", cxxopts::value<int64_t>()->default_value("100"))
    ("outputs", "file for the generated texts", cxxopts::value<std::string>()->default_value("out/e2e_outputs.txt"))
    ("save-adapter", "write the trained LoRA adapter here", cxxopts::value<std::string>()->default_value(""))
    ("seed", "random seed", cxxopts::value<uint64_t>()->default_value("1"))
    ("device", "cpu or cuda (a GPU build)", cxxopts::value<std::string>()->default_value("cpu"))
    ("threads", "CPU threads (0: all)", cxxopts::value<int>()->default_value("0"))
    ("json", "write metrics to this JSON file", cxxopts::value<std::string>()->default_value(""))
    ("h,help", "show help");
  return o;
}

lora::MethodConfig method_config(const cxxopts::ParseResult& a) {
  lora::MethodConfig m;
  m.method = a["method"].as<std::string>();
  m.lora.r = a["rank"].as<int64_t>();
  m.lora.alpha = a["alpha"].as<float>();
  m.lora.dropout = a["dropout"].as<float>();
  m.lora.targets = ex::split_list(a["targets"].as<std::string>());
  m.adapter_dim = a["adapter-dim"].as<int64_t>();
  m.prefix_len = a["prefix-len"].as<int64_t>();
  return m;
}

// Peak resident memory of the process (VmHWM), in bytes.
size_t peak_rss_bytes() {
  std::ifstream in("/proc/self/status");
  std::string key;
  size_t kb = 0;
  while (in >> key)
    if (key == "VmHWM:" && in >> kb) break;
  return kb * 1024;
}

ex::E2ETrainOptions train_options(const cxxopts::ParseResult& a) {
  ex::E2ETrainOptions o;
  o.batch_size = a["batch-size"].as<int64_t>();
  o.steps = a["steps"].as<int64_t>();
  o.epochs = a["epochs"].as<int64_t>();
  o.warmup = a["warmup"].as<int64_t>();
  o.lr = a["lr"].as<float>();
  o.weight_decay = a["weight-decay"].as<float>();
  o.label_smoothing = a["label-smoothing"].as<float>();
  o.clip = a["clip"].as<float>();
  o.max_len = a["max-len"].as<int64_t>();
  o.seed = a["seed"].as<uint64_t>();
  o.device = ex::device_option(a);
  return o;
}

// Beam-search the first n test MRs (all when n == 0); returns hypotheses and their reference sets.
std::pair<data::Corpus, data::References> decode_test(nn::GPT& model, const data::Tokenizer& tok,
                                                      const std::vector<data::E2EGroup>& groups,
                                                      const cxxopts::ParseResult& a, double& seconds) {
  int64_t n = a["test-mrs"].as<int64_t>();
  n = n <= 0 ? static_cast<int64_t>(groups.size()) : std::min<int64_t>(n, static_cast<int64_t>(groups.size()));
  nn::DecodeOptions d;
  d.beam_size = a["beam"].as<int64_t>();
  d.length_penalty = a["length-penalty"].as<float>();
  d.no_repeat_ngram_size = a["no-repeat-ngram"].as<int64_t>();
  d.max_new_tokens = a["max-new-tokens"].as<int64_t>();
  data::Corpus hyps;
  data::References refs;
  ex::ProgressBar bar(n);
  ex::Timer timer;
  for (int64_t i = 0; i < n; ++i) {
    const data::E2EGroup& g = groups[static_cast<size_t>(i)];
    std::string text = tok.decode(nn::beam_search(model, data::e2e_prompt(tok, g.mr), d));
    size_t s = text.find_first_not_of(' ');  // completions start with a space
    hyps.push_back(s == std::string::npos ? "" : text.substr(s));
    refs.push_back(g.refs);
    bar.update(i + 1);
  }
  bar.finish();
  seconds = timer.seconds();
  return {hyps, refs};
}

void write_outputs(const std::string& path, const std::vector<data::E2EGroup>& groups, const data::Corpus& hyps) {
  if (path.empty()) return;
  std::ofstream out(path);
  LR_CHECK(out.good(), path, ": cannot write the outputs file");
  for (size_t i = 0; i < hyps.size(); ++i) out << groups[i].mr << "||" << hyps[i] << "\n";
}

std::string fmt(double v, int digits = 4) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

int finetune_main(int argc, char** argv) {
  cxxopts::Options options = make_options();
  auto a = ex::parse_args(options, argc, argv);
  LR_CHECK(a.count("init"), "--init is required: a base checkpoint from train_gpt (e.g. out/gpt-mini.safetensors)");
  tensor::set_num_threads(a["threads"].as<int>());
  data::Gpt2Bpe tok = data::Gpt2Bpe::from_dir(kSrc + "/data/assets/gpt2-bpe");
  const lora::MethodConfig mc = method_config(a);
  const ex::E2ETrainOptions to = train_options(a);
  ex::E2EModel em = ex::prepare_e2e_model(a["init"].as<std::string>(), tok, mc, to);
  const ex::E2ESplits splits = ex::load_e2e_splits(kE2E, tok, ex::e2e_max_len(em, to));
  ex::print_e2e_setup(em, mc.method, splits.train);

  const ex::E2ETrainResult tr = ex::train_e2e(em, splits, to);
  nn::GPT& model = *em.model;
  if (!a["save-adapter"].as<std::string>().empty()) {
    LR_CHECK(mc.method == "lora", "--save-adapter needs --method lora");
    lora::save_adapter(a["save-adapter"].as<std::string>(), model, mc.lora);
  }
  std::vector<data::E2EGroup> groups = data::group_by_mr(data::load_e2e(kE2E + "/test.txt"));
  double decode_s = 0.0;
  auto [hyps, refs] = decode_test(model, tok, groups, a, decode_s);
  write_outputs(a["outputs"].as<std::string>(), groups, hyps);
  data::MetricScores m = data::e2e_metrics(hyps, refs);

  ex::print_table({"method", "trainable", "BLEU", "NIST", "METEOR", "ROUGE-L", "CIDEr", "valid loss", "train s"},
                  {{mc.method, std::to_string(em.trainable), fmt(m.bleu), fmt(m.nist), fmt(m.meteor), fmt(m.rouge_l),
                    fmt(m.cider), fmt(tr.valid_loss), fmt(tr.seconds, 0)}});
  if (!a["json"].as<std::string>().empty())
    ex::write_json(a["json"].as<std::string>(),
                   {{"method", mc.method}, {"trainable_params", em.trainable}, {"total_params", em.total_params},
                    {"optimizer_state_bytes", em.opt->state_bytes()}, {"peak_rss_bytes", peak_rss_bytes()},
                    {"peak_tensor_bytes", tensor::cpu_bytes_peak()}, {"steps", tr.steps},
                    {"train_seconds", tr.seconds}, {"train_tokens_per_s", tr.tokens_per_s},
                    {"final_train_loss", tr.final_loss}, {"valid_loss", tr.valid_loss},
                    {"test_mrs", hyps.size()}, {"decode_seconds", decode_s},
                    {"bleu", m.bleu}, {"nist", m.nist}, {"meteor", m.meteor}, {"rouge_l", m.rouge_l}, {"cider", m.cider},
                    {"threads", tensor::num_threads()}});
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return ex::run_main(argc, argv, finetune_main); }
