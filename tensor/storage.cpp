#include "tensor/storage.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

#include "tensor/error.h"

namespace lowrank::tensor {

namespace {
constexpr size_t kAlign = 64;  // one cache line; AVX-512 loads stay aligned
std::atomic<size_t> g_in_use{0};
std::atomic<size_t> g_peak{0};

// Large blocks are kept for reuse: a training step allocates and frees the same big buffers
// (logits and their gradient: 200 MB each for GPT-2 BPE at 1024 tokens) every step, and returning
// them to the OS costs a page fault per 4 KiB on the next first touch plus the kernel zeroing the
// page, a visible share of a step (docs/benchmarks.md, "Page faults, zero fills and the 2-thread
// profile"). Blocks of >= 1 MiB go back to per-size free lists while in-use + cached bytes stay within
// 1.25x the high-water mark of in-use bytes (or 1 GiB): the pool grows to the working set of one step
// and a quarter more, so sizes that never repeat (a growing KV cache) cannot pile up beyond that. The
// quarter: at the peak itself every byte is in use, so with a cap of exactly the peak the block freed
// right after it (the logits, freed once their gradient exists) would be refused whenever anything
// else is cached, and come back as fresh pages in the next step.
constexpr size_t kCacheMinBytes = size_t(1) << 20;
constexpr size_t kCacheMinCapBytes = size_t(1) << 30;
struct BlockCache {
  std::mutex mu;
  std::unordered_map<size_t, std::vector<float*>> free_blocks;  // rounded bytes -> blocks
  size_t cached = 0;
};
BlockCache& block_cache() {
  static BlockCache* c = new BlockCache();  // never destroyed: storages may outlive static teardown
  return *c;
}

// Bytes reserved for numel floats: a multiple of kAlign; a cached block (>= 1 MiB) is rounded up to its
// size class, 8 classes per power of two (at most 12.5% slack), because buffers whose size changes from
// step to step must still find a block: an E2E batch is as long as its longest example and the LM head
// runs on as many rows as the batch has completion tokens, so exact-size lists would miss on almost
// every step, and each miss costs a fresh mapping, its page faults and the kernel's zeroing.
size_t rounded_bytes(size_t numel) {
#ifdef LOWRANK_EXACT_ALLOC
  return numel * sizeof(float);  // sanitizer builds (CMake LOWRANK_SANITIZE): no slack for overruns to hide in
#endif
  const size_t bytes = (numel * sizeof(float) + kAlign - 1) / kAlign * kAlign;
  if (bytes < kCacheMinBytes) return bytes;
  const size_t step = (size_t(1) << (63 - __builtin_clzll(bytes))) / 8;  // 1/8 of the power of two below
  return (bytes + step - 1) / step * step;
}

float* cpu_alloc(size_t bytes) {
#ifdef LOWRANK_EXACT_ALLOC
  // aligned_alloc wants a multiple of the alignment (ASan enforces it); posix_memalign takes any size.
  // No block cache either: a reused block would hide a use after free from ASan.
  void* p = nullptr;
  return posix_memalign(&p, kAlign, bytes) == 0 ? static_cast<float*>(p) : nullptr;
#endif
  if (bytes >= kCacheMinBytes) {
    BlockCache& c = block_cache();
    std::lock_guard<std::mutex> lock(c.mu);
    auto it = c.free_blocks.find(bytes);
    if (it != c.free_blocks.end() && !it->second.empty()) {
      float* p = it->second.back();
      it->second.pop_back();
      c.cached -= bytes;
      return p;
    }
  }
  return static_cast<float*>(std::aligned_alloc(kAlign, bytes));
}

void cpu_free(float* p, size_t bytes) {
#ifdef LOWRANK_EXACT_ALLOC
  std::free(p);
  return;
#endif
  if (bytes >= kCacheMinBytes) {
    BlockCache& c = block_cache();
    std::lock_guard<std::mutex> lock(c.mu);
    const size_t peak = g_peak.load();
    const size_t cap = std::max(kCacheMinCapBytes, peak + peak / 4);
    if (c.cached + g_in_use.load() <= cap) {  // g_in_use still counts this block
      c.free_blocks[bytes].push_back(p);
      c.cached += bytes;
      return;
    }
  }
  std::free(p);
}

void note_alloc(size_t bytes) {
  size_t now = g_in_use.fetch_add(bytes) + bytes;
  size_t peak = g_peak.load();
  while (now > peak && !g_peak.compare_exchange_weak(peak, now)) {}
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
  const size_t bytes = rounded_bytes(numel);
  ptr_ = cpu_alloc(bytes);
  if (!ptr_) throw Error(cat("Storage: out of memory allocating ", bytes, " bytes"));
  note_alloc(numel_ * sizeof(float));
}

Storage::~Storage() { release(); }

Storage::Storage(Storage&& o) noexcept
    : ptr_(o.ptr_), numel_(o.numel_), device_(o.device_), version_(o.version_), derived_(std::move(o.derived_)) {
  o.ptr_ = nullptr;
  o.numel_ = 0;
}

Storage& Storage::operator=(Storage&& o) noexcept {
  if (this != &o) {
    release();
    ptr_ = o.ptr_;
    numel_ = o.numel_;
    device_ = o.device_;
    version_ = o.version_;  // the contents, their count of writes and what was derived from them move together
    derived_ = std::move(o.derived_);
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
    cpu_free(ptr_, rounded_bytes(numel_));
    g_in_use.fetch_sub(numel_ * sizeof(float));
  }
  ptr_ = nullptr;
}

size_t cpu_bytes_in_use() { return g_in_use.load(); }
size_t cpu_bytes_peak() { return g_peak.load(); }
void reset_cpu_bytes_peak() { g_peak.store(g_in_use.load()); }

void release_cpu_cache() {
  BlockCache& c = block_cache();
  std::lock_guard<std::mutex> lock(c.mu);
  for (auto& kv : c.free_blocks)
    for (float* p : kv.second) std::free(p);
  c.free_blocks.clear();
  c.cached = 0;
}

size_t cpu_bytes_cached() {
  BlockCache& c = block_cache();
  std::lock_guard<std::mutex> lock(c.mu);
  return c.cached;
}

}  // namespace lowrank::tensor
