#pragma once
// Stands in for cuda/common.cuh (it comes first on the include path) so that the fused attention
// kernels' own source (cuda/flash_attention_*.cu, launches rewritten by tools/flash_sim.sh) runs on the
// CPU: one std::thread per CUDA thread, a real barrier for __syncthreads and __syncwarp, warp shuffles
// through a per-warp buffer between two warp barriers, and each block's dynamic shared memory as its
// own allocation of exactly the launch's size, filled with NaN (AddressSanitizer catches a read past
// it; a read of a cell nothing wrote poisons the result). Blocks run one after another.
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>
#include "tensor/error.h"

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define LR_CUDA_LAUNCHED()
#define CUDA_CHECK(x) (void)(x)

struct alignas(16) float4 {
  float x, y, z, w;
};
struct dim3 {
  unsigned x = 1, y = 1, z = 1;
};
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize };
template <typename K>
int cudaFuncSetAttribute(K, cudaFuncAttribute, int) {
  return 0;
}

struct Barrier {
  std::mutex m;
  std::condition_variable cv;
  int n, count = 0;
  long gen = 0;
  explicit Barrier(int n_) : n(n_) {}
  void wait() {
    std::unique_lock<std::mutex> lk(m);
    long g = gen;
    if (++count == n) {
      count = 0;
      ++gen;
      cv.notify_all();
    } else
      cv.wait(lk, [&] { return gen != g; });
  }
};
struct SimBlock {
  Barrier block;
  std::vector<Barrier*> warps;
  std::vector<float> shfl;  // 32 per warp
  float4* smem;
  SimBlock(int threads) : block(threads), shfl(threads) {
    for (int w = 0; w < threads / 32; ++w) warps.push_back(new Barrier(32));
  }
  ~SimBlock() {
    for (auto* b : warps) delete b;
  }
};
inline thread_local dim3 threadIdx, blockIdx;
inline dim3 blockDim, gridDim;
inline thread_local SimBlock* sim_block = nullptr;
inline float4* sim_smem() { return sim_block->smem; }
inline void __syncthreads() { sim_block->block.wait(); }
inline void __syncwarp() { sim_block->warps[threadIdx.x / 32]->wait(); }
inline float __shfl_xor_sync(unsigned, float v, int o) {
  float* buf = &sim_block->shfl[threadIdx.x / 32 * 32];
  const int lane = threadIdx.x % 32;
  __syncwarp();
  buf[lane] = v;
  __syncwarp();
  const float r = buf[lane ^ o];
  __syncwarp();
  return r;
}
inline int64_t min(int64_t a, int64_t b) { return a < b ? a : b; }
inline int min(int a, int b) { return a < b ? a : b; }
using cudaStream_t = int;

// kernel<<<grid, threads, smem>>>(...) becomes sim_launch(grid, threads, smem, [&] { kernel(...); }).
inline void sim_launch(unsigned grid, unsigned threads, size_t smem, const std::function<void()>& fn) {
  gridDim.x = grid;
  blockDim.x = threads;
  for (unsigned b = 0; b < grid; ++b) {
    SimBlock blk(static_cast<int>(threads));
    const size_t bytes = (smem + 15) / 16 * 16;  // the kernels' sizes are multiples of 16 already
    blk.smem = static_cast<float4*>(std::aligned_alloc(16, bytes ? bytes : 16));
    float* f = reinterpret_cast<float*>(blk.smem);
    for (size_t i = 0; i < bytes / 4; ++i) f[i] = NAN;
    std::vector<std::thread> ts;
    for (unsigned t = 0; t < threads; ++t)
      ts.emplace_back([&, t, b] {
        threadIdx.x = t;
        blockIdx.x = b;
        sim_block = &blk;
        fn();
      });
    for (auto& th : ts) th.join();
    std::free(blk.smem);
  }
}

namespace lowrank::cuda {
inline cudaStream_t stream() { return 0; }
inline void* alloc(size_t bytes) { return std::malloc(bytes); }
inline void release(void* p, size_t) { std::free(p); }
}  // namespace lowrank::cuda

namespace lowrank::cuda::detail {
constexpr int kThreads = 256;  // as the real common.cuh: the flash kernels must not pick this one
constexpr int64_t kMaxBlocks = 4096;
inline int blocks_for(int64_t n, int threads = kThreads) {
  const int64_t b = (n + threads - 1) / threads;
  return static_cast<int>(b < 1 ? 1 : (b > kMaxBlocks ? kMaxBlocks : b));
}
inline float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
inline float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
}  // namespace lowrank::cuda::detail
