// Host emulation (see tagged.h: CI runs the CUDA tests without a GPU) of three small things:
//   * cuda/device_info.h: a "host emulation" device with no meaningful peak, and no-op syncs;
//   * the tensor library's device hooks that cuda/memory.cu defines (Storage alloc/free and the
//     copies behind Tensor::to, item, to_vector): the copy untags each side that is on CUDA and
//     checks that every pointer is on the device it is said to be on;
//   * the few CUDA runtime calls host code outside cuda/ makes (tests/cuda_test_util.h uploads with
//     cudaMemcpyAsync, and CUDA_CHECK names errors): this build does not link cudart.
#include <cuda_runtime.h>

#include <cstring>

#include "cuda/device_info.h"
#include "cuda/emulation/tagged.h"
#include "cuda/memory.h"
#include "tensor/storage.h"

namespace lowrank::cuda {

DeviceInfo device_info() {
  DeviceInfo d;
  d.name = "host emulation";  // zero SMs and clock: no fp32 peak to report a fraction of
  return d;
}

void synchronize() {}  // emulated launches finish before they return
size_t memory_peak_bytes() { return bytes_peak(); }
void reset_memory_peak() { reset_bytes_peak(); }

}  // namespace lowrank::cuda

namespace lowrank::cuda::emu {
namespace {

// The host view of a copy's endpoint that is said to be on `on_device`, after checking that claim.
const void* endpoint(const void* p, bool on_device, size_t bytes, const char* what) {
  if (bytes == 0) return p;
  LR_CHECK(is_device(p) == on_device, "cuda emulation: ", what, " = ", p, " is a ", is_device(p) ? "device" : "host",
           " pointer but the copy treats it as ", on_device ? "device" : "host", " memory");
  if (!on_device) return p;
  check_extent(p, bytes, what);
  return untag(p);
}

void copy_bytes(void* dst, bool dst_dev, const void* src, bool src_dev, size_t bytes, const char* op) {
  void* d = const_cast<void*>(endpoint(dst, dst_dev, bytes, op));
  const void* s = endpoint(src, src_dev, bytes, op);
  if (bytes) std::memmove(d, s, bytes);
}

}  // namespace
}  // namespace lowrank::cuda::emu

namespace lowrank::tensor {

float* cuda_alloc_floats(size_t numel) { return static_cast<float*>(cuda::alloc(numel * sizeof(float))); }

void cuda_free_floats(float* p, size_t numel) { cuda::release(p, numel * sizeof(float)); }

void cuda_copy_floats(float* dst, Device dst_dev, const float* src, Device src_dev, size_t numel) {
  LR_CHECK(dst_dev != Device::Meta && src_dev != Device::Meta, "cuda_copy_floats: a meta tensor has no data");
  cuda::emu::copy_bytes(dst, dst_dev == Device::CUDA, src, src_dev == Device::CUDA, numel * sizeof(float),
                        "cuda_copy_floats");
}

}  // namespace lowrank::tensor

// ---- the CUDA runtime subset (C linkage, as declared by cuda_runtime_api.h) ----

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t count, cudaMemcpyKind kind, cudaStream_t) {
  using lowrank::cuda::emu::is_device;
  if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDefault) return cudaErrorInvalidMemcpyDirection;
  const bool dst_dev =
      kind == cudaMemcpyDefault ? is_device(dst) : kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  const bool src_dev =
      kind == cudaMemcpyDefault ? is_device(src) : kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  lowrank::cuda::emu::copy_bytes(dst, dst_dev, src, src_dev, count, "cudaMemcpyAsync");
  return cudaSuccess;
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t count, cudaMemcpyKind kind) {
  return cudaMemcpyAsync(dst, src, count, kind, nullptr);
}

cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }
cudaError_t cudaGetLastError() { return cudaSuccess; }

const char* cudaGetErrorName(cudaError_t err) {
  return err == cudaSuccess                       ? "cudaSuccess"
         : err == cudaErrorInvalidMemcpyDirection ? "cudaErrorInvalidMemcpyDirection"
                                                  : "cudaError (emulated)";
}

const char* cudaGetErrorString(cudaError_t err) {
  return err == cudaSuccess ? "no error" : "error from the CUDA host emulation (see the emulated call)";
}
