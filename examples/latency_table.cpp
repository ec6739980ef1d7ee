// latency_table: the paper's Table 1 (Hu et al., 2021, Section 3): inference latency of one forward
// pass of GPT-2 medium (random weights, ids -> logits, NoGradGuard, eval context) for the base model
// (= fine-tuned = merged LoRA: merging folds BA into W, Section 4.2, so it runs the base's exact
// GEMMs), Adapter-L and Adapter-H at the paper's |Θ| of 0.5M and 11M, and unmerged LoRA (r=4 on
// Wq, Wv) for reference. The paper ran batch×seq 32×512, 16×256 and 1×128 on an RTX8000; on a CPU
// the default is 1×128 and 2×128 (--grid full runs the paper's three settings).
// Variants are timed interleaved, round by round in a rotating order, so a change in machine load
// hits them alike; "vs base" is the median over rounds of time(variant)/time(base) - 1.
//
// Adapter dims are the ones whose count is nearest Table 1's |Θ| (printed). What to expect on a CPU:
// the adapters' cost is their extra FLOPs, 2·|Θ| per token (+3% of GPT-2 M's ~90 GFLOP forward at
// 1x128 for 11M, +0.15% for 0.5M); the paper's +20-30% at batch 1 on a GPU comes from launching the
// adapters' small sequential kernels, which a CPU forward of this size does not feel.
//
//   ./build/latency_table                          # 1x128, 2x128
//   ./build/latency_table --grid full --repeats 20 --json out/latency_table.json
//
// Measured 2026-11-22 on the shared 2-core AMD EPYC VM while four other jobs ran (load average ~8):
// the default run took 620 s (2 threads contending: 315 s of CPU time); --grid 1x128 --threads 1
// took 87 s. One 1x128 forward costs ~1.1 s of CPU, so on a quiet 2-core machine the default run
// should take about 1.5 minutes. The timings above were noise-dominated; rerun on a quiet machine.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "autograd/tape.h"
#include "examples/common/cli.h"
#include "lora/methods.h"
#include "tensor/parallel.h"

namespace {
using namespace lowrank;
using examples::Timer;

struct Options {
  std::string model = "gpt2-medium", grid = "default", json;
  int repeats = 5, warmup = 1, threads = 0;
  uint64_t seed = 1;
  tensor::Device device = tensor::Device::CPU;
};

struct Setting {
  int64_t B, T;
};

// What a variant puts into each block; swapping it in twice leaves the base model as it was.
struct BlockMods {
  std::unique_ptr<nn::Layer> adapter_attn, adapter_mlp;
  std::unique_ptr<nn::Linear> c_attn;  // null: the block keeps its own
};

struct Variant {
  std::string name;
  double paper_theta = 0;  // Table 1's |Θ| (adapters), 0 for the others
  int64_t dim = 0, trainable = 0;
  std::vector<BlockMods> blocks;
  std::vector<double> times;  // seconds, one per timed round
};

void swap_variant(nn::GPT& g, Variant& v) {
  for (size_t i = 0; i < v.blocks.size(); ++i) {
    nn::Block& b = *g.h[i];
    std::swap(b.adapter_attn, v.blocks[i].adapter_attn);
    std::swap(b.adapter_mlp, v.blocks[i].adapter_mlp);
    if (v.blocks[i].c_attn) std::swap(b.attn.c_attn, v.blocks[i].c_attn);
  }
}

// The bottleneck d whose count is nearest the paper's |Θ| (Table 1 gives counts, not dims).
int64_t nearest_dim(const nn::GPTConfig& cfg, const std::string& method, double theta) {
  lora::MethodConfig m;
  m.method = method;
  int64_t best = 1;
  double best_err = INFINITY;
  for (int64_t d = 1; d <= cfg.n_embd; ++d) {
    m.adapter_dim = d;
    const double err = std::fabs(static_cast<double>(lora::trainable_count(cfg, m)) - theta);
    if (err < best_err) best = d, best_err = err;
  }
  return best;
}

// Applies the adapter to g, then moves the new modules out into the variant: g is the base again.
Variant make_adapter(nn::GPT& g, const std::string& method, const char* label, double theta, Rng& rng) {
  lora::MethodConfig m;
  m.method = method;
  m.adapter_dim = nearest_dim(g.config, method, theta);
  Variant v{label, theta, m.adapter_dim, lora::apply_method(g, m, rng), {}, {}};
  for (auto& b : g.h) v.blocks.push_back({std::move(b->adapter_attn), std::move(b->adapter_mlp), nullptr});
  return v;
}

// LoRA r=4 on Wq, Wv (the paper's GPT-2 setting, Appendix D.3), left unmerged: two extra thin GEMMs
// per adapted slice. The plain c_attn modules go back into g.
Variant make_lora(nn::GPT& g, Rng& rng) {
  std::vector<std::unique_ptr<nn::Linear>> plain;
  for (auto& b : g.h) plain.push_back(std::make_unique<nn::Linear>(*b->attn.c_attn));
  lora::MethodConfig m;  // method "lora", r = 4, alpha = 32, targets q, v
  Variant v{"LoRA r=4 q,v unmerged", 0, m.lora.r, lora::apply_method(g, m, rng), {}, {}};
  for (size_t i = 0; i < g.h.size(); ++i) {
    v.blocks.push_back({nullptr, nullptr, std::move(g.h[i]->attn.c_attn)});
    g.h[i]->attn.c_attn = std::move(plain[i]);
  }
  return v;
}

std::vector<Setting> parse_grid(const std::string& grid) {
  if (grid == "default") return {{1, 128}, {2, 128}};
  if (grid == "full") return {{32, 512}, {16, 256}, {1, 128}};  // Table 1's columns
  std::vector<Setting> out;
  for (const std::string& s : examples::split_list(grid)) {
    long long B = 0, T = 0;
    char tail = 0;
    LR_CHECK(std::sscanf(s.c_str(), "%lldx%lld%c", &B, &T, &tail) == 2 && B > 0 && T > 0, "--grid: '", s,
             "' is not BxT (e.g. 1x128), 'default' or 'full'");
    out.push_back({B, T});
  }
  LR_CHECK(!out.empty(), "--grid is empty");
  return out;
}

// Table 1 of the paper (ms on an RTX8000, mean of 100 trials) for the matching row and column.
struct Paper {
  double ms, pct;
};
bool paper_value(const Setting& s, const std::string& name, double theta, Paper& out) {
  struct Cell {
    int64_t B, T;
    double theta;
    Paper base, al, ah;
  };
  static const Cell cells[] = {{32, 512, 0.5e6, {1449.4, 0}, {1482.0, 2.2}, {1492.2, 3.0}},
                               {16, 256, 11e6, {338.0, 0}, {354.8, 5.0}, {366.3, 8.4}},
                               {1, 128, 11e6, {19.8, 0}, {23.9, 20.7}, {25.8, 30.3}}};
  for (const Cell& c : cells) {
    if (c.B != s.B || c.T != s.T) continue;
    const bool base = name.rfind("base", 0) == 0, same_theta = theta == c.theta;
    const bool al = same_theta && name.rfind("Adapter-L", 0) == 0, ah = same_theta && name.rfind("Adapter-H", 0) == 0;
    if (!base && !al && !ah) return false;
    out = base ? c.base : al ? c.al : c.ah;
    return true;
  }
  return false;
}

Options parse(int argc, char** argv) {
  cxxopts::Options spec("latency_table", "Paper Table 1: forward latency of GPT-2 M with adapters vs. base/LoRA");
  // clang-format off
  spec.add_options()("model", "model preset", cxxopts::value<std::string>()->default_value("gpt2-medium"))(
      "grid", "'default' (1x128,2x128), 'full' (32x512,16x256,1x128) or a list like 1x128,4x64",
      cxxopts::value<std::string>()->default_value("default"))(
      "repeats", "timed forwards per variant and setting", cxxopts::value<int>()->default_value("5"))(
      "warmup", "untimed rounds first", cxxopts::value<int>()->default_value("1"))(
      "threads", "threads (0 = all cores)", cxxopts::value<int>()->default_value("0"))(
      "device", "cpu or cuda (a GPU build; --grid full is the paper's GPU grid)",
      cxxopts::value<std::string>()->default_value("cpu"))(
      "seed", "weights and ids", cxxopts::value<uint64_t>()->default_value("1"))(
      "json", "write results to this JSON file", cxxopts::value<std::string>())("h,help", "show this help");
  // clang-format on
  const auto r = examples::parse_args(spec, argc, argv);
  Options o{r["model"].as<std::string>(), r["grid"].as<std::string>(), "",
            r["repeats"].as<int>(),       r["warmup"].as<int>(),       r["threads"].as<int>(),
            r["seed"].as<uint64_t>()};
  if (r.count("json")) o.json = r["json"].as<std::string>();
  o.device = examples::device_option(r);
  LR_CHECK(o.repeats >= 1, "--repeats must be >= 1, got ", o.repeats);
  LR_CHECK(o.warmup >= 0, "--warmup must be >= 0, got ", o.warmup);
  LR_CHECK(o.threads >= 0, "--threads must be >= 0, got ", o.threads);
  return o;
}

// Runs warmup + repeats rounds of every variant on one setting; fills each variant's times.
void time_setting(nn::GPT& g, std::vector<Variant>& vs, const Setting& s, const Options& o, Rng& rng,
                  examples::ProgressBar& bar, long& done) {
  std::vector<int32_t> ids(static_cast<size_t>(s.B * s.T));
  for (int32_t& id : ids) id = static_cast<int32_t>(rng.randint(g.config.vocab_size));
  autograd::NoGradGuard no_grad;
  const nn::Context eval;  // training = false: no dropout
  for (Variant& v : vs) v.times.clear();
  for (int round = 0; round < o.warmup + o.repeats; ++round)
    for (size_t j = 0; j < vs.size(); ++j) {
      Variant& v = vs[(j + round) % vs.size()];  // rotate who goes first: no fixed order effect
      swap_variant(g, v);
      Timer t;
      Tensor logits = g.forward(ids, s.B, s.T, eval);
      if constexpr (tensor::kCudaBuilt)
        if (o.device == tensor::Device::CUDA) cuda::synchronize();  // kernels are asynchronous
      const double sec = t.seconds();
      swap_variant(g, v);
      if (round >= o.warmup) v.times.push_back(sec);
      bar.update(++done);
    }
}

using examples::fmt;

// Per-round ratio to the base (vs[0]) of the same round: robust to load drift between rounds.
double paired_increase(const Variant& v, const Variant& base) {
  std::vector<double> r;
  for (size_t i = 0; i < v.times.size(); ++i) r.push_back(v.times[i] / base.times[i]);
  return examples::median(r) - 1.0;
}

void report(const Setting& s, std::vector<Variant>& vs, std::vector<std::vector<std::string>>& rows,
            nlohmann::json& out) {
  for (const Variant& v : vs) {
    const double med = examples::median(v.times) * 1e3;
    const examples::Spread sp = examples::spread(v.times);
    const double inc = paired_increase(v, vs[0]);
    Paper p{};
    const bool has_paper = paper_value(s, v.name, v.paper_theta, p);
    rows.push_back({std::to_string(s.B) + "x" + std::to_string(s.T), v.name, v.dim ? std::to_string(v.dim) : "-",
                    v.trainable ? fmt("%.2fM", v.trainable / 1e6) : "-", fmt("%.1f", med),
                    fmt("%.1f", sp.q1 * 1e3) + "-" + fmt("%.1f", sp.q3 * 1e3),
                    &v == &vs[0] ? "" : fmt("%+.1f%%", 100 * inc),
                    has_paper ? fmt("%.1f", p.ms) + (p.pct > 0 ? fmt(" (%+.1f%%)", p.pct) : "") : ""});
    nlohmann::json j = {{"B", s.B},
                        {"T", s.T},
                        {"variant", v.name},
                        {"dim", v.dim},
                        {"trainable", v.trainable},
                        {"median_ms", med},
                        {"q1_ms", sp.q1 * 1e3},
                        {"q3_ms", sp.q3 * 1e3},
                        {"min_ms", sp.min * 1e3},
                        {"max_ms", sp.max * 1e3},
                        {"increase_vs_base", inc},
                        {"times_s", v.times}};
    if (has_paper) j["paper"] = {{"ms", p.ms}, {"increase_pct", p.pct}};
    out.push_back(j);
  }
}

int run(int argc, char** argv) {
  const Options o = parse(argc, argv);
  const std::vector<Setting> grid = parse_grid(o.grid);
  tensor::set_num_threads(o.threads);
  const nn::GPTConfig cfg = nn::config_by_name(o.model);
  for (const Setting& s : grid)
    LR_CHECK(s.T <= cfg.n_positions, "--grid: T=", s.T, " exceeds ", o.model, "'s n_positions ", cfg.n_positions);
  Timer total;
  Rng rng(o.seed);
  nn::GPT g(cfg, rng, o.device);
  std::vector<Variant> vs;
  vs.push_back({"base (= FT = merged LoRA)", 0, 0, 0, {}, {}});
  vs.push_back(make_adapter(g, "adapter-l", "Adapter-L 0.5M", 0.5e6, rng));
  vs.push_back(make_adapter(g, "adapter-l", "Adapter-L 11M", 11e6, rng));
  vs.push_back(make_adapter(g, "adapter-h", "Adapter-H 0.5M", 0.5e6, rng));
  vs.push_back(make_adapter(g, "adapter-h", "Adapter-H 11M", 11e6, rng));
  vs.push_back(make_lora(g, rng));
  std::printf("%s, %d threads, %d warmup + %d timed forwards per variant and setting\n", o.model.c_str(),
              tensor::num_threads(), o.warmup, o.repeats);
  examples::ProgressBar bar(static_cast<long>(grid.size() * vs.size()) * (o.warmup + o.repeats));
  long done = 0;
  std::vector<std::vector<std::string>> rows;
  nlohmann::json results = nlohmann::json::array();
  for (const Setting& s : grid) {
    time_setting(g, vs, s, o, rng, bar, done);
    report(s, vs, rows, results);
  }
  bar.finish();
  examples::print_table({"BxT", "variant", "d/r", "params", "median ms", "IQR ms", "vs base", "paper ms (RTX8000)"},
                        rows);
  std::printf("total %.1f s\n", total.seconds());
  if (!o.json.empty())
    examples::write_json(o.json, {{"benchmark", "latency_table"},
                                  {"model", o.model},
                                  {"threads", tensor::num_threads()},
                                  {"device", tensor::device_name(o.device)},
                                  {"repeats", o.repeats},
                                  {"warmup", o.warmup},
                                  {"seed", o.seed},
                                  {"total_s", total.seconds()},
                                  {"results", results}});
  return 0;
}
}  // namespace

int main(int argc, char** argv) { return lowrank::examples::run_main(argc, argv, run); }
