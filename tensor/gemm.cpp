#include "tensor/gemm.h"

#include <chrono>
#include <cstdlib>
#include <string>

#include <Eigen/Core>

#include "tensor/error.h"
#include "tensor/gemm_profile.h"
#include "tensor/gemm_thin.h"

// One backend per build, chosen at configure time (CMakeLists.txt, -DLOWRANK_GEMM=...);
// docs/benchmarks.md, "GEMM backends", has the measurements behind the default.
#if defined(LOWRANK_GEMM_OPENBLAS)
#include <cblas.h>  // OpenBLAS's: also declares openblas_get_corename, openblas_set_num_threads
#elif defined(LOWRANK_GEMM_ONEDNN)
#include <oneapi/dnnl/dnnl.h>
#elif defined(LOWRANK_GEMM_BLIS)
#include <blis.h>
#endif

namespace lowrank::tensor {

namespace {
using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MutMap = Eigen::Map<RowMat, Eigen::Unaligned, Eigen::OuterStride<>>;

#if defined(LOWRANK_GEMM_OPENBLAS)
// OpenBLAS's kernel set is picked at load time from the CPU, unless OPENBLAS_CORETYPE forces one
// (Haswell on an AVX-512 machine: AVX2 kernels, about half the reachable peak).
void backend_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                  const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B,
              ldb, beta, C, ldc);
}
std::string backend_info() {
  const char* forced = std::getenv("OPENBLAS_CORETYPE");
  return std::string("core ") + openblas_get_corename() +
         (forced ? std::string(" (OPENBLAS_CORETYPE=") + forced + ")" : std::string(" (detected)"));
}
void backend_threads(int n) { openblas_set_num_threads(n); }
constexpr const char* kName = "openblas";

#elif defined(LOWRANK_GEMM_ONEDNN)
// dnnl_sgemm: row-major, BLAS arguments; its JIT kernels are generated for the CPU's ISA at run time
// (capped by ONEDNN_MAX_CPU_ISA), and it threads with OpenMP (Debian's build), as we do.
void backend_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                  const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  const dnnl_status_t s = dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  LR_CHECK(s == dnnl_success, "dnnl_sgemm failed with status ", static_cast<int>(s), " on ", M, "x", N, "x", K);
}
std::string isa_name(dnnl_cpu_isa_t isa) {
  switch (isa) {
    case dnnl_cpu_isa_avx2:
      return "avx2";
    case dnnl_cpu_isa_avx2_vnni:
      return "avx2_vnni";
    case dnnl_cpu_isa_avx512_core:
      return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni:
      return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16:
      return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx:
      return "avx512_core_amx";
    default:
      return "isa 0x" + std::to_string(static_cast<int>(isa));
  }
}
std::string backend_info() {
  const dnnl_version_t* v = dnnl_version();
  return "oneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch) +
         ", ISA " + isa_name(dnnl_get_effective_cpu_isa());
}
void backend_threads(int) {}  // OpenMP runtime: follows omp_set_num_threads
constexpr const char* kName = "onednn";

#elif defined(LOWRANK_GEMM_BLIS)
// BLIS's typed API takes a row and a column stride per operand, so row-major needs no swapping;
// its kernels are picked at run time from the CPU (bli_arch_query_id).
void backend_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                  const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  bli_sgemm(ta ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE, tb ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE, M, N, K, &alpha,
            const_cast<float*>(A), lda, 1, const_cast<float*>(B), ldb, 1, &beta, C, ldc, 1);
}
std::string backend_info() {
  return std::string("BLIS ") + bli_info_get_version_str() + ", arch " + bli_arch_string(bli_arch_query_id());
}
// BLIS runs on BLIS_NUM_THREADS (default 1) unless told otherwise, whatever OpenMP's setting.
void backend_threads(int n) { bli_thread_set_num_threads(n); }
constexpr const char* kName = "blis";

#else
// Eigen's own GEMM: plain maps, transposes as expressions.
using ConstMap = Eigen::Map<const RowMat, Eigen::Unaligned, Eigen::OuterStride<>>;
template <typename X, typename Y>
void product(const X& a, const Y& b, float alpha, float beta, MutMap& c) {
  if (beta == 0.f) {
    c.noalias() = alpha * a * b;
  } else {
    if (beta != 1.f) c *= beta;
    c.noalias() += alpha * a * b;
  }
}
void backend_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                  const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  MutMap c(C, M, N, Eigen::OuterStride<>(ldc));
  ConstMap a(A, ta ? K : M, ta ? M : K, Eigen::OuterStride<>(lda));
  ConstMap b(B, tb ? N : K, tb ? K : N, Eigen::OuterStride<>(ldb));
  if (!ta && !tb) product(a, b, alpha, beta, c);
  if (!ta && tb) product(a, b.transpose(), alpha, beta, c);
  if (ta && !tb) product(a.transpose(), b, alpha, beta, c);
  if (ta && tb) product(a.transpose(), b.transpose(), alpha, beta, c);
}
std::string backend_info() {
  return "Eigen " + std::to_string(EIGEN_WORLD_VERSION) + "." + std::to_string(EIGEN_MAJOR_VERSION) + "." +
         std::to_string(EIGEN_MINOR_VERSION);
}
void backend_threads(int) {}  // Eigen::setNbThreads is called by set_num_threads itself
constexpr const char* kName = "eigen";
#endif
}  // namespace

const char* gemm_backend() { return kName; }
std::string gemm_backend_info() { return backend_info(); }
void gemm_set_num_threads(int n) { backend_threads(n); }

namespace {
// The empty cases and the thin ones (a dimension ≤ 16: tensor/gemm_thin.cpp) are handled here, the
// same for every backend: BLAS libraries differ on K = 0
// (oneDNN checks arguments; BLAS scales C by beta) and on beta = 0 with NaN in C (we overwrite).
void gemm_any(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
              const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  if (K == 0) {
    MutMap c(C, M, N, Eigen::OuterStride<>(ldc));
    if (beta == 0.f)
      c.setZero();
    else
      c *= beta;
    return;
  }
  if (gemm_thin(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)) return;  // LoRA's rank-r products
  backend_gemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
}  // namespace

void gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (!gemm_profiling()) return gemm_any(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  const auto t0 = std::chrono::steady_clock::now();  // bench_step --profile: tensor/gemm_profile.h
  gemm_any(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  const std::chrono::duration<double> dt = std::chrono::steady_clock::now() - t0;
  gemm_profile_record(transA, transB, M, N, K, beta != 0.f, dt.count());
}

void gemm_batched(Device dev, bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                  int64_t lda, int64_t sA, const float* B, int64_t ldb, int64_t sB, float beta, float* C, int64_t ldc,
                  int64_t sC, int64_t batch) {
  if (dev == Device::CUDA)
    return cuda_gemm_batched(transA, transB, M, N, K, alpha, A, lda, sA, B, ldb, sB, beta, C, ldc, sC, batch);
  for (int64_t i = 0; i < batch; ++i)
    gemm(transA, transB, M, N, K, alpha, A + i * sA, lda, B + i * sB, ldb, beta, C + i * sC, ldc);
}

void gemm_reference(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                    const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double acc = 0.0;
      for (int64_t k = 0; k < K; ++k) {
        double av = transA ? A[k * lda + i] : A[i * lda + k];
        double bv = transB ? B[j * ldb + k] : B[k * ldb + j];
        acc += av * bv;
      }
      float prev = beta == 0.f ? 0.f : beta * C[i * ldc + j];
      C[i * ldc + j] = static_cast<float>(alpha * acc + prev);
    }
}

}  // namespace lowrank::tensor
