#pragma once
// The machine's FMA peak, measured rather than looked up: independent FMA chains on every thread at
// the widest vector width the build allows (and at 256 bits, the ceiling of AVX2 BLAS kernels).
// Shared by bench_ops (which reports it beside the GEMM rates) and bench_step (whose floor is the
// step's FLOP count at 80% of it), so both judge against the same number.
#include <omp.h>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cstring>

#include "examples/common/cli.h"

namespace lowrank::examples {

// 12 accumulators hide the FMA latency (about 4 cycles) across two FMA pipes; the
// multiplier below 1 keeps values bounded and away from denormals. One tag struct per
// vector width, so the 256-bit peak (what AVX2 BLAS kernels can reach) is measured too.
constexpr int kChains = 12;

template <typename V, int L>
float hsum(V v) {  // via memory: GCC 12's _mm512_reduce_add_ps trips -Wuninitialized
  alignas(64) float t[L];
  std::memcpy(t, &v, sizeof t);
  float s = 0.f;
  for (float x : t) s += x;
  return s;
}
#if defined(__AVX512F__)
struct W512 {
  using V = __m512;
  static constexpr int kLanes = 16;
  static V set(float x) { return _mm512_set1_ps(x); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static float sum(V v) { return hsum<V, kLanes>(v); }
};
#endif
#if defined(__AVX2__) && defined(__FMA__)
#define LOWRANK_HAVE_W256 1
struct W256 {
  using V = __m256;
  static constexpr int kLanes = 8;
  static V set(float x) { return _mm256_set1_ps(x); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static float sum(V v) { return hsum<V, kLanes>(v); }
};
#endif
struct Scalar {  // fallback: the "peak" is then only a rough lower bound
  using V = float;
  static constexpr int kLanes = 1;
  static V set(float x) { return x; }
  static V fma(V a, V b, V c) { return a * b + c; }
  static float sum(V v) { return v; }
};
#if defined(__AVX512F__)
using Widest = W512;
#elif defined(__AVX2__) && defined(__FMA__)
using Widest = W256;
#else
using Widest = Scalar;
#endif

template <typename W>
float fma_chains(long iters, float seed) {
  typename W::V acc[kChains];
  for (int j = 0; j < kChains; ++j) acc[j] = W::set(seed + j);
  const auto mul = W::set(0.999999f), add = W::set(1e-6f);
  for (long i = 0; i < iters; ++i) {
#pragma GCC unroll 16
    for (int j = 0; j < kChains; ++j) acc[j] = W::fma(acc[j], mul, add);
  }
  float s = 0.f;
  for (int j = 0; j < kChains; ++j) s += W::sum(acc[j]);
  return s;
}

// GFLOP/s, best of 3 runs on `threads` threads: noise from other processes only ever lowers it.
template <typename W>
double peak_gflops(int threads, long iters) {
  double best = 0.0;
  volatile float sink = 0.f;  // keeps the chains from being optimised away
  for (int rep = 0; rep < 3; ++rep) {
    Timer t;
#pragma omp parallel num_threads(threads)
    {
      float s = fma_chains<W>(iters, 1.f + omp_get_thread_num());
#pragma omp atomic
      sink += s;
    }
    const double flops = 2.0 * kChains * W::kLanes * iters * threads;
    best = std::max(best, flops / t.seconds() / 1e9);
  }
  (void)sink;
  return best;
}

// Vector width of the peak below, in bits (32 per float lane).
constexpr int fma_vector_bits() { return 32 * Widest::kLanes; }

// The peak at the widest width on `threads` threads. 20M iterations take about 40 ms a run on one
// core, long enough for the clock to settle, short enough to run before every benchmark.
inline double fma_peak_gflops(int threads, long iters = 20'000'000) { return peak_gflops<Widest>(threads, iters); }

}  // namespace lowrank::examples
