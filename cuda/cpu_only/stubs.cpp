// The CPU-only build's CUDA symbols (no CUDA compiler, or -DLOWRANK_CUDA=OFF; not built with the CUDA
// backend or its host emulation). Ops and the optimizer call the cuda:: launcher of a kernel in one
// line beside the CPU one (tensor/dispatch.h), and tensor/ calls its device hooks (tensor/storage.h),
// without build-time guards; here each throws an error naming itself. None is reachable in practice:
// a CUDA tensor cannot be made in this build (cuda_alloc_floats refuses first).
#include <string>

#include "cuda/kernels.h"
#include "tensor/error.h"
#include "tensor/storage.h"

namespace lowrank::tensor {

namespace {
[[noreturn]] void no_backend(const char* what) {
  throw Error(std::string(what) +
              ": this build of lowrank has no CUDA backend (configure with nvcc and -DLOWRANK_CUDA=ON)");
}
}  // namespace

float* cuda_alloc_floats(size_t) { no_backend("device cuda"); }
void cuda_free_floats(float*, size_t) {}  // nothing was allocated
void cuda_copy_floats(float*, Device, const float*, Device, size_t) { no_backend("device cuda: copy"); }
void cuda_fill_floats(float*, float, int64_t) { no_backend("device cuda: fill"); }
void cuda_axpy_floats(float*, const float*, float, int64_t) { no_backend("device cuda: axpy"); }
void cuda_copy_strided(float*, const int64_t*, const float*, const int64_t*, const int64_t*, int64_t) {
  no_backend("device cuda: strided copy");
}
void cuda_axpy_strided(float*, const int64_t*, const float*, const int64_t*, const int64_t*, int64_t, float) {
  no_backend("device cuda: strided axpy");
}
void cuda_gemm_batched(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, int64_t, const float*,
                       int64_t, int64_t, float, float*, int64_t, int64_t, int64_t) {
  no_backend("device cuda: gemm");
}

}  // namespace lowrank::tensor

namespace lowrank::cuda {

using autograd::detail::AttnDims;
using autograd::detail::AttnGrads;
using autograd::detail::Operand;

namespace {
[[noreturn]] void no_cuda(const char* launcher) {
  throw Error(std::string("cuda::") + launcher +
              ": this build of lowrank has no CUDA backend (configure with nvcc and -DLOWRANK_CUDA=ON)");
}
}  // namespace

void gemm(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*, int64_t, float, float*,
          int64_t) {
  no_cuda("gemm");
}
void gemm_strided_batched(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, int64_t, const float*,
                          int64_t, int64_t, float, float*, int64_t, int64_t, int64_t) {
  no_cuda("gemm_strided_batched");
}
void set_tf32(bool) { no_cuda("set_tf32"); }
void to_bf16_rows(uint16_t*, const float*, int64_t, int64_t, int64_t) { no_cuda("to_bf16_rows"); }
void gemm_bf16(bool, bool, int64_t, int64_t, int64_t, const uint16_t*, int64_t, const uint16_t*, int64_t, float, float*,
               int64_t) {
  no_cuda("gemm_bf16");
}
bool tf32() { return false; }
void fill(float*, float, int64_t) { no_cuda("fill"); }
void copy_strided(float*, const int64_t*, const float*, const int64_t*, const int64_t*, int) {
  no_cuda("copy_strided");
}
void axpy_strided(float*, const int64_t*, const float*, const int64_t*, const int64_t*, int, float) {
  no_cuda("axpy_strided");
}
void sumsq_forward(float*, const float*, int64_t) { no_cuda("sumsq_forward"); }
void attention_forward(float*, float*, const Operand&, const Operand&, const Operand&, const AttnDims&) {
  no_cuda("attention_forward");
}
void attention_backward(const AttnGrads&, const float*, const Operand&, const Operand&, const Operand&,
                        const AttnDims&) {
  no_cuda("attention_backward");
}
void adamw_update(float*, float*, float*, const float*, int64_t, float, float, float, float, float, float, float,
                  bool) {
  no_cuda("adamw_update");
}
void adamw_multi_update(const AdamWEntry*, int64_t, int64_t, float, float, float, float, float, float, bool) {
  no_cuda("adamw_multi_update");
}

// One stub per kernel of autograd/kernels.def. The stubs take the named parameters of the .def and
// read none of them: -Wunused-parameter is silenced for these definitions only.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#define LR_KERNEL(name, params) \
  void name params { no_cuda(#name); }
#include "autograd/kernels.def"
#undef LR_KERNEL
#pragma GCC diagnostic pop

}  // namespace lowrank::cuda
