// bench_step: one training step (forward + cross-entropy + backward + AdamW) of a GPT-2-124M-shaped
// model with random weights, full fine-tuning vs LoRA (r=4 on Wq, Wv), timed step by step.
//   ./build/bench_step                                # B=1, T=1024, FT and LoRA, all cores
//   ./build/bench_step --batch 4 --seq 256 --threads 1 --json out/bench_step.json
//   ./build/bench_step --device cuda --json out/bench_step_gpu.json   # B=8, T=1024 on the GPU
//   ./build/bench_step --model mini --batch 8 --seq 75 --loss-rows 26  # E2E's step: loss on completions
//   ./build/bench_step --methods lora --profile       # + backward per op, GEMMs per shape (CPU)
//   ./build/bench_step --methods lora --precision bf16   # frozen weights' GEMMs in bf16 (docs/precision.md)
// Reports median and spread of the step time, tokens/s, GFLOP/s from the exact FLOP count below,
// the fraction of the GEMM-bound floor (a fixed rate: 622 GFLOP LoRA / 875 GFLOP FT at ~200 GFLOP/s
// = 3.1 s / 4.4 s; also against this machine's sgemm rate and against 80% of its FMA
// peak, both measured in the same run, the peak before and after the steps: the BLAS may not reach
// the cores' peak), peak memory with its breakdown and the optimizer-state bytes (the paper's
// memory/speed claim, Section 4.2). --profile adds where the time went (examples/common/step_profile.h).
// On --device cuda the floor is the GPU's fp32 peak (TF32 off; cuda/device_info.h) and memory is
// the caching allocator's high-water mark.
// A benchmark, not a test: it checks nothing, it measures. Default run: ~2 minutes on 2 cores.
#include <sys/resource.h>

#include <memory>

#include "autograd/ops.h"
#include "autograd/weight_gemm.h"
#include "cuda/device_info.h"
#include "cuda/kernels.h"
#include "examples/common/cli.h"
#include "examples/common/fma_peak.h"
#include "examples/common/step_flops.h"
#include "examples/common/step_profile.h"
#include "lora/methods.h"
#include "nn/config.h"
#include "nn/gpt.h"
#include "optim/adamw.h"
#include "tensor/bf16.h"
#include "tensor/gemm.h"
#include "tensor/gemm_bf16.h"
#include "tensor/parallel.h"
#include "tensor/precision.h"
#include "tensor/storage.h"

using namespace lowrank;
namespace ex = lowrank::examples;

namespace {

cxxopts::Options make_options() {
  cxxopts::Options o("bench_step", "Time a GPT-2-124M training step: full fine-tuning vs LoRA");
  // clang-format off
  o.add_options()
    ("model", "config preset", cxxopts::value<std::string>()->default_value("gpt2"))
    ("device", "cpu or cuda", cxxopts::value<std::string>()->default_value("cpu"))
    ("tf32", "cuda: TF32 tensor-core GEMMs (the fraction of peak stays against the fp32 peak)")
    ("precision", "fp32 | bf16: the frozen weights' GEMMs in bf16 (and attention's products on the cpu), trainable "
     "ones fp32 (ft has no frozen weight)",
     cxxopts::value<std::string>()->default_value("fp32"))
    ("batch", "sequences per step B (0: 1 on cpu, 8 on cuda)", cxxopts::value<int64_t>()->default_value("0"))
    ("seq", "tokens per sequence T", cxxopts::value<int64_t>()->default_value("1024"))
    ("loss-rows", "loss and head on the last L positions of each sequence only, as E2E's completion "
     "loss (0: every position)", cxxopts::value<int64_t>()->default_value("0"))
    ("methods", "comma list of ft, lora", cxxopts::value<std::string>()->default_value("ft,lora"))
    ("rank", "LoRA rank r", cxxopts::value<int64_t>()->default_value("4"))
    ("targets", "LoRA targets", cxxopts::value<std::string>()->default_value("q,v"))
    ("steps", "timed steps per method", cxxopts::value<int>()->default_value("5"))
    ("warmup", "untimed steps first (buffers, caches)", cxxopts::value<int>()->default_value("1"))
    ("floor-gflops", "GEMM rate of the fixed floor (GFLOP/s)", cxxopts::value<double>()->default_value("200"))
    ("threads", "CPU threads (0: all cores)", cxxopts::value<int>()->default_value("0"))
    ("seed", "random seed", cxxopts::value<uint64_t>()->default_value("1"))
    ("profile", "cpu: also time the backward per op and the GEMMs per shape over the timed steps")
    ("json", "write results to this JSON file", cxxopts::value<std::string>()->default_value(""))
    ("h,help", "show help");
  // clang-format on
  return o;
}

// sgemm rate on the largest linear GEMM of the step, (B·T, C)·(C, 4C): this machine's GEMM speed
// (OpenBLAS on the CPU, cuBLAS on the GPU, timed to completion).
double measure_gemm_gflops(int64_t N, int64_t C, Device dev) {
  Rng rng(3);
  Tensor a = Tensor::randn({N, C}, rng).to(dev), b = Tensor::randn({C, 4 * C}, rng).to(dev);
  Tensor c = Tensor::zeros({N, 4 * C}, dev);
  std::vector<double> s;
  for (int i = 0; i < 6; ++i) {
    ex::Timer t;
    if (dev == Device::CUDA) {
      if constexpr (tensor::kCudaBuilt) {
        cuda::gemm(false, false, N, 4 * C, C, 1.f, a.data(), C, b.data(), 4 * C, 0.f, c.data(), 4 * C);
        cuda::synchronize();
      }
    } else {
      tensor::gemm(false, false, N, 4 * C, C, 1.f, a.data(), C, b.data(), 4 * C, 0.f, c.data(), 4 * C);
    }
    if (i > 0) s.push_back(t.seconds());
  }
  return 2.0 * N * C * 4 * C / ex::median(s) / 1e9;
}

// n bf16 values of x, as the bytes of a float tensor (two values a float) on dev.
Tensor bf16_values(const Tensor& x, Device dev) {
  Tensor carrier = Tensor::empty(Shape{(x.numel() + 1) / 2});
  tensor::to_bf16(reinterpret_cast<uint16_t*>(carrier.data()), x.data(), x.numel());
  return carrier.to(dev);
}

// The same product in bf16, operands converted once outside the timing: tensor/gemm_bf16.h on the CPU
// (0 where it does not run), cuBLAS's GemmEx on CUDA (cuda/kernels.h), timed to completion.
double measure_bf16_gemm_gflops(int64_t N, int64_t C, Device dev) {
  if (dev == Device::CPU && !tensor::bf16_gemm_available()) return 0;
  Rng rng(3);
  const Tensor a = bf16_values(Tensor::randn({N, C}, rng), dev), b = bf16_values(Tensor::randn({C, 4 * C}, rng), dev);
  const auto* a16 = reinterpret_cast<const uint16_t*>(a.data());
  const auto* b16 = reinterpret_cast<const uint16_t*>(b.data());
  Tensor c = Tensor::zeros({N, 4 * C}, dev);
  std::vector<double> s;
  for (int i = 0; i < 6; ++i) {
    ex::Timer t;
    if (dev == Device::CUDA) {
      if constexpr (tensor::kCudaBuilt) {
        cuda::gemm_bf16(false, false, N, 4 * C, C, a16, C, b16, 4 * C, 0.f, c.data(), 4 * C);
        cuda::synchronize();
      }
    } else {
      tensor::gemm_bf16(false, false, N, 4 * C, C, a16, C, b16, 4 * C, 0.f, c.data(), 4 * C);
    }
    if (i > 0) s.push_back(t.seconds());
  }
  return 2.0 * N * C * 4 * C / ex::median(s) / 1e9;
}

// Tensor memory high-water mark on the benchmarked device, and its reset.
size_t peak_bytes(Device dev) {
  if constexpr (tensor::kCudaBuilt)
    if (dev == Device::CUDA) return cuda::memory_peak_bytes();
  return tensor::cpu_bytes_peak();
}
void reset_peak(Device dev) {
  if constexpr (tensor::kCudaBuilt)
    if (dev == Device::CUDA) return cuda::reset_memory_peak();
  tensor::reset_cpu_bytes_peak();
}

// B from --batch, where 0 picks the device's default: 1 x 1024 on CPU, 8 x 1024 on a GPU.
int64_t batch_of(const cxxopts::ParseResult& a, Device dev) {
  const int64_t B = a["batch"].as<int64_t>();
  return B > 0 ? B : dev == Device::CUDA ? 8 : 1;
}

double peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1e3;  // ru_maxrss is in KiB on Linux
}

size_t bytes_of(const std::vector<nn::NamedTensor>& ps, bool trainable_only, bool grads) {
  size_t n = 0;
  for (const auto& p : ps) {
    if (trainable_only && !p.tensor.requires_grad()) continue;
    if (grads) {
      if (p.tensor.grad().defined()) n += static_cast<size_t>(p.tensor.grad().numel()) * sizeof(float);
    } else {
      n += static_cast<size_t>(p.tensor.numel()) * sizeof(float);
    }
  }
  return n;
}

struct Result {
  std::string method;
  int64_t trainable = 0;
  std::vector<double> times;
  double loss = 0, flops = 0;
  size_t weights = 0, grads = 0, optimizer = 0, peak = 0;
  int64_t bf16_gemms = 0;   // GEMMs that ran in bf16 over the timed steps (--precision bf16)
  ex::StepProfile profile;  // --profile: over the timed steps
};

// batch -> forward -> loss -> zero_grad -> backward -> step, as in every training example. With loss
// rows (E2E's completion-only loss) the head runs only there, fused with the loss (GPT::head_loss).
float train_step(nn::GPT& model, optim::AdamW& opt, const std::vector<int32_t>& ids,
                 const std::vector<int32_t>& targets, const std::vector<int32_t>& rows, int64_t B, int64_t T,
                 Rng& drop) {
  const nn::Context ctx{true, &drop};
  Tensor loss = rows.empty() ? autograd::cross_entropy(model.forward(ids, B, T, ctx), targets)
                             : model.head_loss(model.hidden(ids, B, T, ctx), rows, targets, {});
  opt.zero_grad();
  autograd::backward(loss);
  opt.step(1e-4f);
  return loss.item();
}

// The rows of (B·T) that carry the loss: the last L positions of each sequence (none: every row).
std::vector<int32_t> loss_rows(int64_t B, int64_t T, int64_t L) {
  std::vector<int32_t> rows;
  for (int64_t b = 0; b < B && L > 0; ++b)
    for (int64_t t = T - L; t < T; ++t) rows.push_back(static_cast<int32_t>(b * T + t));
  return rows;
}

Result bench_method(const std::string& method, const cxxopts::ParseResult& a, Device dev) {
  const int64_t B = batch_of(a, dev), T = a["seq"].as<int64_t>();
  nn::GPTConfig cfg = nn::config_by_name(a["model"].as<std::string>());
  cfg.n_positions = std::max(cfg.n_positions, T);
  cfg.dropout = 0.f;
  Rng rng(a["seed"].as<uint64_t>());
  nn::GPT model(cfg, rng, dev);
  lora::MethodConfig mc;
  mc.method = method;
  mc.lora.r = a["rank"].as<int64_t>();
  mc.lora.dropout = 0.f;  // the FLOP count has no dropout; LoRA's own dropout is a cheap mask anyway
  mc.lora.targets = ex::split_list(a["targets"].as<std::string>());
  Result r;
  r.method = method;
  r.trainable = lora::apply_method(model, mc, rng);
  const std::vector<int32_t> rows = loss_rows(B, T, a["loss-rows"].as<int64_t>());
  r.flops = ex::step_flops(cfg, B, T, mc, rows.empty() ? B * T : static_cast<int64_t>(rows.size()));
  optim::AdamW opt(model.named_parameters(), optim::AdamWConfig{});
  std::vector<int32_t> ids(static_cast<size_t>(B * T)), targets(rows.empty() ? ids.size() : rows.size());
  for (int32_t& i : ids) i = static_cast<int32_t>(rng.next_u64() % static_cast<uint64_t>(cfg.vocab_size));
  for (int32_t& i : targets) i = static_cast<int32_t>(rng.next_u64() % static_cast<uint64_t>(cfg.vocab_size));
  reset_peak(dev);
  const int warmup = a["warmup"].as<int>(), steps = a["steps"].as<int>();
  ex::ProgressBar bar(warmup + steps);
  const bool profile = a.count("profile") > 0;
  int64_t bf16_before = 0;
  for (int s = 0; s < warmup + steps; ++s) {
    if (s == warmup) bf16_before = tensor::bf16_gemm_calls();
    if (profile && s == warmup) autograd::tape().start_profile(), tensor::gemm_profile_start();
    ex::Timer t;
    r.loss = train_step(model, opt, ids, targets, rows, B, T, rng);
    if (s >= warmup) r.times.push_back(t.seconds());
    bar.update(s + 1, r.loss, static_cast<double>(B * T) / t.seconds());
  }
  bar.finish();
  r.bf16_gemms = tensor::bf16_gemm_calls() - bf16_before;
  if (profile) r.profile = {autograd::tape().stop_profile(), tensor::gemm_profile_stop(), steps};
  const auto ps = model.named_parameters();
  r.weights = bytes_of(ps, false, false);
  r.grads = bytes_of(ps, true, true);
  r.optimizer = opt.state_bytes();
  r.peak = peak_bytes(dev);
  return r;
}

double mb(size_t b) { return static_cast<double>(b) / 1e6; }

// The rates a step is compared with, in GFLOP/s: the fixed floor (or the GPU's fp32 peak), the sgemm
// measured in this run, and on the CPU the FMA peak on this run's threads (0 on a GPU: not measured).
struct Rates {
  double floor = 0, gemm = 0, fma = 0;
  double bf16_gemm = 0;                  // the same product in bf16 (--precision bf16 where it runs), else 0
  double fma_before = 0, fma_after = 0;  // fma is the higher of the two measurements
};
constexpr double kFmaShare = 0.8;  // a GEMM-bound step at 80% of the FMA peak is the issue-13 target

nlohmann::json to_json(const Result& r, int64_t tokens, const Rates& rate) {
  const double med = ex::median(r.times), floor_rate = rate.floor, gemm = rate.gemm;
  const ex::Spread sp = ex::spread(r.times);
  nlohmann::json j = {{"method", r.method},
                      {"trainable_params", r.trainable},
                      {"step_s_median", med},
                      {"step_s_min", sp.min},
                      {"step_s_max", sp.max},
                      {"step_s_q1", sp.q1},
                      {"step_s_q3", sp.q3},
                      {"step_s_all", r.times},
                      {"tokens_per_s", tokens / med},
                      {"gflop", r.flops / 1e9},
                      {"gflop_per_s", r.flops / med / 1e9},
                      {"floor_s_issue", r.flops / floor_rate / 1e9},
                      {"floor_s_measured_gemm", r.flops / gemm / 1e9},
                      {"x_floor_issue", med / (r.flops / floor_rate / 1e9)},
                      {"x_floor_measured_gemm", med / (r.flops / gemm / 1e9)},
                      {"fraction_of_floor", r.flops / floor_rate / 1e9 / med},
                      {"loss", r.loss},
                      {"bf16_gemms_per_step", static_cast<double>(r.bf16_gemms) / static_cast<double>(r.times.size())},
                      {"bytes",
                       {{"weights", r.weights},
                        {"grads", r.grads},
                        {"optimizer", r.optimizer},
                        {"activations_and_workspace",
                         r.peak > r.weights + r.grads + r.optimizer ? r.peak - r.weights - r.grads - r.optimizer : 0},
                        {"peak_tensor_bytes", r.peak}}}};
  if (rate.fma > 0) {
    const double floor_fma = r.flops / (kFmaShare * rate.fma) / 1e9;
    j["floor_s_fma"] = floor_fma;
    j["x_floor_fma"] = med / floor_fma;
  }
  return j;
}

// One row per method, then the LoRA/FT ratios the paper (Section 4.2) talks about.
int report(const std::vector<Result>& rs, const cxxopts::ParseResult& a, const nlohmann::json& device, int64_t B,
           const Rates& rate) {
  std::vector<std::vector<std::string>> rows;
  const int64_t tokens = B * a["seq"].as<int64_t>();
  const Device dev = a["device"].as<std::string>() == "cuda" ? Device::CUDA : Device::CPU;
  nlohmann::json j = {{"model", a["model"].as<std::string>()},
                      {"device", a["device"].as<std::string>()},
                      {"device_info", device},
                      {"batch", B},
                      {"seq", a["seq"].as<int64_t>()},
                      {"loss_rows", a["loss-rows"].as<int64_t>()},
                      {"threads", tensor::num_threads()},
                      {"sgemm_gflop_per_s", rate.gemm},
                      {"floor_gflop_per_s", rate.floor},
                      {"gemm_backend", tensor::gemm_backend()},
                      {"gemm_backend_info", tensor::gemm_backend_info()},
                      {"precision", tensor::precision_name(tensor::precision())},
                      {"bf16_gemm", autograd::bf16_gemm_info(dev)},
                      {"methods", nlohmann::json::array()}};
  if (rate.bf16_gemm > 0) j["bf16_gemm_gflop_per_s"] = rate.bf16_gemm;
  if (rate.fma > 0)
    j["fma_peak_gflop_per_s"] = rate.fma, j["fma_vector_bits"] = ex::fma_vector_bits(),
    j["fma_peak_gflop_per_s_before"] = rate.fma_before, j["fma_peak_gflop_per_s_after"] = rate.fma_after;
  for (const Result& r : rs) {
    const nlohmann::json m = to_json(r, tokens, rate);
    j["methods"].push_back(m);
    const ex::Spread sp = ex::spread(r.times);
    rows.push_back({r.method, std::to_string(r.trainable),
                    ex::fixed(m["step_s_median"], 2) + " [" + ex::fixed(sp.min, 2) + ", " + ex::fixed(sp.max, 2) + "]",
                    ex::fixed(m["tokens_per_s"], 0), ex::fixed(m["gflop"], 1), ex::fixed(m["gflop_per_s"], 1),
                    ex::fixed(m["x_floor_issue"], 2) + " / " + ex::fixed(m["x_floor_measured_gemm"], 2) +
                        (rate.fma > 0 ? " / " + ex::fixed(m["x_floor_fma"], 2) : ""),
                    ex::fixed(mb(r.weights), 0) + "+" + ex::fixed(mb(r.grads), 0) + "+" +
                        ex::fixed(mb(r.optimizer), 0) + "+" +
                        ex::fixed(mb(m["bytes"]["activations_and_workspace"].get<size_t>()), 0),
                    ex::fixed(mb(r.peak), 0)});
  }
  const std::string floor_name = rate.fma > 0 ? "200 / sgemm / 0.8 FMA peak" : "fp32 peak / sgemm";
  ex::print_table({"method", "trainable", "step s [min, max]", "tok/s", "GFLOP", "GFLOP/s",
                   "x floor (" + floor_name + ")", "MB weights+grads+adam+act", "peak MB"},
                  rows);
  for (size_t i = 0; i < rs.size(); ++i)
    if (rs[i].profile.steps > 0) {
      std::cout << rs[i].method << ", inside the step:\n";
      j["methods"][i]["profile"] =
          ex::report_profile(rs[i].profile, ex::median(rs[i].times), rate.fma, tensor::num_threads());
    }
  if (rs.size() == 2 && rs[0].method == "ft" && rs[1].method == "lora") {
    const double t = ex::median(rs[1].times) / ex::median(rs[0].times), mem = mb(rs[1].peak) / mb(rs[0].peak);
    std::cout << "LoRA/FT step time " << ex::fixed(t, 3) << ", peak memory " << ex::fixed(mem, 3)
              << ", optimizer state " << rs[1].optimizer << " vs " << rs[0].optimizer << " bytes\n";
    j["lora_over_ft_time"] = t;
    j["lora_over_ft_peak_bytes"] = mem;
  }
  j["peak_rss_mb"] = peak_rss_mb();
  if (!a["json"].as<std::string>().empty()) ex::write_json(a["json"].as<std::string>(), j);
  return 0;
}

// The rate the step is compared with: 200 GFLOP/s on the CPU (--floor-gflops), the GPU's
// fp32 peak on CUDA (so 1 / x_floor is the fraction of peak the step reaches).
double floor_gflops(const cxxopts::ParseResult& a, Device dev, nlohmann::json& info) {
  if constexpr (tensor::kCudaBuilt) {
    if (dev == Device::CUDA) {
      const cuda::DeviceInfo d = cuda::device_info();
      info = {{"name", d.name},
              {"compute_capability", std::to_string(d.cc_major) + "." + std::to_string(d.cc_minor)},
              {"sm_count", d.sm_count},
              {"clock_ghz", d.clock_ghz},
              {"fp32_peak_tflops", d.fp32_peak_tflops()},
              {"tf32", cuda::tf32()}};
      std::cout << "GPU " << d.name << " (sm_" << d.cc_major << d.cc_minor << ", " << d.sm_count << " SMs, "
                << ex::fixed(d.clock_ghz, 2) << " GHz): fp32 peak " << ex::fixed(d.fp32_peak_tflops(), 1)
                << " TFLOP/s\n";
      return d.fp32_peak_tflops() * 1e3;
    }
  }
  info = {{"name", "cpu"}, {"threads", tensor::num_threads()}};
  return a["floor-gflops"].as<double>();
}

int bench_main(int argc, char** argv) {
  cxxopts::Options options = make_options();
  auto a = ex::parse_args(options, argc, argv);
  tensor::set_num_threads(a["threads"].as<int>());
  const Device dev = ex::device_option(a);
  LR_CHECK(!a.count("tf32") || dev == Device::CUDA, "--tf32 needs --device cuda");
  LR_CHECK(!a.count("profile") || dev == Device::CPU, "--profile times the CPU (CUDA launches are asynchronous)");
  if constexpr (tensor::kCudaBuilt)
    if (dev == Device::CUDA) cuda::set_tf32(a.count("tf32") > 0);
  tensor::set_precision(tensor::parse_precision(a["precision"].as<std::string>()));
  const bool bf16 = tensor::precision() == tensor::Precision::bf16;
  const int64_t B = batch_of(a, dev), T = a["seq"].as<int64_t>();
  LR_CHECK(B > 0 && T > 0 && a["steps"].as<int>() > 0, "--batch, --seq and --steps must be positive");
  LR_CHECK(a["loss-rows"].as<int64_t>() >= 0 && a["loss-rows"].as<int64_t>() <= T,
           "--loss-rows must be between 0 and --seq (", T, "), got ", a["loss-rows"].as<int64_t>());
  const nn::GPTConfig cfg = nn::config_by_name(a["model"].as<std::string>());
  nlohmann::json info;
  Rates rate;
  rate.floor = floor_gflops(a, dev, info), rate.gemm = measure_gemm_gflops(B * T, cfg.n_embd, dev);
  std::cout << "model " << cfg.name << ", B=" << B << " T=" << T << " on " << tensor::device_name(dev) << ", "
            << tensor::num_threads() << " CPU threads; sgemm (B*T,C)x(C,4C): " << ex::fixed(rate.gemm, 1)
            << " GFLOP/s (" << tensor::gemm_backend() << ": " << tensor::gemm_backend_info() << ")\n";
  if (bf16) {
    rate.bf16_gemm = measure_bf16_gemm_gflops(B * T, cfg.n_embd, dev);
    std::cout << "precision bf16 (" << autograd::bf16_gemm_info(dev) << ")"
              << (rate.bf16_gemm > 0 ? "; bf16 GEMM (B*T,C)x(C,4C): " + ex::fixed(rate.bf16_gemm, 1) + " GFLOP/s" : "")
              << "\n";
  }
  if (dev == Device::CPU) {  // the cores' own limit, whatever kernels the BLAS picked
    rate.fma_before = ex::fma_peak_gflops(tensor::num_threads());
    std::cout << "FMA peak " << ex::fixed(rate.fma_before, 1) << " GFLOP/s (" << ex::fma_vector_bits()
              << "-bit vectors, " << tensor::num_threads() << " threads, best of 3); floor at " << kFmaShare * 100
              << "% of it\n";
  }

  std::vector<Result> results;
  for (const std::string& m : ex::split_list(a["methods"].as<std::string>())) {
    LR_CHECK(m == "ft" || m == "lora", "--methods: expected ft or lora, got '", m, "'");
    std::cout << m << ":\n";
    results.push_back(bench_method(m, a, dev));
  }
  if (dev == Device::CPU) {  // again after the steps: a neighbour that slowed one measurement only lowers it
    rate.fma_after = ex::fma_peak_gflops(tensor::num_threads());
    rate.fma = std::max(rate.fma_before, rate.fma_after);
    std::cout << "FMA peak after the steps " << ex::fixed(rate.fma_after, 1) << " GFLOP/s; the floor uses the higher, "
              << ex::fixed(rate.fma, 1) << "\n";
  }
  return report(results, a, info, B, rate);
}

}  // namespace

int main(int argc, char** argv) { return ex::run_main(argc, argv, bench_main); }
