#pragma once
// Host reference of the fused attention kernels' tiling (flash_attention.cpp), on HOST pointers:
// the emulated cuda::attention_forward/backward (nn_kernels.cpp) untag and check the arguments,
// then call these for the head sizes the real launchers send to the fused kernels (32, 64, 128).
#include "autograd/attention_kernels.h"

namespace lowrank::cuda::emu {

using autograd::detail::AttnDims;
using autograd::detail::AttnGrads;
using autograd::detail::Operand;

// As cuda/flash_attention_fwd.cu: out (B, Tq, C), L (B, NH, Tq).
void flash_attention_forward(float* out, float* L, const Operand& q, const Operand& k, const Operand& v,
                             const AttnDims& d);
// As cuda/flash_attention_bwd.cu and _dkdv.cu: g.dq, g.dk, g.dv += (nullptr skipped); reads g.out.
void flash_attention_backward(const AttnGrads& g, const float* L, const Operand& q, const Operand& k, const Operand& v,
                              const AttnDims& d);

}  // namespace lowrank::cuda::emu
