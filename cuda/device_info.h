#pragma once
// The GPU a benchmark runs on and its theoretical fp32 peak, to report "fraction of peak".
// Plain C++ types only, so CPU-only examples can include it; call device_info() only under
// `if constexpr (tensor::kCudaBuilt)` (it is defined in cuda/device_info.cpp, built with CUDA).
#include <cstddef>
#include <string>

namespace lowrank::cuda {

struct DeviceInfo {
  std::string name;  // e.g. "NVIDIA H100 80GB HBM3"
  int cc_major = 0, cc_minor = 0;
  int sm_count = 0;
  int fp32_lanes_per_sm = 0;  // FP32 FMA units per SM for this compute capability (see the .cpp)
  double clock_ghz = 0;       // peak (boost) SM clock
  size_t memory_bytes = 0;
  // 2 FLOP per FMA x lanes x SMs x clock: the non-tensor-core fp32 peak (TF32 off, our default).
  double fp32_peak_tflops() const { return 2.0 * fp32_lanes_per_sm * sm_count * clock_ghz / 1e3; }
};

bool available();            // a CUDA device is present and usable (also in cuda/memory.h)
DeviceInfo device_info();    // the current device; throws when none is usable
void synchronize();          // wait for every launch on the backend's stream (timing)
size_t memory_peak_bytes();  // high-water mark of the caching allocator's live blocks
void reset_memory_peak();    // restart that mark from the bytes in use now

}  // namespace lowrank::cuda
