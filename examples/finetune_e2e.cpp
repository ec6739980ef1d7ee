// finetune_e2e: adapt a pretrained GPT to the E2E NLG task (Hu et al., 2021, Section 5.5, Table 3)
// with LoRA or one of the paper's baselines, then decode the test MRs with beam search and score
// them with BLEU, NIST, METEOR, ROUGE-L and CIDEr.
//   ./build/train_gpt --save out/gpt-mini.safetensors                 # a base model first
//   ./build/finetune_e2e --init out/gpt-mini.safetensors --method lora --rank 4 --targets q,v
//   ./build/finetune_e2e --init out/gpt-mini.safetensors --method ft --lr 2e-4
//   ./build/finetune_e2e --init path/to/hf-gpt2 --save-adapter out/peft-adapter --export-merged out/merged
//                                        # an HF GPT-2 directory in; a peft adapter and an HF model out
//   ./build/finetune_e2e --init path/to/hf-gpt2 --adapter out/peft-adapter --steps 0 --epochs 0   # decode only
// The training loop is finetune's (examples/common/train_loop.h; its pieces in finetune_train.h); this
// file adds what is E2E's own: the data, beam search over the test MRs and the five metrics
// (examples/common/e2e_decode.h), the results rows.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <numeric>

#include "data/bpe.h"
#include "data/e2e.h"
#include "data/metrics.h"
#include "examples/common/cli.h"
#include "examples/common/e2e_decode.h"
#include "examples/common/finetune_train.h"
#include "examples/common/results.h"
#include "examples/common/train_loop.h"
#include "lora/methods.h"
#include "nn/checkpoint.h"
#include "nn/generate.h"
#include "nn/hf_gpt2.h"
#include "tensor/parallel.h"

using namespace lowrank;
namespace ex = lowrank::examples;

namespace {

const std::string kSrc = LOWRANK_SOURCE_DIR;
const std::string kE2E = LOWRANK_E2E_DIR;

cxxopts::Options make_options() {
  cxxopts::Options o("finetune_e2e", "Fine-tune a GPT on E2E NLG with LoRA or a baseline, decode and score");
  // clang-format off
  o.add_options()
    ("init", "the base: a train_gpt checkpoint, or a Hugging Face GPT-2 directory (config.json + model.safetensors) (required)",
     cxxopts::value<std::string>())
    ("adapter", "start from this LoRA adapter (lowrank's .safetensors or a peft directory; its config replaces --rank/--alpha/--targets); "
     "--steps 0 --epochs 0 only decodes", cxxopts::value<std::string>()->default_value(""))
    ("method", "lora|ft|ft-top2|bitfit|adapter-h|adapter-l|prefix-embed|prefix-layer", cxxopts::value<std::string>()->default_value("lora"))
    ("rank", "LoRA rank r", cxxopts::value<int64_t>()->default_value("4"))
    ("alpha", "LoRA alpha (scale alpha/r)", cxxopts::value<float>()->default_value("32"))
    ("use-rslora", "rsLoRA: scale alpha/sqrt(r) instead of alpha/r (Kalajdzievski, 2023)")
    ("init-lora-weights", "gaussian | pissa | olora: A, B from W0's top singular vectors or QR, residual frozen (Meng et al., 2024; Buyukakyuz, 2024)", cxxopts::value<std::string>()->default_value("gaussian"))
    ("use-dora", "DoRA: a trainable magnitude per output feature over LoRA's direction (Liu et al., 2024)")
    ("targets", "LoRA targets: q,k,v,o,mlp,wte (wte: LoRA on the token embedding and tied head)", cxxopts::value<std::string>()->default_value("q,v"))
    ("dropout", "LoRA / model dropout", cxxopts::value<float>()->default_value("0.1"))
    ("adapter-dim", "adapter bottleneck", cxxopts::value<int64_t>()->default_value("8"))
    ("prefix-len", "prefix length", cxxopts::value<int64_t>()->default_value("8"))
    ("steps", "optimizer steps (0: --epochs over the train set)", cxxopts::value<int64_t>()->default_value("300"))
    ("epochs", "epochs when --steps is 0", cxxopts::value<int64_t>()->default_value("1"))
    ("batch-size", "examples per micro-batch", cxxopts::value<int64_t>()->default_value("8"))
    ("accum", "micro-batches per optimizer step (gradient accumulation)", cxxopts::value<int64_t>()->default_value("1"))
    ("lr", "peak learning rate", cxxopts::value<float>()->default_value("1e-3"))
    ("warmup", "warmup steps", cxxopts::value<int64_t>()->default_value("30"))
    ("weight-decay", "AdamW decay", cxxopts::value<float>()->default_value("0.01"))
    ("loraplus-lr-ratio", "LoRA+: lora_B learns at this times --lr (Hayou et al., 2024; 0 or 1: off)", cxxopts::value<float>()->default_value("0"))
    ("label-smoothing", "label smoothing", cxxopts::value<float>()->default_value("0.1"))
    ("clip", "max gradient norm (0: off)", cxxopts::value<float>()->default_value("1.0"))
    ("max-len", "max tokens per example", cxxopts::value<int64_t>()->default_value("128"))
    ("beam", "beam size", cxxopts::value<int64_t>()->default_value("10"))
    ("length-penalty", "beam length penalty", cxxopts::value<float>()->default_value("0.9"))
    ("no-repeat-ngram", "block repeated n-grams", cxxopts::value<int64_t>()->default_value("4"))
    ("decode-batch", "test MRs per batched beam search", cxxopts::value<int64_t>()->default_value("8"))
    ("max-new-tokens", "decode length limit", cxxopts::value<int64_t>()->default_value("64"))
    ("test-mrs", "test MRs to decode (0: all 630)", cxxopts::value<int64_t>()->default_value("100"))
    ("test-stride", "decode every k-th test MR from the first (the file is sorted by restaurant: a stride spreads the MRs)",
     cxxopts::value<int64_t>()->default_value("1"))
    ("outputs", "file for the generated texts", cxxopts::value<std::string>()->default_value("out/e2e_outputs.txt"))
    ("save-adapter", "write the trained LoRA adapter: NAME.safetensors in lowrank's format, any other name as a peft directory "
     "(adapter_config.json + adapter_model.safetensors)", cxxopts::value<std::string>()->default_value(""))
    ("export-merged", "write the fine-tuned model, adapter merged in, as a Hugging Face GPT-2 directory",
     cxxopts::value<std::string>()->default_value(""))
    ("checkpoint", "training checkpoint written by --save-every / --stop-after", cxxopts::value<std::string>()->default_value("out/e2e_checkpoint.safetensors"))
    ("save-every", "steps between training checkpoints (0: none)", cxxopts::value<int64_t>()->default_value("0"))
    ("stop-after", "stop after this many steps with a checkpoint; --resume continues the run exactly", cxxopts::value<int64_t>()->default_value("0"))
    ("resume", "continue the run from this training checkpoint (the same options)", cxxopts::value<std::string>()->default_value(""))
    ("seed", "random seed", cxxopts::value<uint64_t>()->default_value("1"))
    ("device", "cpu or cuda (a GPU build)", cxxopts::value<std::string>()->default_value("cpu"))
    ("precision", "fp32 | bf16: bf16 runs the frozen weights' GEMMs in bfloat16, what trains stays fp32 (docs/precision.md)",
     cxxopts::value<std::string>()->default_value("fp32"))
    ("threads", "CPU threads (0: all)", cxxopts::value<int>()->default_value("0"))
    ("eval-every", "steps between learning-curve points (valid loss; 0: only at the end)", cxxopts::value<int64_t>()->default_value("0"))
    ("results", "add this run as a row of a results file (e.g. docs/results/e2e.json)", cxxopts::value<std::string>()->default_value(""))
    ("compare", "an outputs file of an earlier run (e.g. FT's): scored on the same MRs, printed beside", cxxopts::value<std::string>()->default_value(""))
    ("show", "generated texts to print beside their MRs", cxxopts::value<int64_t>()->default_value("3"))
    ("json", "write metrics to this JSON file", cxxopts::value<std::string>()->default_value(""))
    ("h,help", "show help");
  // clang-format on
  return o;
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

ex::FinetuneOptions train_options(const cxxopts::ParseResult& a) {
  ex::FinetuneOptions o = ex::shared_train_options(a);
  o.warmup = a["warmup"].as<int64_t>();
  return o;
}

// --save-every / --stop-after / --resume. The fingerprint: every option that shapes the trajectory.
ex::CheckpointOptions checkpoint_options(const cxxopts::ParseResult& a, const ex::FinetuneOptions& o,
                                         const lora::MethodConfig& mc) {
  ex::CheckpointOptions ck;
  ck.path = a["checkpoint"].as<std::string>();
  ck.save_every = a["save-every"].as<int64_t>();
  ck.stop_after = a["stop-after"].as<int64_t>();
  ck.resume = a["resume"].as<std::string>();
  ck.fingerprint = ex::run_fingerprint(o, mc, a["init"].as<std::string>(), a["adapter"].as<std::string>(), "e2e");
  return ck;
}

std::vector<std::string> score_row(const std::string& name, int64_t trainable, const data::MetricScores& m,
                                   const std::string& valid, const std::string& train_s) {
  return {name,
          std::to_string(trainable),
          ex::fixed(m.bleu),
          ex::fixed(m.nist),
          ex::fixed(m.meteor),
          ex::fixed(m.rouge_l),
          ex::fixed(m.cider),
          valid,
          train_s};
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const std::string& x : v) s += (s.empty() ? "" : ",") + x;
  return s;
}

// The run's identity in a results file: method, its hyper-parameters, the budget, the seed.
// lc: the LoRA config the model has (--adapter's, or the options').
std::string run_key(const cxxopts::ParseResult& a, const lora::MethodConfig& mc, const lora::LoRAConfig& lc,
                    const ex::TrainResult& tr) {
  std::string k = mc.method;
  if (mc.method == "lora")
    k += " r=" + std::to_string(lc.r) + " alpha=" + ex::fixed(lc.alpha, 0) + " targets=" + join(lc.targets);
  if (!a["adapter"].as<std::string>().empty()) k += " adapter=" + a["adapter"].as<std::string>();
  if (mc.method == "adapter-h" || mc.method == "adapter-l") k += " dim=" + std::to_string(mc.adapter_dim);
  if (mc.method == "prefix-embed" || mc.method == "prefix-layer") k += " len=" + std::to_string(mc.prefix_len);
  char lr[32];
  std::snprintf(lr, sizeof lr, "%g", a["lr"].as<float>());
  k += std::string(" lr=") + lr;
  // Only what differs from the table's recipe, so that the headline rows keep their keys.
  if (a["label-smoothing"].as<float>() != 0.1f) k += " ls=" + ex::fixed(a["label-smoothing"].as<float>(), 2);
  if (mc.method == "lora" && lc.use_rslora) k += " rslora";
  if (mc.method == "lora" && lc.init_lora_weights != "gaussian") k += " " + lc.init_lora_weights;
  if (mc.method == "lora" && lc.use_dora) k += " dora";
  const float loraplus = a["loraplus-lr-ratio"].as<float>();
  if (loraplus != 0.f && loraplus != 1.f) {
    char ratio[32];
    std::snprintf(ratio, sizeof ratio, "%g", loraplus);
    k += std::string(" loraplus=") + ratio;
  }
  const std::filesystem::path init = std::filesystem::path(a["init"].as<std::string>()).lexically_normal();
  const std::string base = (init.has_filename() ? init : init.parent_path()).stem().string();
  if (base != "gpt-e2e-base") k += " base=" + base;
  if (a["device"].as<std::string>() != "cpu")
    k += " device=" + a["device"].as<std::string>();  // never replaces a CPU row
  if (a["precision"].as<std::string>() != "fp32") k += " " + a["precision"].as<std::string>();  // nor an fp32 one
  return k + " B=" + std::to_string(a["batch-size"].as<int64_t>()) + " steps=" + std::to_string(tr.steps) +
         " mrs=" + std::to_string(a["test-mrs"].as<int64_t>()) +
         (a["test-stride"].as<int64_t>() > 1 ? " stride=" + std::to_string(a["test-stride"].as<int64_t>()) : "") +
         " seed=" + std::to_string(a["seed"].as<uint64_t>());
}

// The option checks that need no file: a bad combination fails now, not after training and decoding.
void check_run_options(const cxxopts::ParseResult& a) {
  LR_CHECK(a.count("init"), "--init is required: a base checkpoint from train_gpt (e.g. out/gpt-mini.safetensors)");
  const std::string method = a["method"].as<std::string>(), adapter = a["adapter"].as<std::string>();
  LR_CHECK(a["save-adapter"].as<std::string>().empty() || method == "lora",
           "--save-adapter needs --method lora, got --method ", method);
  LR_CHECK(adapter.empty() || method == "lora", "--adapter needs --method lora, got --method ", method);
  for (const char* opt : {"rank", "alpha", "targets", "use-rslora", "init-lora-weights",
                          "use-dora"})  // the adapter's own config decides these
    LR_CHECK(adapter.empty() || !a.count(opt), "--", opt, " cannot be combined with --adapter ", adapter,
             " (its config gives it)");
  // A folder the user named must exist now; the default out/e2e_outputs.txt gets its folder when written.
  if (a.count("outputs")) ex::check_output_path("outputs", a["outputs"].as<std::string>());
  ex::check_output_path("results", a["results"].as<std::string>());
  if (!a["compare"].as<std::string>().empty())
    ex::read_outputs(a["compare"].as<std::string>());  // a bad file fails now
}

// The trained model out: --save-adapter (lowrank's file or a peft directory), --export-merged (HF GPT-2).
void save_trained(const cxxopts::ParseResult& a, nn::GPT& model) {
  const std::string adapter_path = a["save-adapter"].as<std::string>();
  if (!adapter_path.empty() && ex::is_peft_dir_name(adapter_path))  // --method lora, checked up front
    lora::save_peft(adapter_path, model, lora::lora_config_of(model), a["init"].as<std::string>());
  else if (!adapter_path.empty())
    lora::save_adapter(adapter_path, model, lora::lora_config_of(model));
  const std::string merged = a["export-merged"].as<std::string>();
  if (!merged.empty() && a["method"].as<std::string>() == "lora")
    lora::export_merged_hf(merged, model);
  else if (!merged.empty())
    nn::save_hf_dir(merged, model);
}

// The results row of a run (finetune_e2e --json, --results): its key, settings, sizes, training and scores.
nlohmann::json result_row(const cxxopts::ParseResult& a, const lora::MethodConfig& mc, const ex::FinetuneModel& em,
                          const ex::TrainResult& tr, int64_t train_size, const data::MetricScores& m, size_t test_mrs,
                          double decode_s) {
  const lora::LoRAConfig lc = mc.method == "lora" ? lora::lora_config_of(*em.model) : mc.lora;
  return {{"key", run_key(a, mc, lc, tr)},
          {"method", mc.method},
          {"seed", a["seed"].as<uint64_t>()},
          {"init", a["init"].as<std::string>()},
          {"adapter", a["adapter"].as<std::string>()},
          {"rank", lc.r},
          {"alpha", lc.alpha},
          {"targets", join(lc.targets)},
          {"lr", a["lr"].as<float>()},
          {"label_smoothing", a["label-smoothing"].as<float>()},
          {"batch_size", a["batch-size"].as<int64_t>()},
          {"trainable_params", em.trainable},
          {"total_params", em.total_params},
          {"optimizer_state_bytes", em.opt->state_bytes()},
          {"peak_rss_bytes", peak_rss_bytes()},
          {"peak_tensor_bytes", tensor::cpu_bytes_peak()},
          {"steps", tr.steps},
          {"examples_seen", tr.examples},
          {"epochs", static_cast<double>(tr.examples) / static_cast<double>(train_size)},
          {"train_seconds", tr.seconds},
          {"train_tokens_per_s", tr.tokens_per_s},
          {"final_train_loss", tr.final_loss},
          {"valid_loss", tr.valid_loss},
          {"curve", ex::curve_json(tr.curve)},
          {"test_mrs", test_mrs},
          {"decode_seconds", decode_s},
          {"beam", a["beam"].as<int64_t>()},
          {"bleu", m.bleu},
          {"nist", m.nist},
          {"meteor", m.meteor},
          {"rouge_l", m.rouge_l},
          {"cider", m.cider},
          {"threads", tensor::num_threads()},
          {"device", a["device"].as<std::string>()},
          {"outputs", a["outputs"].as<std::string>()}};
}

// Decodes the test MRs, prints texts and scores (beside --compare's), writes --outputs/--json/--results.
void evaluate_and_report(const cxxopts::ParseResult& a, const data::Tokenizer& tok, const lora::MethodConfig& mc,
                         const ex::FinetuneModel& em, const ex::TrainResult& tr, int64_t train_size) {
  const std::vector<data::E2EGroup> groups =
      data::pick_test_mrs(data::group_by_mr(data::load_e2e(kE2E + "/test.txt")), a["test-mrs"].as<int64_t>(),
                          a["test-stride"].as<int64_t>());
  double decode_s = 0.0;
  auto [hyps, refs] =
      ex::decode_test(*em.model, tok, groups, ex::decode_options(a), a["decode-batch"].as<int64_t>(), decode_s);
  ex::write_outputs(a["outputs"].as<std::string>(), groups, hyps);
  const data::MetricScores m = data::e2e_metrics(hyps, refs);
  for (size_t i = 0; i < std::min<size_t>(static_cast<size_t>(a["show"].as<int64_t>()), hyps.size()); ++i)
    std::cout << "MR:   " << groups[i].mr << "\n" << mc.method << ": " << hyps[i] << "\n";
  std::vector<std::vector<std::string>> rows = {
      score_row(mc.method, em.trainable, m, ex::fixed(tr.valid_loss), ex::fixed(tr.seconds, 0))};
  const std::string compare = a["compare"].as<std::string>();
  if (!compare.empty())
    rows.push_back(score_row("stored: " + compare, 0, ex::score_stored(compare, groups, refs), "", ""));
  ex::print_table({"method", "trainable", "BLEU", "NIST", "METEOR", "ROUGE-L", "CIDEr", "valid loss", "train s"}, rows);
  const double total = static_cast<double>(em.total_params), state = static_cast<double>(em.opt->state_bytes());
  std::printf("%zu test MRs; trainable %lld of %lld parameters (%.4f%%), optimizer state %zu bytes\n", hyps.size(),
              static_cast<long long>(em.trainable), static_cast<long long>(em.total_params),
              100.0 * static_cast<double>(em.trainable) / total, em.opt->state_bytes());
  if (mc.method != "ft")  // AdamW keeps two float32 moments per trainable parameter
    std::printf("full fine-tuning trains all %lld parameters, with %lld bytes of AdamW state (%.0fx more)\n",
                static_cast<long long>(em.total_params), static_cast<long long>(em.total_params) * 8,
                total * 8.0 / std::max(1.0, state));
  nlohmann::json row = result_row(a, mc, em, tr, train_size, m, hyps.size(), decode_s);
  if (tensor::precision() != tensor::Precision::fp32)  // fp32 rows stay as they were
    row["precision"] = tensor::precision_name(tensor::precision()),
    row["bf16_gemm"] = autograd::bf16_gemm_info(ex::device_option(a));
  if (!a["json"].as<std::string>().empty()) {  // every step's loss too (not in --results' rows)
    nlohmann::json full = row;
    full["losses"] = tr.losses;
    ex::write_json(a["json"].as<std::string>(), full);
  }
  if (!a["results"].as<std::string>().empty()) ex::record_run(a["results"].as<std::string>(), row);
}

int finetune_main(int argc, char** argv) {
  cxxopts::Options options = make_options();
  auto a = ex::parse_args(options, argc, argv);
  check_run_options(a);
  tensor::set_num_threads(a["threads"].as<int>());
  data::Gpt2Bpe tok = data::Gpt2Bpe::from_dir(kSrc + "/data/assets/gpt2-bpe");
  const lora::MethodConfig mc = ex::method_config(a);
  const ex::FinetuneOptions to = train_options(a);
  ex::FinetuneModel em = ex::prepare_model(a["init"].as<std::string>(), tok, mc, to, a["adapter"].as<std::string>());
  const ex::E2ESplits splits = ex::load_e2e_splits(kE2E, tok, ex::max_len_for(em, to));
  ex::print_setup(em, mc.method, splits.train);
  // The paper's recipe (Table 11): AdamW on the completion-only masked loss with label smoothing,
  // linear warmup then linear decay, gradient clipping; the loop is finetune's (train_loop.h).
  const ex::TrainResult tr = ex::train_loop(em, splits.train, &splits.valid, to, checkpoint_options(a, to, mc));
  if (tr.steps > 0 && static_cast<int64_t>(tr.losses.size()) < tr.steps) {  // --stop-after: resume later
    std::cout << "stopped after step " << tr.losses.size() << " of " << tr.steps << "; continue with --resume "
              << a["checkpoint"].as<std::string>() << "\n";
    return 0;
  }
  // Under mpirun rank 0 alone writes and decodes; the others wait (every rank holds the same model).
  if (optim::dist::is_root()) {
    save_trained(a, *em.model);
    evaluate_and_report(a, tok, mc, em, tr, splits.train.size());
  }
  optim::dist::barrier();
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return ex::run_main(argc, argv, finetune_main); }
