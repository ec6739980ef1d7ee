#include "cuda/memory.h"

#include <map>
#include <mutex>
#include <vector>

#include "cuda/check.h"
#include "tensor/storage.h"

namespace lowrank::cuda {

namespace {
// Sizes are rounded up to 512 bytes so similar requests share a free list.
size_t round_up(size_t bytes) { return (bytes + 511) / 512 * 512; }

struct Cache {
  std::mutex mu;
  std::map<size_t, std::vector<void*>> free_blocks;  // rounded size -> blocks
  size_t in_use = 0, peak = 0;
};
Cache& cache() {
  static Cache* c = new Cache();  // never destroyed: device teardown order at exit is undefined
  return *c;
}
}  // namespace

bool available() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

cudaStream_t stream() {
  static cudaStream_t s = [] {
    cudaStream_t st;
    CUDA_CHECK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    return st;
  }();
  return s;
}

void* alloc(size_t bytes) {
  Cache& c = cache();
  const size_t n = round_up(bytes);
  std::lock_guard<std::mutex> lock(c.mu);
  void* p = nullptr;
  auto it = c.free_blocks.find(n);
  if (it != c.free_blocks.end() && !it->second.empty()) {
    p = it->second.back();
    it->second.pop_back();
  } else {
    CUDA_CHECK(cudaMalloc(&p, n));
  }
  c.in_use += n;
  if (c.in_use > c.peak) c.peak = c.in_use;
  return p;
}

void release(void* p, size_t bytes) {
  if (!p) return;
  Cache& c = cache();
  const size_t n = round_up(bytes);
  std::lock_guard<std::mutex> lock(c.mu);
  c.free_blocks[n].push_back(p);
  c.in_use -= n;
}

void empty_cache() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  CUDA_CHECK(cudaStreamSynchronize(stream()));
  for (auto& kv : c.free_blocks)
    for (void* p : kv.second) CUDA_CHECK(cudaFree(p));
  c.free_blocks.clear();
}

size_t bytes_in_use() { return cache().in_use; }
size_t bytes_peak() { return cache().peak; }
void reset_bytes_peak() { cache().peak = cache().in_use; }

}  // namespace lowrank::cuda

// ---- the tensor library's device hooks ----
namespace lowrank::tensor {

float* cuda_alloc_floats(size_t numel) { return static_cast<float*>(cuda::alloc(numel * sizeof(float))); }

void cuda_free_floats(float* p, size_t numel) { cuda::release(p, numel * sizeof(float)); }

void cuda_copy_floats(float* dst, Device dst_dev, const float* src, Device src_dev, size_t numel) {
  cudaMemcpyKind kind = dst_dev == Device::CUDA
                            ? (src_dev == Device::CUDA ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice)
                            : cudaMemcpyDeviceToHost;
  CUDA_CHECK(cudaMemcpyAsync(dst, src, numel * sizeof(float), kind, cuda::stream()));
  // Device -> host: the caller reads dst next, so wait. Host -> device from pageable memory (all of
  // ours) returns once the source is staged (CUDA runtime API, "API synchronization behavior"), so
  // the host buffer may be freed at once and no wait is needed: uploads of ids, masks and row
  // weights then overlap with the kernels already queued.
  if (kind == cudaMemcpyDeviceToHost) CUDA_CHECK(cudaStreamSynchronize(cuda::stream()));
}

}  // namespace lowrank::tensor
