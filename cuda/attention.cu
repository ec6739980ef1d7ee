// Scaled dot-product attention over NH heads on the device (CPU reference: autograd/attention_kernels.cpp,
// same arguments: autograd/attention_kernels.h). Two implementations (cuda/attention_paths.h):
//   * head size 32, 64 or 128 (GPT-2: 64): the fused FlashAttention-2 kernels (Dao, 2023; Algorithm 1
//     in cuda/flash_attention_fwd.cu, Algorithm 2 in cuda/flash_attention_bwd.cu and _dkdv.cu): tiles
//     of Q rows per block, K/V tiles streamed through shared memory, online softmax, no (Tq, Tk)
//     matrix anywhere, causal tiles above the diagonal skipped;
//   * any other head size, a device whose per-block shared memory is too small for those kernels, or
//     a backward call without the forward's output (AttnGrads::out): cuBLAS GEMMs around a masked
//     softmax (cuda/attention_cublas.cu), with (B·NH·Tq·Tk) scratch for one call.
// Both save the same state for backward: the row log-sum-exp L (B, NH, Tq) of the scores.
#include <algorithm>

#include "cuda/attention_paths.h"
#include "cuda/check.h"
#include "cuda/flash_attention.h"
#include "cuda/kernels.h"

namespace lowrank::cuda {

using autograd::detail::AttnDims;
using autograd::detail::AttnGrads;
using autograd::detail::Operand;

namespace {

// The fused kernels exist for this head size and their shared memory fits the current device.
bool use_flash(int64_t hs) {
  if (!flash::supported(hs)) return false;
  int dev = 0, optin = 0;
  CUDA_CHECK(cudaGetDevice(&dev));
  CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
  const size_t need = std::max({flash::forward_smem(hs), flash::dq_smem(hs), flash::dkdv_smem(hs)});
  return need <= static_cast<size_t>(optin);
}

}  // namespace

void attention_forward(float* out, float* L, const Operand& q, const Operand& k, const Operand& v, const AttnDims& d) {
  if (d.B * d.NH * d.Tq == 0 || d.hs == 0) return;
  if (use_flash(d.hs))
    detail::flash_attention_forward(out, L, q, k, v, d);
  else
    detail::cublas_attention_forward(out, L, q, k, v, d);
}

void attention_backward(const AttnGrads& g, const float* L, const Operand& q, const Operand& k, const Operand& v,
                        const AttnDims& d) {
  if (d.B * d.NH * d.Tq == 0 || d.hs == 0) return;
  if (g.out && use_flash(d.hs))
    detail::flash_attention_backward(g, L, q, k, v, d);
  else
    detail::cublas_attention_backward(g, L, q, k, v, d);
}

}  // namespace lowrank::cuda
