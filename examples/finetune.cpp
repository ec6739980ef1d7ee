// finetune: LoRA (or one of the paper's baselines) on your own data, from a Hugging Face GPT-2
// directory or a lowrank checkpoint. The data is JSON Lines of {"prompt", "completion"} (loss on the
// completion), {"text"} (loss on every token) or {"messages"} (loss on the assistant turns), or plain
// text; data/sft.h defines the formats and the chat template, docs/finetune.md walks through a run.
//   ./build/finetune --init path/to/gpt2 --data train.jsonl --out out/run
/*   ./build/finetune --init data/assets/gpt-e2e-base5/gpt-e2e-base5.safetensors --data sst2.jsonl \
         --val sst2-dev.jsonl --epochs 1 --out out/sst2 --save-peft out/sst2-peft */
//   ./build/finetune ... --save-every 500 --out out/run            # then, after an interruption:
//   ./build/finetune ... --resume out/run/checkpoint.safetensors --out out/run
//   ./build/generate --init path/to/gpt2 --adapter out/run/adapter.safetensors --prompt "..."
// The loop (zero_grad -> batch -> forward -> backward -> clip -> step) is examples/common/train_loop.h,
// the same code that trains finetune_e2e's headline runs.
#include <filesystem>
#include <iostream>

#include "data/bpe.h"
#include "examples/common/cli.h"
#include "examples/common/finetune_data.h"
#include "examples/common/finetune_outputs.h"
#include "examples/common/finetune_train.h"
#include "examples/common/train_loop.h"
#include "lora/methods.h"
#include "tensor/parallel.h"

using namespace lowrank;
namespace ex = lowrank::examples;
namespace fs = std::filesystem;

namespace {

const std::string kSrc = LOWRANK_SOURCE_DIR;

cxxopts::Options make_options() {
  cxxopts::Options o("finetune", "Fine-tune a GPT-2-family model on your data with LoRA or a baseline");
  // clang-format off
  o.add_options("data")
    ("init", "the base: a Hugging Face GPT-2 directory (config.json + model.safetensors) or a lowrank checkpoint (required)", cxxopts::value<std::string>())
    ("data", "training data: .jsonl (prompt/completion, text or messages records) or .txt (required)", cxxopts::value<std::string>())
    ("val", "validation data in the same format (default: --val-frac of --data)", cxxopts::value<std::string>()->default_value(""))
    ("val-frac", "share of --data held out for validation when there is no --val (0: none)", cxxopts::value<float>()->default_value("0.05"))
    ("format", "auto|prompt-completion|text|messages|txt", cxxopts::value<std::string>()->default_value("auto"))
    ("max-len", "tokens per example, longer ones are cut (0: the model's context)", cxxopts::value<int64_t>()->default_value("0"))
    ("out", "output folder: adapter.safetensors, metrics.json, curve.svg, checkpoint.safetensors (required)", cxxopts::value<std::string>());
  // clang-format on
  // clang-format off
  o.add_options("method")
    ("method", "lora|ft|ft-top2|bitfit|adapter-h|adapter-l|prefix-embed|prefix-layer", cxxopts::value<std::string>()->default_value("lora"))
    ("adapter", "start from this LoRA adapter (ours or a peft directory; its config replaces --rank/--alpha/--targets)", cxxopts::value<std::string>()->default_value(""))
    ("rank", "LoRA rank r", cxxopts::value<int64_t>()->default_value("8"))
    ("alpha", "LoRA alpha (scale alpha/r)", cxxopts::value<float>()->default_value("16"))
    ("use-rslora", "rsLoRA: scale alpha/sqrt(r) instead of alpha/r (Kalajdzievski, 2023)")
    ("init-lora-weights", "gaussian | pissa | olora: A, B from W0's top singular vectors or QR, residual frozen (Meng et al., 2024; Buyukakyuz, 2024)", cxxopts::value<std::string>()->default_value("gaussian"))
    ("use-dora", "DoRA: a trainable magnitude per output feature over LoRA's direction (Liu et al., 2024)")
    ("targets", "LoRA targets: q,k,v,o,mlp,wte", cxxopts::value<std::string>()->default_value("q,v"))
    ("dropout", "LoRA and model dropout", cxxopts::value<float>()->default_value("0.05"))
    ("adapter-dim", "adapter bottleneck (adapter-h, adapter-l)", cxxopts::value<int64_t>()->default_value("8"))
    ("prefix-len", "prefix length (prefix-embed, prefix-layer)", cxxopts::value<int64_t>()->default_value("8"));
  // clang-format on
  // clang-format off
  o.add_options("training")
    ("lr", "peak learning rate", cxxopts::value<float>()->default_value("1e-3"))
    ("schedule", "decay after warmup: linear|cosine|constant", cxxopts::value<std::string>()->default_value("linear"))
    ("warmup", "warmup: steps (100) or a share of the run (3%)", cxxopts::value<std::string>()->default_value("3%"))
    ("epochs", "passes over the training data when --steps is 0", cxxopts::value<int64_t>()->default_value("1"))
    ("steps", "optimizer steps (0: --epochs)", cxxopts::value<int64_t>()->default_value("0"))
    ("batch-size", "examples per micro-batch", cxxopts::value<int64_t>()->default_value("8"))
    ("accum", "micro-batches per optimizer step (gradient accumulation)", cxxopts::value<int64_t>()->default_value("1"))
    ("clip", "max gradient norm (0: off)", cxxopts::value<float>()->default_value("1.0"))
    ("weight-decay", "AdamW decay", cxxopts::value<float>()->default_value("0.01"))
    ("loraplus-lr-ratio", "LoRA+: lora_B learns at this times --lr (Hayou et al., 2024; 0 or 1: off)", cxxopts::value<float>()->default_value("0"))
    ("label-smoothing", "label smoothing", cxxopts::value<float>()->default_value("0"))
    ("seed", "random seed (batch order, dropout, LoRA's init)", cxxopts::value<uint64_t>()->default_value("1"))
    ("threads", "CPU threads (0: all)", cxxopts::value<int>()->default_value("0"))
    ("device", "cpu or cuda (a GPU build)", cxxopts::value<std::string>()->default_value("cpu"))
    ("precision", "fp32 | bf16: bf16 runs the frozen weights' GEMMs and attention's products in bfloat16, "
     "what trains stays fp32 (docs/precision.md)",
     cxxopts::value<std::string>()->default_value("fp32"));
  // clang-format on
  // clang-format off
  o.add_options("progress and outputs")
    ("eval-every", "steps between validations (0: only at the end)", cxxopts::value<int64_t>()->default_value("0"))
    ("eval-batches", "validation batches per evaluation (0: all)", cxxopts::value<int64_t>()->default_value("0"))
    ("save-every", "steps between training checkpoints in --out (0: none)", cxxopts::value<int64_t>()->default_value("0"))
    ("stop-after", "stop after this many steps with a checkpoint; --resume continues exactly", cxxopts::value<int64_t>()->default_value("0"))
    ("resume", "continue from this training checkpoint (same data and options)", cxxopts::value<std::string>()->default_value(""))
    ("save-peft", "also write the adapter as a peft directory", cxxopts::value<std::string>()->default_value(""))
    ("export-merged", "also write the model, adapter merged in, as a Hugging Face GPT-2 directory", cxxopts::value<std::string>()->default_value(""))
    ("h,help", "show help");
  // clang-format on
  return o;
}

// "100" steps or "3%" of the run's steps.
int64_t warmup_steps(const std::string& s, int64_t steps) {
  const bool pct = !s.empty() && s.back() == '%';
  const std::string num = pct ? s.substr(0, s.size() - 1) : s;
  size_t used = 0;
  double v = -1;
  try {
    v = std::stod(num, &used);
  } catch (const std::exception&) {}
  LR_CHECK(used == num.size() && !num.empty() && v >= 0 && (pct ? v <= 100 : v == std::floor(v)), "--warmup '", s,
           "': expected whole steps (100) or a percentage of the run (3%)");
  return pct ? static_cast<int64_t>(std::llround(v / 100.0 * static_cast<double>(steps))) : static_cast<int64_t>(v);
}

// What needs no file: a bad combination fails now, before loading anything.
void check_run_options(const cxxopts::ParseResult& a) {
  for (const char* req : {"init", "data", "out"}) LR_CHECK(a.count(req), "--", req, " is required (try --help)");
  const std::string method = a["method"].as<std::string>(), adapter = a["adapter"].as<std::string>();
  LR_CHECK(adapter.empty() || method == "lora", "--adapter needs --method lora, got --method ", method);
  for (const char* opt : {"rank", "alpha", "targets", "use-rslora", "init-lora-weights", "use-dora"})
    LR_CHECK(adapter.empty() || !a.count(opt), "--", opt, " cannot be combined with --adapter ", adapter,
             " (its config gives it)");
  LR_CHECK(a["save-peft"].as<std::string>().empty() || method == "lora",
           "--save-peft needs --method lora, got --method ", method);
  LR_CHECK(a["export-merged"].as<std::string>().empty() || method == "lora" || ex::plain_gpt_method(method),
           "--export-merged needs lora, ft, ft-top2 or bitfit (", method,
           " adds modules a GPT-2 directory cannot hold)");
  LR_CHECK(a["val"].as<std::string>().empty() || !a.count("val-frac"), "--val and --val-frac exclude each other");
  data::parse_sft_format(a["format"].as<std::string>());
  ex::check_output_dir("out", a["out"].as<std::string>());
  ex::check_output_dir("save-peft", a["save-peft"].as<std::string>());
  const fs::path out(a["out"].as<std::string>());
  std::error_code ec;
  LR_CHECK(!fs::exists(out / "metrics.json", ec) || !a["resume"].as<std::string>().empty(), "--out ", out.string(),
           " already holds a run (metrics.json): choose another folder, or --resume its checkpoint");
}

ex::FinetuneOptions train_options(const cxxopts::ParseResult& a) {
  ex::FinetuneOptions o = ex::shared_train_options(a);
  o.decay = a["schedule"].as<std::string>();
  o.eval_batches = a["eval-batches"].as<int64_t>();
  return o;
}

// --max-len against the model's window: 0 takes the window, more than it is an error.
int64_t max_len_of(const cxxopts::ParseResult& a, const nn::GPT& model) {
  const int64_t max_len = a["max-len"].as<int64_t>(), window = model.config.n_positions;
  LR_CHECK(max_len <= window, "--max-len ", max_len, " exceeds the model's context of ", window, " tokens");
  return max_len > 0 ? max_len : window;
}

ex::FinetuneDataOptions data_options(const cxxopts::ParseResult& a, int64_t max_len) {
  ex::FinetuneDataOptions d;
  d.train = a["data"].as<std::string>();
  d.valid = a["val"].as<std::string>();
  d.val_frac = a["val-frac"].as<float>();
  d.format = data::parse_sft_format(a["format"].as<std::string>());
  d.max_len = max_len;
  return d;
}

// The trained model out: the adapter (or the whole model) in --out, then --save-peft / --export-merged.
void save_outputs(const cxxopts::ParseResult& a, nn::GPT& model, const std::string& method) {
  const fs::path out(a["out"].as<std::string>());
  if (method == "lora") lora::save_adapter((out / "adapter.safetensors").string(), model, lora::lora_config_of(model));
  if (ex::plain_gpt_method(method)) nn::save_model((out / "model.safetensors").string(), model);
  if (const std::string peft = a["save-peft"].as<std::string>(); !peft.empty())
    lora::save_peft(peft, model, lora::lora_config_of(model), a["init"].as<std::string>());
  if (const std::string merged = a["export-merged"].as<std::string>(); !merged.empty()) {
    if (method == "lora")
      lora::export_merged_hf(merged, model);
    else
      nn::save_hf_dir(merged, model);
  }
}

// The trained model and the run's metrics, curve and summary into --out.
void write_run(const cxxopts::ParseResult& a, ex::FinetuneModel& em, const lora::MethodConfig& mc,
               const ex::FinetuneOptions& to, const ex::FinetuneDataOptions& dopt, const ex::FinetuneData& d,
               const ex::CheckpointOptions& ck, const ex::TrainResult& tr) {
  const fs::path out(a["out"].as<std::string>());
  const int64_t exported = ex::use_best_weights(*em.model, tr);
  save_outputs(a, *em.model, mc.method);
  nlohmann::json metrics = ex::result_json(tr, exported);
  metrics["data"] = {{"train", dopt.train},
                     {"valid", dopt.valid},
                     {"format", data::sft_format_name(d.format)},
                     {"train_examples", d.train->size()},
                     {"valid_examples", d.valid ? d.valid->size() : 0},
                     {"truncated", d.train->num_truncated() + (d.valid ? d.valid->num_truncated() : 0)},
                     {"max_len", to.max_len}};
  metrics["model"] = {{"init", a["init"].as<std::string>()},
                      {"method", mc.method},
                      {"trainable_params", em.trainable},
                      {"total_params", em.total_params},
                      {"fingerprint", ck.fingerprint}};
  metrics["threads"] = tensor::num_threads();
  if (to.precision != tensor::Precision::fp32)
    metrics["precision"] = tensor::precision_name(to.precision),
    metrics["bf16_gemm"] = autograd::bf16_gemm_info(to.device);
  ex::write_json((out / "metrics.json").string(), metrics);
  ex::write_curve_svg((out / "curve.svg").string(), tr);
  ex::print_summary(tr, exported, out.string());
}

int finetune_main(int argc, char** argv) {
  cxxopts::Options options = make_options();
  auto a = ex::parse_args(options, argc, argv);
  check_run_options(a);
  tensor::set_num_threads(a["threads"].as<int>());
  const data::Gpt2Bpe tok = data::Gpt2Bpe::from_dir(kSrc + "/data/assets/gpt2-bpe");
  const lora::MethodConfig mc = ex::method_config(a);
  ex::FinetuneOptions to = train_options(a);

  // Everything is read and checked before the first write: model, method, data, the warmup.
  ex::FinetuneModel em = ex::prepare_model(a["init"].as<std::string>(), tok, mc, to, a["adapter"].as<std::string>());
  to.max_len = max_len_of(a, *em.model);
  const ex::FinetuneDataOptions dopt = data_options(a, to.max_len);
  const ex::FinetuneData d = ex::load_finetune_data(dopt, tok);
  to.warmup = warmup_steps(a["warmup"].as<std::string>(), ex::train_steps(to, d.train->size()));
  ex::print_setup(em, mc.method, *d.train, dopt.train + ":");
  ex::print_data(d);

  const fs::path out(a["out"].as<std::string>());
  if (optim::dist::is_root()) fs::create_directories(out);  // under mpirun rank 0 alone writes
  ex::CheckpointOptions ck{
      (out / "checkpoint.safetensors").string(), a["save-every"].as<int64_t>(), a["stop-after"].as<int64_t>(),
      a["resume"].as<std::string>(),
      ex::run_fingerprint(to, mc, a["init"].as<std::string>(), a["adapter"].as<std::string>(), d.identity)};
  const ex::TrainResult tr = ex::train_loop(em, *d.train, d.valid.get(), to, ck);  // the loop
  if (static_cast<int64_t>(tr.losses.size()) < tr.steps) {
    std::cout << "stopped after step " << tr.losses.size() << " of " << tr.steps << "; continue with --resume "
              << ck.path << "\n";
    return 0;
  }

  if (optim::dist::is_root()) write_run(a, em, mc, to, dopt, d, ck, tr);
  optim::dist::barrier();  // the other ranks wait for rank 0's files
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return ex::run_main(argc, argv, finetune_main); }
