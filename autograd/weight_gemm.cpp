#include "autograd/weight_gemm.h"

#include <vector>

#include "tensor/bf16.h"
#include "tensor/gemm.h"
#include "tensor/gemm_bf16.h"
#include "tensor/precision.h"

namespace lowrank::autograd {

namespace {
constexpr int64_t kThinDim = 16;  // tensor/gemm_thin.cpp's: below it the fp32 loops win anyway

// The calling thread's buffer for a bf16 copy of the activations: it grows to the step's largest
// operand and stays, so a step does not map fresh pages for it at every GEMM.
uint16_t* scratch(int64_t n) {
  thread_local std::vector<uint16_t> buf;
  if (static_cast<int64_t>(buf.size()) < n) buf.resize(static_cast<size_t>(n));
  return buf.data();
}
}  // namespace

bool weight_gemm_in_bf16(const Tensor& w, int64_t M, int64_t N, int64_t K) {
  return tensor::precision() == tensor::Precision::bf16 && w.device() == Device::CPU && !w.requires_grad() &&
         M > kThinDim && N > kThinDim && K > kThinDim && tensor::bf16_gemm_available();
}

void weight_gemm(Device dev, bool tw, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const Tensor& w,
                 int64_t ldb, float beta, float* C, int64_t ldc) {
  if (!weight_gemm_in_bf16(w, M, N, K))
    return tensor::gemm_batched(dev, false, tw, M, N, K, 1.f, A, lda, 0, w.data(), ldb, 0, beta, C, ldc, 0, 1);
  const std::shared_ptr<const tensor::Bf16Copy> w16 = tensor::bf16_copy(w);  // held until the GEMM is done
  uint16_t* a16 = scratch(M * K);
  tensor::to_bf16_rows(a16, A, M, K, lda);
  tensor::gemm_bf16(false, tw, M, N, K, a16, K, w16->values.data(), ldb, beta, C, ldc);
}

}  // namespace lowrank::autograd
