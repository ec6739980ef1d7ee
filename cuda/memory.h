#pragma once
// Device memory for the CUDA backend: a caching allocator over cudaMalloc (freed blocks are kept
// in per-size free lists and reused; no managed memory) and the one stream every kernel runs on.
#include <cstddef>

#include <cuda_runtime.h>

namespace lowrank::cuda {

bool available();                     // a CUDA device is present and usable
cudaStream_t stream();                // the stream all lowrank kernels and copies use
void* alloc(size_t bytes);            // from the cache, or cudaMalloc on a miss
void release(void* p, size_t bytes);  // back to the cache
void empty_cache();                   // cudaFree every cached block
size_t bytes_in_use();
size_t bytes_peak();
void reset_bytes_peak();  // peak := bytes in use now

}  // namespace lowrank::cuda
