// device_info(): name, SM count and clock from the runtime, FP32 lanes per SM from the CUDA C
// Programming Guide's "Arithmetic Instructions" throughput table (32-bit floating-point
// add/multiply/FMA results per clock cycle per multiprocessor).
#include "cuda/device_info.h"

#include <cuda_runtime.h>

#include "cuda/check.h"
#include "cuda/memory.h"

namespace lowrank::cuda {

namespace {

// fp32 FMA lanes per SM by compute capability: 64 on Volta/Turing and on GA100 (8.0); 128 on
// GA10x (8.6, 8.7), Ada (8.9), Hopper (9.0) and Blackwell (10.x, 12.x).
int fp32_lanes(int major, int minor) {
  if (major == 8) return minor == 0 ? 64 : 128;
  if (major >= 9) return 128;
  return 64;
}

}  // namespace

DeviceInfo device_info() {
  int dev = 0;
  CUDA_CHECK(cudaGetDevice(&dev));
  cudaDeviceProp prop{};
  CUDA_CHECK(cudaGetDeviceProperties(&prop, dev));
  int clock_khz = 0;  // cudaDeviceProp::clockRate is gone in CUDA 13; the attribute remains
  CUDA_CHECK(cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, dev));
  DeviceInfo d;
  d.name = prop.name;
  d.cc_major = prop.major;
  d.cc_minor = prop.minor;
  d.sm_count = prop.multiProcessorCount;
  d.fp32_lanes_per_sm = fp32_lanes(prop.major, prop.minor);
  d.clock_ghz = clock_khz / 1e6;
  d.memory_bytes = prop.totalGlobalMem;
  return d;
}

void synchronize() { CUDA_CHECK(cudaStreamSynchronize(stream())); }
size_t memory_peak_bytes() { return bytes_peak(); }
void reset_memory_peak() { reset_bytes_peak(); }

}  // namespace lowrank::cuda
