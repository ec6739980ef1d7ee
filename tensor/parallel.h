#pragma once
// Thread count for everything the CPU path runs: our OpenMP loops and OpenBLAS.
// Loops use static schedules and never reduce across threads in a run-dependent order,
// so a fixed seed and thread count give bit-identical results.
namespace lowrank::tensor {

void set_num_threads(int n);  // n <= 0: use all cores
int num_threads();
// Smallest amount of work (elements) per loop worth waking the thread pool for.
constexpr long kParallelGrain = 1 << 14;

}  // namespace lowrank::tensor
