// bench_ops: GFLOP/s of tensor::gemm on the GEMMs of one GPT-2-small training step (1024 tokens: the
// linear layers, LoRA r=4's two thin products, the 50257-wide head), set against this machine's FMA peak
// and memory bandwidth, with each result's max relative error against tensor::gemm_reference (double).
// It names the GEMM backend the build has (-DLOWRANK_GEMM) and what that runs on this CPU.
// --device cuda: the GPU's ceilings instead (copy GB/s, sgemm fp32/TF32; examples/common/gpu_ceilings.h).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <memory>
#include <tuple>

#include "examples/common/cli.h"
#include "examples/common/fma_peak.h"
#include "examples/common/gpu_ceilings.h"
#include "tensor/gemm.h"
#include "tensor/parallel.h"

namespace {
using namespace lowrank;
using examples::peak_gflops;  // the FMA peak: examples/common/fma_peak.h
using examples::Timer;
using examples::Widest;

struct Options {
  int threads = 0;
  int repeats = 10;
  bool quick = false;
  std::string json, device = "cpu";
  examples::GpuCeilingOptions gpu;
};

// ---- bandwidth: STREAM triad a = b + s*c over three float arrays --------------------
// Counts 3 words per element, as STREAM does (write-allocate traffic not counted).
double triad_gbs(size_t total_bytes, int threads, int repeats) {
  const long n = static_cast<long>(total_bytes / (3 * sizeof(float)));
  std::unique_ptr<float[]> a(new float[n]), b(new float[n]), c(new float[n]);
#pragma omp parallel for num_threads(threads) schedule(static)
  for (long i = 0; i < n; ++i) a[i] = 0.f, b[i] = 1.f, c[i] = 2.f;  // first touch, per thread
  double best = 0.0;
  for (int rep = 0; rep < repeats; ++rep) {
    Timer t;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (long i = 0; i < n; ++i) a[i] = b[i] + 0.5f * c[i];
    best = std::max(best, 3.0 * sizeof(float) * n / t.seconds() / 1e9);
  }
  return best;
}

// ---- GEMMs of a GPT-2-small step ----------------------------------------------------
struct Case {
  std::string layer, pass;
  bool ta, tb;
  int64_t M, N, K;
  bool linear = true;  // one of the 12 linear-layer GEMMs summed into the step estimate
};

// Linear layers keep W as (out,in): y = x·Wᵀ, dx = dy·W, dW = dyᵀ·x (see nn/ and tensor/gemm.h).
std::vector<Case> gpt2_cases(int64_t tokens) {
  const std::vector<std::tuple<std::string, int64_t, int64_t>> layers = {
      {"attn.c_attn", 768, 2304}, {"mlp.c_fc", 768, 3072}, {"mlp.c_proj", 3072, 768}, {"attn.c_proj", 768, 768}};
  std::vector<Case> cases;
  for (const auto& [name, in, out] : layers) {
    cases.push_back({name, "fwd y=x.Wt", false, true, tokens, out, in});
    cases.push_back({name, "bwd dx=dy.W", false, false, tokens, in, out});
    cases.push_back({name, "bwd dW=dyt.x", true, false, out, in, tokens});
  }
  // LoRA r=4 on a 768->768 layer (Wq, Wv): h = x·Aᵀ (A: r×768), y += h·Bᵀ (B: 768×r); backward
  // dB = dyᵀ·h, dh = dy·B, dA = dhᵀ·x, dx += dh·A. Thin GEMMs: memory-bound, far below the peak.
  const int64_t r = 4, C = 768;
  cases.push_back({"lora.A r=4", "fwd h=x.At", false, true, tokens, r, C, false});
  cases.push_back({"lora.B r=4", "fwd y=h.Bt", false, true, tokens, C, r, false});
  cases.push_back({"lora.B r=4", "bwd dB=dyt.h", true, false, C, r, tokens, false});
  cases.push_back({"lora.B r=4", "bwd dh=dy.B", false, false, tokens, r, C, false});
  cases.push_back({"lora.A r=4", "bwd dA=dht.x", true, false, r, C, tokens, false});
  cases.push_back({"lora.A r=4", "bwd dx=dh.A", false, false, tokens, C, r, false});
  // The tied head (wte, 50257×768): logits = x·Eᵀ, dx = dlogits·E, dE = dlogitsᵀ·x.
  const int64_t V = 50257;
  cases.push_back({"lm_head", "fwd y=x.Et", false, true, tokens, V, C, false});
  cases.push_back({"lm_head", "bwd dx=dy.E", false, false, tokens, C, V, false});
  cases.push_back({"lm_head", "bwd dE=dyt.x", true, false, V, C, tokens, false});
  return cases;
}

struct Result {
  double median_s, min_s, max_s, gflops, rel_err;
};

// Max |C - ref| over max |ref| on up to 16 rows spread over C, ref from tensor::gemm_reference (double
// accumulation): the whole of C in double would take minutes on the head. Row i of op(A) starts at
// A + i·lda, or at A + i when A is stored transposed.
double max_rel_err(const Case& c, const float* A, int64_t lda, const float* B, int64_t ldb, const float* C) {
  const int64_t rows = std::min<int64_t>(c.M, 16);
  std::vector<float> ref(c.N);
  double err = 0.0, scale = 0.0;
  for (int64_t s = 0; s < rows; ++s) {
    const int64_t i = rows == 1 ? 0 : s * (c.M - 1) / (rows - 1);
    tensor::gemm_reference(c.ta, c.tb, 1, c.N, c.K, 1.f, A + (c.ta ? i : i * lda), lda, B, ldb, 0.f, ref.data(), c.N);
    for (int64_t j = 0; j < c.N; ++j) {
      err = std::max(err, std::fabs(double(C[i * c.N + j]) - ref[j]));
      scale = std::max(scale, std::fabs(double(ref[j])));
    }
  }
  return scale > 0.0 ? err / scale : err;
}

// Times one gemm: a warm-up call (page faults, BLAS buffers), then `repeats` timed calls (at most 3
// for products over 20 GFLOP, the head's: each call takes about a second there).
Result time_gemm(const Case& c, int repeats) {
  if (2.0 * c.M * c.N * c.K > 20e9) repeats = std::min(repeats, 3);
  // Stored shapes: op(A) is (M,K), so A is (K,M) when transposed; likewise B.
  const int64_t lda = c.ta ? c.M : c.K, ldb = c.tb ? c.K : c.N;
  std::vector<float> A(c.M * c.K), B(c.K * c.N), C(c.M * c.N);
  for (size_t i = 0; i < A.size(); ++i) A[i] = static_cast<float>(i % 97) * 0.01f - 0.48f;
  for (size_t i = 0; i < B.size(); ++i) B[i] = static_cast<float>(i % 89) * 0.01f - 0.44f;
  auto call = [&] { tensor::gemm(c.ta, c.tb, c.M, c.N, c.K, 1.f, A.data(), lda, B.data(), ldb, 0.f, C.data(), c.N); };
  call();
  std::vector<double> times;
  for (int r = 0; r < repeats; ++r) {
    Timer t;
    call();
    times.push_back(t.seconds());
  }
  const auto s = examples::spread(times);
  const double med = examples::median(times);
  return {med, s.min, s.max, 2.0 * c.M * c.N * c.K / med / 1e9, max_rel_err(c, A.data(), lda, B.data(), ldb, C.data())};
}

// ---- reporting ------------------------------------------------------------------------
using examples::fmt;

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}

std::string today() {
  char buf[32];
  const std::time_t now = std::time(nullptr);
  std::strftime(buf, sizeof buf, "%Y-%m-%d", std::localtime(&now));
  return buf;
}

Options parse(int argc, char** argv) {
  cxxopts::Options spec("bench_ops", "GFLOP/s of tensor::gemm on GPT-2-small training GEMMs vs. the FMA peak");
  // clang-format off
  spec.add_options()("threads", "threads (0 = all cores)", cxxopts::value<int>()->default_value("0"))(
      "repeats", "timed calls per GEMM", cxxopts::value<int>()->default_value("10"))(
      "json", "write results to this JSON file", cxxopts::value<std::string>())(
      "quick", "fewer repeats and shorter peak/bandwidth loops")(
      "device", "cpu, or cuda: the GPU's copy GB/s and sgemm fp32/TF32 rate instead",
      cxxopts::value<std::string>()->default_value("cpu"))("gemm-n", "cuda: M = N = K of the square sgemm",
      cxxopts::value<int64_t>()->default_value("4096"))("copy-mb", "cuda: MiB per buffer of the device copy",
      cxxopts::value<int64_t>()->default_value("1024"))("h,help", "show this help");
  // clang-format on
  const auto r = examples::parse_args(spec, argc, argv);
  Options o;
  o.threads = r["threads"].as<int>(), o.repeats = r["repeats"].as<int>(), o.quick = r.count("quick") > 0;
  if (r.count("json")) o.json = r["json"].as<std::string>();
  LR_CHECK(o.threads >= 0, "--threads must be >= 0, got ", o.threads);
  LR_CHECK(o.repeats >= 1, "--repeats must be >= 1, got ", o.repeats);
  if (o.quick && !r["repeats"].count()) o.repeats = 3;
  LR_CHECK((o.device = r["device"].as<std::string>()) == "cpu" || o.device == "cuda", "--device: cpu or cuda");
  o.gpu = {std::max<int64_t>(1, r["gemm-n"].as<int64_t>()), std::max<int64_t>(1, r["copy-mb"].as<int64_t>()),
           o.repeats};
  return o;
}

nlohmann::json case_json(const Case& c, const Result& r, double peak, int threads) {
  return {{"shape", c.layer},   {"pass", c.pass},          {"M", c.M},           {"N", c.N},
          {"K", c.K},           {"transA", c.ta},          {"transB", c.tb},     {"median_s", r.median_s},
          {"min_s", r.min_s},   {"max_s", r.max_s},        {"gflops", r.gflops}, {"fraction_of_peak", r.gflops / peak},
          {"threads", threads}, {"max_rel_err", r.rel_err}};
}

struct Machine {
  int threads;
  double peak1, peakN;  // widest vectors, 1 thread and all threads
  double peak256N;      // 256-bit vectors (AVX2 kernels' ceiling); 0 if not built with AVX2
  double triad_gbs;
};

Machine measure_machine(int threads, bool quick) {
  const long iters = quick ? 5'000'000 : 20'000'000;
  Machine m{threads, peak_gflops<Widest>(1, iters), peak_gflops<Widest>(threads, iters), 0.0, 0.0};
#if defined(__AVX2__) && defined(__FMA__)
  m.peak256N = peak_gflops<examples::W256>(threads, iters);
#endif
  m.triad_gbs = triad_gbs(size_t(512) << 20, threads, quick ? 3 : 10);
  return m;
}

// gemm_backend_info(): which kernel set the backend picked on this CPU (OpenBLAS's core and whether
// OPENBLAS_CORETYPE forced it -- Haswell on an AVX-512 machine halves the reachable peak --, oneDNN's
// ISA, BLIS's arch). "blas" and "blas_core" keep the fields earlier JSON files had.
nlohmann::json report_json(const Options& o, const Machine& m, double step_s, nlohmann::json gemms) {
  const std::string backend = tensor::gemm_backend();
  return {{"benchmark", "bench_ops"},
          {"date", today()},
          {"cpu", cpu_model()},
          {"threads", m.threads},
          {"repeats", o.repeats},
          {"tokens", 1024},
          {"gemm_backend", backend},
          {"blas", backend != "eigen"},
          {"blas_core", tensor::gemm_backend_info()},
          {"peak_gflops", m.peakN},
          {"peak_gflops_1thread", m.peak1},
          {"peak_gflops_256bit", m.peak256N},
          {"fma_lanes", Widest::kLanes},
          {"triad_gbs", m.triad_gbs},
          {"step_linear_gemm_s", step_s},
          {"gemms", std::move(gemms)}};
}

int bench(int argc, char** argv) {
  const Options o = parse(argc, argv);
  if (o.device == "cuda") return examples::gpu_ceilings(o.gpu, o.json);
  tensor::set_num_threads(o.threads);
  const Machine m = measure_machine(tensor::num_threads(), o.quick);
  std::printf("%s, %d threads, GEMM backend %s (%s)\n", cpu_model().c_str(), m.threads, tensor::gemm_backend(),
              tensor::gemm_backend_info().c_str());
  std::printf("FMA peak %.1f GFLOP/s (1 thread), %.1f GFLOP/s (%d threads; %.1f with 256-bit vectors)\n", m.peak1,
              m.peakN, m.threads, m.peak256N);
  std::printf("triad bandwidth %.1f GB/s\n", m.triad_gbs);

  nlohmann::json rows_json = nlohmann::json::array();
  std::vector<std::vector<std::string>> rows;
  double step_s = 0.0;
  for (const auto& c : gpt2_cases(1024)) {
    const Result r = time_gemm(c, o.repeats);
    if (c.linear) step_s += 12 * r.median_s;  // 12 transformer blocks run each of these once per step
    rows_json.push_back(case_json(c, r, m.peakN, m.threads));
    rows.push_back({c.layer, c.pass, std::to_string(c.M) + "x" + std::to_string(c.N) + "x" + std::to_string(c.K),
                    fmt("%.2f", r.median_s * 1e3), fmt("%.2f", r.min_s * 1e3) + "-" + fmt("%.2f", r.max_s * 1e3),
                    fmt("%.1f", r.gflops), fmt("%.1f%%", 100 * r.gflops / m.peakN), fmt("%.1e", r.rel_err)});
  }
  examples::print_table({"layer", "pass", "MxNxK", "median ms", "min-max ms", "GFLOP/s", "of peak", "max rel err"},
                        rows);
  std::printf("linear-layer GEMMs of one 12-block step: %.3f s\n", step_s);
  if (!o.json.empty()) examples::write_json(o.json, report_json(o, m, step_s, std::move(rows_json)));
  return 0;
}
}  // namespace

int main(int argc, char** argv) { return lowrank::examples::run_main(argc, argv, bench); }
