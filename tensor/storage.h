#pragma once
// Storage: one owned, move-only buffer of float32 on a device. Tensors share it via shared_ptr.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

namespace lowrank::tensor {

// True when this build has the CUDA backend (cuda/ or its host emulation). A CPU-only build links
// cuda/cpu_only/stubs.cpp instead, whose hooks and launchers throw: no CUDA tensor can exist there.
#ifdef LOWRANK_HAVE_CUDA
inline constexpr bool kCudaBuilt = true;
#else
inline constexpr bool kCudaBuilt = false;
#endif

// Meta: shapes only, no memory (to build and count GPT-3-sized models without allocating).
enum class Device { CPU, CUDA, Meta };
std::string device_name(Device d);
Device parse_device(const std::string& name);  // "cpu" | "cuda" | "meta", throws otherwise

class Storage {
 public:
  Storage(size_t numel, Device device);  // uninitialised memory
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  Storage(Storage&& o) noexcept;
  Storage& operator=(Storage&& o) noexcept;

  float* data() const { return ptr_; }
  size_t numel() const { return numel_; }
  size_t bytes() const { return numel_ * sizeof(float); }
  Device device() const { return device_; }

  // Writes are counted, as PyTorch's version counter counts them: Tensor's in-place methods (copy_,
  // add_, fill_) and Tensor::mark_written, which a writer through raw pointers into a parameter calls,
  // bump the version and drop `derived`, what was computed from the old contents (the bf16 copy of a
  // frozen weight, tensor/bf16.h), so a stale copy can never be read. Kernels that write their outputs
  // through data() do not count: those buffers are fresh, nothing was derived from them yet.
  uint64_t version() const { return version_; }
  void bump_version() {
    ++version_;
    derived_.reset();
  }
  const std::shared_ptr<const void>& derived() const { return derived_; }
  void set_derived(std::shared_ptr<const void> d) { derived_ = std::move(d); }

 private:
  void release();
  float* ptr_ = nullptr;
  size_t numel_ = 0;
  Device device_ = Device::CPU;
  uint64_t version_ = 0;
  std::shared_ptr<const void> derived_;
};

// Bytes currently held by CPU storages, and the high-water mark (for memory reports).
size_t cpu_bytes_in_use();
size_t cpu_bytes_peak();
void reset_cpu_bytes_peak();
// Large freed CPU blocks kept for reuse (see storage.cpp), and a way to hand them back to the OS.
size_t cpu_bytes_cached();
void release_cpu_cache();

// Device memory hooks: implemented in cuda/ when built with CUDA, otherwise (cuda/cpu_only/stubs.cpp)
// they throw a clear error.
float* cuda_alloc_floats(size_t numel);
void cuda_free_floats(float* p, size_t numel);
// dst/src on the given devices, at least one of them CUDA.
void cuda_copy_floats(float* dst, Device dst_dev, const float* src, Device src_dev, size_t numel);
// Elementwise work on CUDA buffers for Tensor::fill_, copy_ and add_ (cuda/tensor_hooks.cpp): tensor/
// declares what it needs and cuda/ implements it, so tensor/ never includes cuda/. Strides and sizes
// as in Tensor (ndim <= kMaxDims), in elements.
void cuda_fill_floats(float* p, float v, int64_t n);                          // p (n) = v
void cuda_axpy_floats(float* dst, const float* src, float alpha, int64_t n);  // dst (n) += alpha · src
void cuda_copy_strided(float* dst, const int64_t* dst_strides, const float* src, const int64_t* src_strides,
                       const int64_t* sizes, int64_t ndim);
void cuda_axpy_strided(float* dst, const int64_t* dst_strides, const float* src, const int64_t* src_strides,
                       const int64_t* sizes, int64_t ndim, float alpha);
// tensor::gemm_batched on CUDA buffers (tensor/gemm.h).
void cuda_gemm_batched(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                       int64_t lda, int64_t sA, const float* B, int64_t ldb, int64_t sB, float beta, float* C,
                       int64_t ldc, int64_t sC, int64_t batch);

}  // namespace lowrank::tensor
