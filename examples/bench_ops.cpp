// bench_ops: GFLOP/s of tensor::gemm on the linear-layer GEMMs of one GPT-2-small training step (1024
// tokens), set against this machine's FMA peak and memory bandwidth; a benchmark, it checks nothing.
// --device cuda: the GPU's ceilings instead (copy GB/s, sgemm fp32/TF32; examples/common/gpu_ceilings.h).
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

#ifdef LOWRANK_HAVE_OPENBLAS
extern "C" char* openblas_get_corename(void);
#endif

namespace {
using namespace lowrank;
using examples::Timer;
using examples::peak_gflops;  // the FMA peak: examples/common/fma_peak.h
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
  return cases;
}

struct Result {
  double median_s, min_s, max_s, gflops;
};

// Times one gemm: a warm-up call (page faults, BLAS buffers), then `repeats` timed calls.
Result time_gemm(const Case& c, int repeats) {
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
  return {med, s.min, s.max, 2.0 * c.M * c.N * c.K / med / 1e9};
}

// ---- reporting ------------------------------------------------------------------------
std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

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
  spec.add_options()("threads", "threads (0 = all cores)", cxxopts::value<int>()->default_value("0"))(
      "repeats", "timed calls per GEMM", cxxopts::value<int>()->default_value("10"))(
      "json", "write results to this JSON file", cxxopts::value<std::string>())(
      "quick", "fewer repeats and shorter peak/bandwidth loops")(
      "device", "cpu, or cuda: the GPU's copy GB/s and sgemm fp32/TF32 rate instead",
      cxxopts::value<std::string>()->default_value("cpu"))("gemm-n", "cuda: M = N = K of the square sgemm",
      cxxopts::value<int64_t>()->default_value("4096"))("copy-mb", "cuda: MiB per buffer of the device copy",
      cxxopts::value<int64_t>()->default_value("1024"))("h,help", "show this help");
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
  return {{"shape", c.layer}, {"pass", c.pass}, {"M", c.M}, {"N", c.N}, {"K", c.K}, {"transA", c.ta},
          {"transB", c.tb}, {"median_s", r.median_s}, {"min_s", r.min_s}, {"max_s", r.max_s},
          {"gflops", r.gflops}, {"fraction_of_peak", r.gflops / peak}, {"threads", threads}};
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

// Which kernel set OpenBLAS's runtime dispatch picked, and whether the environment forced
// it: OPENBLAS_CORETYPE=Haswell on an AVX-512 machine halves the reachable GEMM peak.
std::string blas_core() {
#ifdef LOWRANK_HAVE_OPENBLAS
  const char* forced = std::getenv("OPENBLAS_CORETYPE");
  return std::string(openblas_get_corename()) + (forced ? std::string(" (OPENBLAS_CORETYPE=") + forced + ")" : "");
#else
  return "none (Eigen GEMM)";
#endif
}

nlohmann::json report_json(const Options& o, const Machine& m, double step_s, nlohmann::json gemms) {
#ifdef LOWRANK_HAVE_OPENBLAS
  const bool blas = true;
#else
  const bool blas = false;
#endif
  return {{"benchmark", "bench_ops"}, {"date", today()}, {"cpu", cpu_model()}, {"threads", m.threads},
          {"repeats", o.repeats}, {"tokens", 1024}, {"blas", blas}, {"blas_core", blas_core()},
          {"peak_gflops", m.peakN}, {"peak_gflops_1thread", m.peak1}, {"peak_gflops_256bit", m.peak256N},
          {"fma_lanes", Widest::kLanes}, {"triad_gbs", m.triad_gbs}, {"step_linear_gemm_s", step_s},
          {"gemms", std::move(gemms)}};
}

int bench(int argc, char** argv) {
  const Options o = parse(argc, argv);
  if (o.device == "cuda") return examples::gpu_ceilings(o.gpu, o.json);
  tensor::set_num_threads(o.threads);
  const Machine m = measure_machine(tensor::num_threads(), o.quick);
  std::printf("%s, %d threads, BLAS core %s\n", cpu_model().c_str(), m.threads, blas_core().c_str());
  std::printf("FMA peak %.1f GFLOP/s (1 thread), %.1f GFLOP/s (%d threads; %.1f with 256-bit vectors)\n",
              m.peak1, m.peakN, m.threads, m.peak256N);
  std::printf("triad bandwidth %.1f GB/s\n", m.triad_gbs);

  nlohmann::json rows_json = nlohmann::json::array();
  std::vector<std::vector<std::string>> rows;
  double step_s = 0.0;
  for (const auto& c : gpt2_cases(1024)) {
    const Result r = time_gemm(c, o.repeats);
    step_s += 12 * r.median_s;  // 12 transformer blocks run each of these once per step
    rows_json.push_back(case_json(c, r, m.peakN, m.threads));
    rows.push_back({c.layer, c.pass, std::to_string(c.M) + "x" + std::to_string(c.N) + "x" + std::to_string(c.K),
                    fmt("%.2f", r.median_s * 1e3), fmt("%.2f", r.min_s * 1e3) + "-" + fmt("%.2f", r.max_s * 1e3),
                    fmt("%.1f", r.gflops), fmt("%.0f%%", 100 * r.gflops / m.peakN)});
  }
  examples::print_table({"layer", "pass", "MxNxK", "median ms", "min-max ms", "GFLOP/s", "of peak"}, rows);
  std::printf("linear-layer GEMMs of one 12-block step: %.3f s\n", step_s);
  if (!o.json.empty()) examples::write_json(o.json, report_json(o, m, step_s, std::move(rows_json)));
  return 0;
}
}  // namespace

int main(int argc, char** argv) { return lowrank::examples::run_main(argc, argv, bench); }
