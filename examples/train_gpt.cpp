// train_gpt: pretrain a small GPT on text from the repo (TinyShakespeare by default).
//   ./build/train_gpt                       # defaults finish in minutes on 2 cores
//   ./build/train_gpt --steps 2000 --save out/gpt.safetensors --sample 300
//   ./build/train_gpt --resume out/gpt.safetensors --steps 4000
//   ./build/train_gpt --device cuda --model gpt2 --block-size 1024   # a GPU build on a GPU
// Each step: batch -> forward -> loss -> zero_grad -> backward -> clip -> AdamW step.
#include <cmath>
#include <iostream>
#include <memory>

#include "autograd/ops.h"
#include "data/bpe.h"
#include "data/char_tokenizer.h"
#include "data/text.h"
#include "examples/common/cli.h"
#include "nn/checkpoint.h"
#include "nn/sample.h"
#include "optim/checkpoint.h"
#include "optim/schedule.h"
#include "tensor/parallel.h"

using namespace lowrank;
namespace ex = lowrank::examples;

namespace {

const std::string kSrc = LOWRANK_SOURCE_DIR;

cxxopts::Options make_options() {
  cxxopts::Options o("train_gpt", "Pretrain a small GPT on text (AdamW, warmup + cosine decay)");
  // clang-format off
  o.add_options()
    ("data", "comma-separated text files", cxxopts::value<std::string>()->default_value(kSrc + "/data/assets/tinyshakespeare/input.txt"))
    ("tokenizer", "bpe (GPT-2) or char", cxxopts::value<std::string>()->default_value("bpe"))
    ("model", "config preset (tiny, mini, gpt2, ...)", cxxopts::value<std::string>()->default_value("mini"))
    ("n-layer", "override layers", cxxopts::value<int64_t>()->default_value("0"))
    ("n-embd", "override width C", cxxopts::value<int64_t>()->default_value("0"))
    ("n-head", "override heads", cxxopts::value<int64_t>()->default_value("0"))
    ("block-size", "sequence length T", cxxopts::value<int64_t>()->default_value("128"))
    ("batch-size", "sequences per step B", cxxopts::value<int64_t>()->default_value("8"))
    ("accum", "micro-batches per step (gradient accumulation)", cxxopts::value<int64_t>()->default_value("1"))
    ("steps", "optimizer steps", cxxopts::value<int64_t>()->default_value("600"))
    ("lr", "peak learning rate", cxxopts::value<float>()->default_value("2e-3"))
    ("min-lr", "final learning rate", cxxopts::value<float>()->default_value("1e-4"))
    ("warmup", "warmup steps", cxxopts::value<int64_t>()->default_value("50"))
    ("decay", "cosine, linear or constant", cxxopts::value<std::string>()->default_value("cosine"))
    ("weight-decay", "AdamW decoupled decay", cxxopts::value<float>()->default_value("0.1"))
    ("clip", "max global gradient norm (0: off)", cxxopts::value<float>()->default_value("1.0"))
    ("dropout", "dropout probability", cxxopts::value<float>()->default_value("0.0"))
    ("eval-every", "steps between validation runs", cxxopts::value<int64_t>()->default_value("100"))
    ("eval-batches", "validation batches per run (0: all)", cxxopts::value<int64_t>()->default_value("20"))
    ("save", "checkpoint path (written atomically)", cxxopts::value<std::string>()->default_value(""))
    ("save-every", "steps between checkpoints (0: only at the end)", cxxopts::value<int64_t>()->default_value("0"))
    ("export", "at the end, also write the model alone (no optimizer state) as bfloat16 here", cxxopts::value<std::string>()->default_value(""))
    ("resume", "continue from this checkpoint", cxxopts::value<std::string>()->default_value(""))
    ("init", "start from this model file's weights and config (continued pretraining; fresh optimizer)",
     cxxopts::value<std::string>()->default_value(""))
    ("sample", "tokens of text to generate at the end", cxxopts::value<int64_t>()->default_value("0"))
    ("temperature", "sampling temperature", cxxopts::value<float>()->default_value("0.8"))
    ("top-k", "sample among the k most likely tokens", cxxopts::value<int64_t>()->default_value("40"))
    ("prompt", "text to start sampling from", cxxopts::value<std::string>()->default_value("\n"))
    ("seed", "random seed", cxxopts::value<uint64_t>()->default_value("1337"))
    ("device", "cpu or cuda (a GPU build)", cxxopts::value<std::string>()->default_value("cpu"))
    ("threads", "CPU threads (0: all cores)", cxxopts::value<int>()->default_value("0"))
    ("json", "write final metrics to this JSON file", cxxopts::value<std::string>()->default_value(""))
    ("h,help", "show help");
  // clang-format on
  return o;
}

std::string read_corpus(const std::string& files) {
  std::string text;
  for (const std::string& f : ex::split_list(files)) text += data::read_file(f);
  LR_CHECK(!text.empty(), "--data ", files, ": no text");
  return text;
}

std::unique_ptr<data::Tokenizer> make_tokenizer(const std::string& kind, const std::string& text,
                                                const std::map<std::string, std::string>& resume_meta) {
  if (kind == "bpe") return std::make_unique<data::Gpt2Bpe>(data::Gpt2Bpe::from_dir(kSrc + "/data/assets/gpt2-bpe"));
  LR_CHECK(kind == "char", "--tokenizer must be bpe or char, got '", kind, "'");
  auto it = resume_meta.find("tokenizer.chars");  // a resumed char model keeps its vocabulary
  if (it != resume_meta.end()) return std::make_unique<data::CharTokenizer>(data::CharTokenizer::from_text(it->second));
  return std::make_unique<data::CharTokenizer>(data::CharTokenizer::from_text(text));
}

nn::GPTConfig make_config(const cxxopts::ParseResult& a, int32_t vocab_size) {
  nn::GPTConfig c = nn::config_by_name(a["model"].as<std::string>());
  c.vocab_size = vocab_size;
  c.n_positions = a["block-size"].as<int64_t>();
  if (a["n-layer"].as<int64_t>() > 0) c.n_layer = a["n-layer"].as<int64_t>();
  if (a["n-embd"].as<int64_t>() > 0) c.n_embd = a["n-embd"].as<int64_t>();
  if (a["n-head"].as<int64_t>() > 0) c.n_head = a["n-head"].as<int64_t>();
  c.dropout = a["dropout"].as<float>();
  c.validate();
  return c;
}

// A fresh model from the options, or (--init) the model of a file: its config, its weights.
std::unique_ptr<nn::GPT> make_model(const cxxopts::ParseResult& a, int32_t vocab_size, Rng& init_rng) {
  const std::string init = a["init"].as<std::string>();
  if (init.empty()) return std::make_unique<nn::GPT>(make_config(a, vocab_size), init_rng, ex::device_option(a));
  for (const char* opt : {"model", "n-layer", "n-embd", "n-head", "dropout"})  // the file's config decides these
    LR_CHECK(a.count(opt) == 0, "--", opt, " cannot be combined with --init ", init, " (its config gives the model)");
  std::unique_ptr<nn::GPT> m = nn::load_model(init, init_rng, ex::device_option(a));
  LR_CHECK(m->config.vocab_size == vocab_size, "--init ", init, ": vocabulary ", m->config.vocab_size,
           " but the tokenizer has ", vocab_size);
  LR_CHECK(a["block-size"].as<int64_t>() <= m->config.n_positions, "--init ", init, ": --block-size ",
           a["block-size"].as<int64_t>(), " exceeds its n_positions ", m->config.n_positions);
  return m;
}

// Mean validation loss over the first n fixed validation batches (all when n == 0).
double evaluate(nn::GPT& model, const data::LMDataset& ds, int64_t B, int64_t T, int64_t n) {
  autograd::NoGradGuard no_grad;
  const int64_t total = ds.num_val_batches(B, T);
  LR_CHECK(total > 0, "validation split too small for B=", B, " T=", T);
  n = n <= 0 ? total : std::min(n, total);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    data::LMBatch b = ds.val_batch(i, B, T);
    sum += autograd::cross_entropy(model.forward(b.inputs, B, T, {}), b.targets).item();
  }
  return sum / static_cast<double>(n);
}

// Per-step seeds: batch k and its dropout masks depend only on (seed, k), so a resumed run
// draws exactly what the uninterrupted run would have.
uint64_t step_seed(uint64_t seed, int64_t step, uint64_t stream) {
  return seed * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(step) * 0xBF58476D1CE4E5B9ULL + stream;
}

// Rank r's rows of a global batch of B sequences (all of it in a group of one).
data::LMBatch rank_rows(data::LMBatch b) {
  const int64_t n = optim::dist::size(), rows = b.B / n, from = optim::dist::rank() * rows * b.T;
  if (n == 1) return b;
  b.inputs = std::vector<int32_t>(b.inputs.begin() + from, b.inputs.begin() + from + rows * b.T);
  b.targets = std::vector<int32_t>(b.targets.begin() + from, b.targets.begin() + from + rows * b.T);
  b.B = rows;
  return b;
}

// One optimizer step over `accum` micro-batches; returns the mean loss. Under mpirun every rank draws
// the same global batch and trains on its rows; every row has T tokens, so each rank's share of the
// loss is 1/N and the summed gradients are the whole batch's (docs/data_parallel.md).
float train_step(nn::GPT& model, optim::AdamW& opt, const data::LMDataset& ds, const cxxopts::ParseResult& a,
                 int64_t step, float lr) {
  const int64_t B = a["batch-size"].as<int64_t>(), T = a["block-size"].as<int64_t>(), accum = a["accum"].as<int64_t>();
  const uint64_t seed = a["seed"].as<uint64_t>();
  const int rank = optim::dist::rank(), n = optim::dist::size();
  Rng batch_rng(step_seed(seed, step, 1));
  Rng drop_rng(rank == 0 ? step_seed(seed, step, 2) : ex::rank_dropout_seed(seed, rank, step));
  opt.zero_grad();
  double loss_sum = 0.0;
  const float weight = 1.f / static_cast<float>(accum * n);
  for (int64_t m = 0; m < accum; ++m) {
    const data::LMBatch b = rank_rows(ds.train_batch(B, T, batch_rng));
    Tensor logits = model.forward(b.inputs, b.B, T, nn::Context{true, &drop_rng});
    Tensor loss = autograd::cross_entropy(logits, b.targets);
    const float l = loss.item();
    LR_CHECK(std::isfinite(l), "loss is ", l, " at step ", step, " (lower --lr, or check the data)");
    loss_sum += l;
    autograd::backward(weight == 1.f ? loss : autograd::scale(loss, weight));
  }
  if (n > 1) {  // the whole batch's gradient and loss on every rank
    ex::sum_gradients(model.named_parameters());
    loss_sum = optim::dist::allreduce_sum(loss_sum) / n;
  }
  if (a["clip"].as<float>() > 0.f) optim::clip_grad_norm(model.named_parameters(), a["clip"].as<float>());
  opt.step(lr);
  return static_cast<float>(loss_sum / static_cast<double>(accum));
}

}  // namespace

namespace {

struct Run {
  std::unique_ptr<data::Tokenizer> tok;
  std::unique_ptr<data::LMDataset> ds;
  std::unique_ptr<nn::GPT> model;
  std::unique_ptr<optim::AdamW> opt;
  optim::Schedule sched;
  int64_t start_step = 0;
  double unigram = 0.0;
};

std::map<std::string, std::string> resume_meta(const std::string& path) {
  return path.empty() ? std::map<std::string, std::string>{} : tensor::load_safetensors(path).metadata;
}

Run setup(const cxxopts::ParseResult& a) {
  Run r;
  const std::string resume = a["resume"].as<std::string>();
  std::map<std::string, std::string> meta = resume_meta(resume);
  std::string text = read_corpus(a["data"].as<std::string>());
  r.tok = make_tokenizer(a["tokenizer"].as<std::string>(), text, meta);
  r.ds = std::make_unique<data::LMDataset>(r.tok->encode(text), 0.1f);
  r.unigram = data::unigram_baseline(*r.ds, r.tok->vocab_size());
  Rng init_rng(a["seed"].as<uint64_t>());
  // Parameters are drawn on the host from init_rng then copied: a seed gives the same model on any device.
  r.model = make_model(a, r.tok->vocab_size(), init_rng);
  optim::AdamWConfig oc;
  oc.beta2 = 0.95f;
  oc.weight_decay = a["weight-decay"].as<float>();
  r.opt = std::make_unique<optim::AdamW>(r.model->named_parameters(), oc);
  r.sched = {a["lr"].as<float>(), a["warmup"].as<int64_t>(), a["steps"].as<int64_t>(), a["decay"].as<std::string>(),
             a["min-lr"].as<float>()};
  r.sched.validate();
  if (!resume.empty()) {
    optim::load_training(resume, *r.model, *r.opt);
    r.start_step = r.opt->steps();
    LR_CHECK(a["steps"].as<int64_t>() >= r.start_step, "--steps ", a["steps"].as<int64_t>(), " is below the step ",
             r.start_step, " of --resume ", resume, " (--steps counts from the start of the run)");
    std::cout << "resumed " << resume << " at step " << r.start_step << "\n";
  }
  return r;
}

// The tokenizer's name (and a char model's vocabulary) as checkpoint metadata.
std::map<std::string, std::string> tokenizer_meta(const Run& r, const std::string& tokenizer) {
  std::map<std::string, std::string> meta{{"tokenizer", tokenizer}};
  if (tokenizer == "char") {
    std::vector<int32_t> all(static_cast<size_t>(r.tok->vocab_size()));
    for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int32_t>(i);
    meta["tokenizer.chars"] = r.tok->decode(all);
  }
  return meta;
}

void save(const Run& r, const std::string& path, const std::string& tokenizer) {
  optim::save_training(path, *r.model, *r.opt, tokenizer_meta(r, tokenizer));
}

int train_main(int argc, char** argv) {
  cxxopts::Options options = make_options();
  auto a = ex::parse_args(options, argc, argv);
  tensor::set_num_threads(a["threads"].as<int>());
  Run r = setup(a);
  const int64_t B = a["batch-size"].as<int64_t>(), T = a["block-size"].as<int64_t>();
  ex::check_batch_split(B);
  ex::broadcast_state(r.model->named_parameters(), r.opt.get());  // under mpirun: rank 0's bits everywhere
  const bool root = optim::dist::is_root();                       // rank 0 alone writes
  const int64_t steps = a["steps"].as<int64_t>(), eval_every = a["eval-every"].as<int64_t>();
  const int64_t evals = a["eval-batches"].as<int64_t>(), save_every = a["save-every"].as<int64_t>();
  const std::string save_path = a["save"].as<std::string>(), tok_name = a["tokenizer"].as<std::string>();
  std::cout << "model " << r.model->config.name << ": " << r.model->num_parameters() << " parameters, "
            << r.model->config.n_layer << " layers, C=" << r.model->config.n_embd << ", T=" << T << "\n"
            << "data: " << r.ds->train_tokens() << " train / " << r.ds->val_tokens() << " val tokens (" << tok_name
            << ", V=" << r.tok->vocab_size() << "), unigram baseline " << r.unigram << " nats\n";

  ex::ProgressBar bar(steps - r.start_step);
  ex::Timer timer;
  float loss = NAN;
  double val = NAN;
  for (int64_t step = r.start_step; step < steps; ++step) {
    loss = train_step(*r.model, *r.opt, *r.ds, a, step, r.sched.lr_at(step));
    const double tok_s =
        static_cast<double>((step - r.start_step + 1) * B * T * a["accum"].as<int64_t>()) / timer.seconds();
    bar.update(step - r.start_step + 1, loss, tok_s);
    if ((eval_every > 0 && (step + 1) % eval_every == 0) || step + 1 == steps) {  // 0: only at the end
      val = evaluate(*r.model, *r.ds, B, T, evals);
      std::fprintf(stderr, "\nstep %ld: train loss %.4f, val loss %.4f, lr %.2e\n", static_cast<long>(step + 1), loss,
                   val, r.sched.lr_at(step));
    }
    if (root && !save_path.empty() && save_every > 0 && (step + 1) % save_every == 0) save(r, save_path, tok_name);
  }
  bar.finish();
  const double seconds = timer.seconds();
  const double tok_per_s = static_cast<double>((steps - r.start_step) * B * T * a["accum"].as<int64_t>()) / seconds;
  if (root && !save_path.empty()) save(r, save_path, tok_name);
  if (root && !a["export"].as<std::string>().empty())
    nn::save_model(a["export"].as<std::string>(), *r.model, tokenizer_meta(r, tok_name), "BF16");
  if (std::isnan(val)) val = evaluate(*r.model, *r.ds, B, T, evals);
  const double full_val = evaluate(*r.model, *r.ds, B, T, 0);

  if (root && a["sample"].as<int64_t>() > 0) {
    Rng srng(a["seed"].as<uint64_t>() + 7);
    nn::SampleOptions so{a["sample"].as<int64_t>(), a["temperature"].as<float>(), a["top-k"].as<int64_t>(),
                         r.tok->eos_id()};
    std::vector<int32_t> prompt = r.tok->encode(a["prompt"].as<std::string>());
    if (prompt.empty()) prompt.push_back(0);
    std::cout << "\n--- sample ---\n"
              << r.tok->decode(prompt) << r.tok->decode(nn::sample(*r.model, prompt, so, srng)) << "\n--------------\n";
  }
  ex::print_table({"metric", "value"}, {{"parameters", std::to_string(r.model->num_parameters())},
                                        {"final train loss", std::to_string(loss)},
                                        {"val loss (all val batches)", std::to_string(full_val)},
                                        {"unigram baseline", std::to_string(r.unigram)},
                                        {"tokens/s", std::to_string(static_cast<long>(tok_per_s))},
                                        {"wall time (s)", std::to_string(static_cast<long>(seconds))}});
  if (root && !a["json"].as<std::string>().empty())
    ex::write_json(a["json"].as<std::string>(), {{"model", nn::config_to_json(r.model->config)},
                                                 {"parameters", r.model->num_parameters()},
                                                 {"tokenizer", tok_name},
                                                 {"steps", steps},
                                                 {"batch_size", B},
                                                 {"block_size", T},
                                                 {"final_train_loss", loss},
                                                 {"val_loss", full_val},
                                                 {"unigram_baseline", r.unigram},
                                                 {"tokens_per_s", tok_per_s},
                                                 {"seconds", seconds},
                                                 {"threads", tensor::num_threads()}});
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return ex::run_main(argc, argv, train_main); }
