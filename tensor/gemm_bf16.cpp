// The bf16 GEMM (tensor/gemm_bf16.h) over oneDNN's matmul primitive, in a build whose GEMM backend is
// oneDNN (CMakeLists.txt gives this file the backend's definitions, as tensor/gemm.cpp); every other
// build compiles the stubs at the end, and bf16_gemm_available() says false there.
#include "tensor/gemm_bf16.h"

#include <atomic>
#include <chrono>

#include "tensor/error.h"
#include "tensor/gemm.h"
#include "tensor/gemm_profile.h"

#if defined(LOWRANK_GEMM_ONEDNN)
#include <map>
#include <mutex>
#include <tuple>
#include <vector>

#include <omp.h>
#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace lowrank::tensor {

namespace {
std::atomic<bool> g_enabled{true};
std::atomic<int64_t> g_calls{0};
std::atomic<int64_t> g_created{0};
}  // namespace

void set_bf16_gemm_enabled(bool on) { g_enabled.store(on); }
int64_t bf16_gemm_calls() { return g_calls.load(); }
void count_bf16_gemm() { ++g_calls; }
int64_t bf16_gemm_primitives_made() { return g_created.load(); }

#if defined(LOWRANK_GEMM_ONEDNN)
namespace {

// oneDNN's ISA values are nested bit masks (each level holds the bits of those below it), so the CPUs
// with bf16 dot products are those whose effective ISA holds every bit of avx512_core_bf16: that level
// and avx512_core_amx. ONEDNN_MAX_CPU_ISA caps the effective ISA, so it can force the fallback too.
bool isa_has_bf16() {
  const auto isa = static_cast<unsigned>(dnnl_get_effective_cpu_isa());
  const auto bf16 = static_cast<unsigned>(dnnl_cpu_isa_avx512_core_bf16);
  return (isa & bf16) == bf16;
}

// One primitive per call geometry and thread count; beta != 0 is a sum post-op (C += product). oneDNN
// plans a primitive's split of the work over the threads it may use when it creates it: one inside an
// OpenMP parallel region (attention's per-pair products), all of them outside (the frozen-weight GEMMs).
// A primitive made for one must not serve the other: a one-thread plan would leave cores idle, and a
// many-thread one run inside a region on one thread.
struct Key {
  bool ta, tb, sum;
  int64_t M, N, K, lda, ldb, ldc;
  int threads;
  bool operator<(const Key& o) const {
    return std::tie(ta, tb, sum, M, N, K, lda, ldb, ldc, threads) <
           std::tie(o.ta, o.tb, o.sum, o.M, o.N, o.K, o.lda, o.ldb, o.ldc, o.threads);
  }
};
int threads_now() { return omp_in_parallel() ? 1 : omp_get_max_threads(); }  // as oneDNN counts them
struct Prim {
  dnnl::matmul matmul;
  dnnl::memory::desc a, b, c, scratch;
};
// A training run has a few dozen geometries; decoding adds one per length. The table is emptied when it
// reaches kMaxPrims, so a long run of new shapes cannot grow it without bound.
constexpr size_t kMaxPrims = 512;
struct State {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  std::mutex mu;
  std::map<Key, Prim> prims;
};
State& state() {
  static State* s = new State();  // never destroyed: a GEMM may run during static teardown
  return *s;
}

using dt = dnnl::memory::data_type;
// op(X) (R, S) of a row-major X with leading dimension ld, as oneDNN strides: X itself, or Xᵀ read in place.
dnnl::memory::desc operand(int64_t R, int64_t S, int64_t ld, bool t, dt type) {
  return dnnl::memory::desc({R, S}, type, t ? dnnl::memory::dims{1, ld} : dnnl::memory::dims{ld, 1});
}

Prim make_prim(const Key& k, const dnnl::engine& eng) {
  Prim p{{},
         operand(k.M, k.K, k.lda, k.ta, dt::bf16),
         operand(k.K, k.N, k.ldb, k.tb, dt::bf16),
         operand(k.M, k.N, k.ldc, false, dt::f32),
         {}};
  dnnl::primitive_attr attr;
  // The caller's scratchpad (scratch_for): attention runs the same primitive on several threads at once,
  // and oneDNN's own scratchpad is shared between them (two threads' matmuls then mixed their buffers).
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  if (k.sum) {
    dnnl::post_ops po;
    po.append_sum(1.f);
    attr.set_post_ops(po);
  }
#if DNNL_VERSION_MAJOR >= 3
  dnnl::matmul::primitive_desc pd(eng, p.a, p.b, p.c, attr);
#else
  dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(p.a, p.b, p.c), attr, eng);
#endif
  p.matmul = dnnl::matmul(pd);
  p.scratch = pd.scratchpad_desc();
  return p;
}

Prim prim_for(const Key& k) {  // a copy of the handles: the table may be emptied by another thread meanwhile
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  auto it = s.prims.find(k);
  if (it != s.prims.end()) return it->second;
  if (s.prims.size() >= kMaxPrims) s.prims.clear();
  ++g_created;
  return s.prims.emplace(k, make_prim(k, s.engine)).first->second;
}

void run_bf16(const Key& k, const uint16_t* A, const uint16_t* B, float* C) {
  Prim p;
  try {
    p = prim_for(k);
  } catch (const dnnl::error& e) {
    throw Error(cat("gemm_bf16: oneDNN built no bf16 matmul for (", k.M, "x", k.K, ")·(", k.K, "x", k.N,
                    "), transposes ", k.ta, k.tb, ": ", e.what()));
  }
  const dnnl::engine& eng = state().engine;
  thread_local dnnl::stream stream(eng);      // streams are not shared between threads
  thread_local std::vector<uint8_t> scratch;  // grows to the largest scratchpad this thread needed
  if (scratch.size() < p.scratch.get_size()) scratch.resize(p.scratch.get_size());
  dnnl::memory a(p.a, eng, const_cast<uint16_t*>(A)), b(p.b, eng, const_cast<uint16_t*>(B)), c(p.c, eng, C),
      sp(p.scratch, eng, scratch.data());
  p.matmul.execute(stream, {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, c}, {DNNL_ARG_SCRATCHPAD, sp}});
  stream.wait();
}

}  // namespace

bool bf16_gemm_available() { return g_enabled.load() && isa_has_bf16(); }

std::string bf16_gemm_info() {
  if (!g_enabled.load()) return "fp32 fallback: the bf16 GEMM is switched off (set_bf16_gemm_enabled)";
  if (!isa_has_bf16()) return "fp32 fallback: " + gemm_backend_info() + " has no bf16 instructions";
  return "bf16 oneDNN matmul: " + gemm_backend_info();
}

void gemm_bf16(bool transA, bool transB, int64_t M, int64_t N, int64_t K, const uint16_t* A, int64_t lda,
               const uint16_t* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  LR_CHECK(bf16_gemm_available(), "gemm_bf16: not available here (", bf16_gemm_info(), ")");
  LR_CHECK(M > 0 && N > 0 && K > 0 && (beta == 0.f || beta == 1.f), "gemm_bf16: (", M, "x", K, ")·(", K, "x", N,
           ") with beta ", beta, ": needs every dimension >= 1 and beta 0 or 1");
  const Key k{transA, transB, beta != 0.f, M, N, K, lda, ldb, ldc, threads_now()};
  ++g_calls;
  if (!gemm_profiling()) return run_bf16(k, A, B, C);
  const auto t0 = std::chrono::steady_clock::now();  // bench_step --profile: with the fp32 GEMMs' rows
  run_bf16(k, A, B, C);
  const std::chrono::duration<double> dt = std::chrono::steady_clock::now() - t0;
  gemm_profile_record(transA, transB, M, N, K, beta != 0.f, dt.count());
}

#else  // no oneDNN in this build: the fp32 GEMM runs instead

bool bf16_gemm_available() { return false; }

std::string bf16_gemm_info() {
  return std::string("fp32 fallback: this build's GEMM backend is ") + gemm_backend() +
         " (the bf16 GEMM needs -DLOWRANK_GEMM=onednn)";
}

void gemm_bf16(bool, bool, int64_t, int64_t, int64_t, const uint16_t*, int64_t, const uint16_t*, int64_t, float, float*,
               int64_t) {
  throw Error(cat("gemm_bf16: not available here (", bf16_gemm_info(), ")"));
}

#endif

}  // namespace lowrank::tensor
