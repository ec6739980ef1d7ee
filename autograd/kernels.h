#pragma once
// The CPU reference kernels of the ops, on raw HOST pointers: the same names, arguments and meaning
// as the CUDA launchers of cuda/kernels.h, so an op calls either in one line,
//   run(dev, cpu::layernorm_forward, cuda::layernorm_forward, y, mean, rstd, x, w, b, N, C, eps);
// and the host emulation of the CUDA backend (cuda/emulation/) runs these very kernels on its
// untagged pointers. The kernels shared with CUDA are declared from autograd/kernels.def, where each
// signature is written once with its shapes and meaning; each is defined in its op's file, beside the
// op and the math it implements (autograd/<op>.cpp). Forward kernels overwrite their outputs; backward
// kernels ACCUMULATE (+=) into gradient buffers, and a gradient pointer may be nullptr where that input
// needs none. Attention's kernels, which take operand structs, are in autograd/attention_kernels.h.
#include <cstdint>

namespace lowrank::autograd::cpu {

// The kernels of autograd/kernels.def: void add_forward(float* y, ...); and so on.
#define LR_KERNEL(name, params) void name params;
#include "autograd/kernels.def"
#undef LR_KERNEL

// ---- CPU only (reduce.cpp) ------------------------------------------------------------------------
double sumsq(const float* x, int64_t n);  // Σ x², squares and sum in double, in order (clip_grad_norm's)

}  // namespace lowrank::autograd::cpu
