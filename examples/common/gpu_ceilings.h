#pragma once
// bench_ops --device cuda: the two ceilings a GPU training step is judged against, measured on the
// backend's own paths (not a vendor tool's): device-to-device copy bandwidth (Tensor::copy_, a
// cudaMemcpyAsync on the backend's stream) and the square sgemm rate of cuda::gemm (cuBLAS) in
// fp32 and with TF32 tensor cores. Host-clock timing around `repeats` launches and one
// synchronize: every launch is on one stream, so the wall time is the device time plus one
// launch latency, negligible against a 4096³ GEMM (~2 ms fp32 on an H100-class GPU).
// Only type-checked in a CPU-only build (if constexpr): the cuda:: calls are then never linked.
#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cuda/device_info.h"
#include "cuda/kernels.h"
#include "examples/common/cli.h"
#include "tensor/tensor.h"

namespace lowrank::examples {

struct GpuCeilingOptions {
  int64_t gemm_n = 4096;   // M = N = K of the square GEMM
  int64_t copy_mb = 1024;  // bytes per copied buffer, in MiB
  int repeats = 10;        // timed launches per figure (one untimed first)
};

// Seconds per call of `launch`, timed over `repeats` calls after one warm-up, best of 3 rounds
// (another process on the GPU only ever makes a round slower).
template <typename F>
double gpu_seconds_per_call(F launch, int repeats) {
  double best = 1e30;
  launch();
  cuda::synchronize();
  for (int round = 0; round < 3; ++round) {
    Timer t;
    for (int r = 0; r < repeats; ++r) launch();
    cuda::synchronize();
    best = std::min(best, t.seconds() / repeats);
  }
  return best;
}

// Copy bandwidth counted as read + write bytes (2 x the buffer), as cudaMemcpy benchmarks do.
inline double gpu_copy_gbs(const GpuCeilingOptions& o) {
  const int64_t n = o.copy_mb * (1 << 20) / int64_t(sizeof(float));
  tensor::Tensor src = tensor::Tensor::full({n}, 1.f, tensor::Device::CUDA);
  tensor::Tensor dst = tensor::Tensor::zeros({n}, tensor::Device::CUDA);
  const double s = gpu_seconds_per_call([&] { dst.copy_(src); }, o.repeats);
  return 2.0 * double(n) * sizeof(float) / s / 1e9;
}

// C = A·B, all n x n row-major, through the backend's cuBLAS wrapper; TF32 as asked, then restored.
inline double gpu_sgemm_tflops(const GpuCeilingOptions& o, bool tf32) {
  const int64_t n = o.gemm_n;
  tensor::Tensor a = tensor::Tensor::full({n, n}, 0.01f, tensor::Device::CUDA);
  tensor::Tensor b = tensor::Tensor::full({n, n}, 0.02f, tensor::Device::CUDA);
  tensor::Tensor c = tensor::Tensor::zeros({n, n}, tensor::Device::CUDA);
  const bool was = cuda::tf32();
  cuda::set_tf32(tf32);
  const double s = gpu_seconds_per_call(
      [&] { cuda::gemm(false, false, n, n, n, 1.f, a.data(), n, b.data(), n, 0.f, c.data(), n); }, o.repeats);
  cuda::set_tf32(was);
  // A wrong product would make the rate meaningless: every entry is n * 0.01 * 0.02 (TF32 rounds
  // the inputs to 10-bit mantissas, within 1e-3 relative).
  const float want = float(n) * 0.01f * 0.02f, got = c.to_vector().back();
  LR_CHECK(std::abs(got - want) <= 2e-3f * want, "gpu sgemm: C[n-1, n-1] = ", got, ", expected ", want);
  return 2.0 * double(n) * n * n / s / 1e12;
}

inline int gpu_ceilings(const GpuCeilingOptions& o, const std::string& json_path) {
  LR_CHECK(tensor::kCudaBuilt, "--device cuda: this build has no CUDA backend (needs nvcc and -DLOWRANK_CUDA=ON)");
  if constexpr (tensor::kCudaBuilt) {
    LR_CHECK(cuda::available(), "--device cuda: no usable CUDA device found");
    const cuda::DeviceInfo d = cuda::device_info();
    const double peak = d.fp32_peak_tflops();
    std::printf("%s: compute capability %d.%d, %d SMs x %d fp32 lanes at %.3f GHz, %.1f GiB; fp32 peak %.1f TFLOP/s\n",
                d.name.c_str(), d.cc_major, d.cc_minor, d.sm_count, d.fp32_lanes_per_sm, d.clock_ghz,
                d.memory_bytes / double(1 << 30), peak);
    const double copy = gpu_copy_gbs(o);
    std::printf("device copy %lld MiB: %.1f GB/s (read + write)\n", static_cast<long long>(o.copy_mb), copy);
    const double fp32 = gpu_sgemm_tflops(o, false), tf32 = gpu_sgemm_tflops(o, true);
    const auto frac = [&](double x) { return peak > 0 ? x / peak : 0.0; };
    std::printf("sgemm %lld^3 fp32: %.2f TFLOP/s (%.0f%% of the fp32 peak)\n", static_cast<long long>(o.gemm_n), fp32,
                100 * frac(fp32));
    std::printf("sgemm %lld^3 TF32: %.2f TFLOP/s (%.1fx the fp32 peak)\n", static_cast<long long>(o.gemm_n), tf32,
                frac(tf32));
    if (!json_path.empty())
      write_json(json_path, {{"benchmark", "bench_ops"},
                             {"device", "cuda"},
                             {"gpu", d.name},
                             {"compute_capability", std::to_string(d.cc_major) + "." + std::to_string(d.cc_minor)},
                             {"sm_count", d.sm_count},
                             {"clock_ghz", d.clock_ghz},
                             {"memory_bytes", d.memory_bytes},
                             {"fp32_peak_tflops", peak},
                             {"copy_mib", o.copy_mb},
                             {"copy_gbs", copy},
                             {"gemm_n", o.gemm_n},
                             {"sgemm_fp32_tflops", fp32},
                             {"sgemm_tf32_tflops", tf32},
                             {"repeats", o.repeats}});
  }
  return 0;
}

}  // namespace lowrank::examples
