#pragma once
// The two implementations behind cuda::attention_forward/backward (cuda/attention.cu chooses):
// the fused FlashAttention-2 kernels for head sizes 32, 64 and 128, and cuBLAS GEMMs around a
// masked-softmax kernel for any other. Arguments as in cuda/kernels.h. Internal to cuda/.
#include <cstdint>

#include "autograd/attention_kernels.h"

namespace lowrank::cuda::detail {

using autograd::detail::AttnDims;
using autograd::detail::AttnGrads;
using autograd::detail::Operand;

// cuda/flash_attention_fwd.cu, _bwd.cu: d.hs in {32, 64, 128}; backward reads g.out (the forward's
// output, for D = rowsum(dO ⊙ O)).
void flash_attention_forward(float* out, float* L, const Operand& q, const Operand& k, const Operand& v,
                             const AttnDims& d);
void flash_attention_backward(const AttnGrads& g, const float* L, const Operand& q, const Operand& k, const Operand& v,
                              const AttnDims& d);
// Its dK/dV half (cuda/flash_attention_dkdv.cu): g.dk, g.dv += from D (B, NH, Tq) = rowsum(dO ⊙ O).
void flash_attention_dkdv(const AttnGrads& g, const float* L, const float* D, const Operand& q, const Operand& k,
                          const Operand& v, const AttnDims& d);

// cuda/attention_cublas.cu: any head size; (B·NH·Tq·Tk) scratch for one call.
void cublas_attention_forward(float* out, float* L, const Operand& q, const Operand& k, const Operand& v,
                              const AttnDims& d);
void cublas_attention_backward(const AttnGrads& g, const float* L, const Operand& q, const Operand& k, const Operand& v,
                               const AttnDims& d);

}  // namespace lowrank::cuda::detail
