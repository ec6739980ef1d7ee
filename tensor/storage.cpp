#include "tensor/storage.h"

#include <atomic>
#include <cstdlib>
#include <new>

#include "tensor/error.h"

namespace lowrank::tensor {

namespace {
constexpr size_t kAlign = 64;  // one cache line; AVX-512 loads stay aligned
std::atomic<size_t> g_in_use{0};
std::atomic<size_t> g_peak{0};

void note_alloc(size_t bytes) {
  size_t now = g_in_use.fetch_add(bytes) + bytes;
  size_t peak = g_peak.load();
  while (now > peak && !g_peak.compare_exchange_weak(peak, now)) {
  }
}
}  // namespace

std::string device_name(Device d) { return d == Device::CPU ? "cpu" : d == Device::CUDA ? "cuda" : "meta"; }

Device parse_device(const std::string& name) {
  if (name == "cpu") return Device::CPU;
  if (name == "cuda") return Device::CUDA;
  if (name == "meta") return Device::Meta;
  throw Error(cat("unknown device '", name, "' (expected cpu or cuda)"));
}

Storage::Storage(size_t numel, Device device) : numel_(numel), device_(device) {
  if (numel == 0 || device == Device::Meta) return;
  if (device == Device::CUDA) {
    ptr_ = cuda_alloc_floats(numel);
    return;
  }
  size_t bytes = (numel * sizeof(float) + kAlign - 1) / kAlign * kAlign;
  ptr_ = static_cast<float*>(std::aligned_alloc(kAlign, bytes));
  if (!ptr_) throw Error(cat("Storage: out of memory allocating ", bytes, " bytes"));
  note_alloc(numel_ * sizeof(float));
}

Storage::~Storage() { release(); }

Storage::Storage(Storage&& o) noexcept : ptr_(o.ptr_), numel_(o.numel_), device_(o.device_) {
  o.ptr_ = nullptr;
  o.numel_ = 0;
}

Storage& Storage::operator=(Storage&& o) noexcept {
  if (this != &o) {
    release();
    ptr_ = o.ptr_;
    numel_ = o.numel_;
    device_ = o.device_;
    o.ptr_ = nullptr;
    o.numel_ = 0;
  }
  return *this;
}

void Storage::release() {
  if (!ptr_) return;
  if (device_ == Device::CUDA) {
    cuda_free_floats(ptr_, numel_);
  } else {
    std::free(ptr_);
    g_in_use.fetch_sub(numel_ * sizeof(float));
  }
  ptr_ = nullptr;
}

size_t cpu_bytes_in_use() { return g_in_use.load(); }
size_t cpu_bytes_peak() { return g_peak.load(); }
void reset_cpu_bytes_peak() { g_peak.store(g_in_use.load()); }

#ifndef LOWRANK_HAVE_CUDA
float* cuda_alloc_floats(size_t) {
  throw Error("device cuda: this build of lowrank has no CUDA backend (configure with nvcc and -DLOWRANK_CUDA=ON)");
}
void cuda_free_floats(float*, size_t) {}
void cuda_copy_floats(float*, Device, const float*, Device, size_t) {
  throw Error("device cuda: this build of lowrank has no CUDA backend");
}
#endif

}  // namespace lowrank::tensor
