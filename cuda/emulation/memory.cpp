// Host emulation of cuda/memory.cu (see tagged.h for why it exists: CI runs the CUDA tests without
// a GPU). "Device" memory is host memory handed out as tagged pointers. The byte accounting is the
// real allocator's (sizes rounded up to 512 bytes, in use and peak), so memory reports and tests
// of them behave the same. Freed blocks go straight back to the host heap instead of a cache.
// Stricter than the GPU, on purpose, to catch dispatch bugs early:
//   * every live allocation is recorded, so launchers can check their ranges (check_extent) and
//     release() can check that it gets a live block and the size it was allocated with;
//   * new blocks are filled with NaN bytes: the caching allocator hands out stale data, so code
//     that accumulates into memory it never zeroed shows up as NaN instead of passing by luck.
#include "cuda/memory.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

#include "cuda/emulation/tagged.h"

namespace lowrank::cuda {

namespace {

size_t round_up(size_t bytes) { return (bytes + 511) / 512 * 512; }  // as cuda/memory.cu

struct Registry {
  std::mutex mu;
  std::map<uintptr_t, size_t> live;  // host address of a block -> bytes asked for
  size_t in_use = 0, peak = 0;       // rounded bytes, like the real allocator
};
Registry& registry() {
  static Registry* r = new Registry();  // never destroyed: storages may outlive static teardown
  return *r;
}

}  // namespace

bool available() { return true; }  // the emulated device is always there: the CUDA tests run

cudaStream_t stream() { return nullptr; }  // every emulated launch completes before it returns

void* alloc(size_t bytes) {
  const size_t n = bytes == 0 ? 1 : bytes;  // a distinct, registrable block even for 0 bytes
  void* host = std::malloc(n);
  LR_CHECK(host != nullptr, "cuda emulation: out of host memory allocating ", bytes, " bytes");
  LR_CHECK(!emu::is_device(host), "cuda emulation: host address ", host, " already has the device tag bit");
  std::memset(host, 0xFF, n);  // all-ones bytes are a float NaN: uninitialised reads show up
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  r.live[reinterpret_cast<uintptr_t>(host)] = bytes;
  r.in_use += round_up(bytes);
  if (r.in_use > r.peak) r.peak = r.in_use;
  return emu::tag(host);
}

void release(void* p, size_t bytes) {
  if (!p) return;
  void* host = emu::untag(p);
  Registry& r = registry();
  {
    std::lock_guard<std::mutex> lock(r.mu);
    auto it = r.live.find(reinterpret_cast<uintptr_t>(host));
    // release() is called from destructors: a wrong pointer or size cannot throw there, and it
    // would corrupt the real allocator's free lists, so it stops the process with the reason.
    if (!emu::is_device(p) || it == r.live.end() || round_up(it->second) != round_up(bytes)) {
      std::fprintf(
          stderr, "cuda emulation: release(%p, %zu) of %s\n", p, bytes,
          it == r.live.end() ? "a pointer that is not a live device block" : "a block allocated with a different size");
      std::abort();
    }
    r.in_use -= round_up(it->second);
    r.live.erase(it);
  }
  std::free(host);
}

void empty_cache() {}  // nothing is cached: release() already freed every block

size_t bytes_in_use() {
  std::lock_guard<std::mutex> lock(registry().mu);
  return registry().in_use;
}

size_t bytes_peak() {
  std::lock_guard<std::mutex> lock(registry().mu);
  return registry().peak;
}

void reset_bytes_peak() {
  std::lock_guard<std::mutex> lock(registry().mu);
  registry().peak = registry().in_use;
}

namespace emu {

void check_extent(const void* p, size_t bytes, const char* what) {
  const uintptr_t begin = reinterpret_cast<uintptr_t>(untag(p));
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  auto it = r.live.upper_bound(begin);  // the first block starting after p; the one before may hold p
  LR_CHECK(it != r.live.begin(), "cuda emulation: ", what, " = ", p, " is not in any live device allocation");
  --it;
  const uintptr_t block = it->first, end = block + it->second;
  LR_CHECK(begin < end || (begin == block && bytes == 0), "cuda emulation: ", what, " = ", p,
           " is not in any live device allocation (freed, or never allocated)");
  LR_CHECK(bytes <= end - begin, "cuda emulation: ", what, " reads or writes ", bytes, " bytes from byte ",
           begin - block, " of a ", it->second, "-byte device allocation (out of bounds by ", bytes - (end - begin),
           " bytes)");
}

}  // namespace emu

}  // namespace lowrank::cuda
