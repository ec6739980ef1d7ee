#pragma once
// Device dispatch in one line. Every op and the optimizer have a CPU kernel (autograd/kernels.h,
// optim/adamw.h) and a CUDA launcher (cuda/kernels.h) of the same name and arguments on raw pointers;
//   run(dev, cpu::gelu_forward, cuda::gelu_forward, y, x, n);
// calls the one for `dev`. A CPU-only build links cuda/cpu_only/stubs.cpp, whose launchers throw
// (no CUDA tensor can exist there), so no call site needs a build-time guard.
#include "tensor/storage.h"

namespace lowrank::tensor {

template <typename CpuKernel, typename CudaLauncher, typename... Args>
void run(Device dev, CpuKernel cpu, CudaLauncher gpu, Args... args) {
  if (dev == Device::CUDA) {
    gpu(args...);
  } else {
    cpu(args...);
  }
}

}  // namespace lowrank::tensor
