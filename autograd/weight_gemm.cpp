#include "autograd/weight_gemm.h"

#include <mutex>
#include <vector>

#include "cuda/kernels.h"
#include "tensor/bf16.h"
#include "tensor/error.h"
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

// A device buffer for n bf16 values: a float tensor of half as many elements (rounded up), so it comes
// from the caching allocator and goes back to it with the tensor, like every other device buffer.
Tensor device_bf16_buffer(int64_t n) { return Tensor::empty(Shape{(n + 1) / 2}, Device::CUDA); }
uint16_t* bf16_data(const Tensor& buf) { return reinterpret_cast<uint16_t*>(buf.data()); }

// What a CUDA storage keeps in Storage::derived: the rounded copy and the view and version it was made
// from, as tensor::Bf16Copy does for a CPU storage (a storage lives on one device, so one slot serves both).
struct DeviceBf16Copy {
  Tensor values;
  int64_t offset = 0, numel = 0;
  uint64_t version = 0;
};
std::mutex g_device_copy_mu;  // guards Storage::derived of CUDA storages (tensor/bf16.cpp guards the CPU's)

// On CUDA: w's cached bf16 copy, A rounded into scratch, one cuBLAS bf16 GEMM. The scratch goes back to
// the cache when this returns, before the GEMM has run: with the one stream, whatever reuses the block
// is ordered after it (cuda/memory.h).
void weight_gemm_cuda(bool tw, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const Tensor& w,
                      int64_t ldb, float beta, float* C, int64_t ldc) {
  const Tensor w16 = device_bf16_copy(w);
  const Tensor a16 = device_bf16_buffer(M * K);
  cuda::to_bf16_rows(bf16_data(a16), A, M, K, lda);
  cuda::gemm_bf16(false, tw, M, N, K, bf16_data(a16), K, bf16_data(w16), ldb, beta, C, ldc);
  tensor::count_bf16_gemm();
}
}  // namespace

bool weight_gemm_in_bf16(const Tensor& w, int64_t M, int64_t N, int64_t K) {
  return tensor::precision() == tensor::Precision::bf16 && !w.requires_grad() && M > kThinDim && N > kThinDim &&
         K > kThinDim && (w.device() == Device::CUDA || (w.device() == Device::CPU && tensor::bf16_gemm_available()));
}

void weight_gemm(Device dev, bool tw, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const Tensor& w,
                 int64_t ldb, float beta, float* C, int64_t ldc) {
  if (!weight_gemm_in_bf16(w, M, N, K))
    return tensor::gemm_batched(dev, false, tw, M, N, K, 1.f, A, lda, 0, w.data(), ldb, 0, beta, C, ldc, 0, 1);
  if (dev == Device::CUDA) return weight_gemm_cuda(tw, M, N, K, A, lda, w, ldb, beta, C, ldc);
  const std::shared_ptr<const tensor::Bf16Copy> w16 = tensor::bf16_copy(w);  // held until the GEMM is done
  uint16_t* a16 = scratch(M * K);
  tensor::to_bf16_rows(a16, A, M, K, lda);
  tensor::gemm_bf16(false, tw, M, N, K, a16, K, w16->values.data(), ldb, beta, C, ldc);
}

Tensor device_bf16_copy(const Tensor& w) {
  LR_CHECK(w.defined() && w.device() == Device::CUDA && w.is_contiguous(),
           "device_bf16_copy: needs a contiguous CUDA tensor, got ", w.shape(), " on ",
           tensor::device_name(w.device()));
  tensor::Storage& s = *w.storage();
  const int64_t offset = w.numel() == 0 ? 0 : w.data() - s.data();
  std::lock_guard<std::mutex> lock(g_device_copy_mu);
  auto have = std::static_pointer_cast<const DeviceBf16Copy>(s.derived());
  if (have && have->version == s.version() && have->offset == offset && have->numel == w.numel()) return have->values;
  auto made = std::make_shared<DeviceBf16Copy>();
  made->values = device_bf16_buffer(w.numel());
  if (w.numel() > 0) cuda::to_bf16_rows(bf16_data(made->values), w.data(), 1, w.numel(), w.numel());
  made->offset = offset;
  made->numel = w.numel();
  made->version = s.version();
  s.set_derived(made);
  tensor::count_bf16_copy();
  return made->values;
}

std::string bf16_gemm_info(Device dev) {
  if (dev != Device::CUDA) return tensor::bf16_gemm_info();
#ifdef LOWRANK_CUDA_EMULATION
  return "bf16 cuBLAS GemmEx (host emulation: bf16 operands widened, fp32 GEMM)";
#else
  return "bf16 cuBLAS GemmEx: CUDA_R_16BF operands, CUBLAS_COMPUTE_32F, fp32 output";
#endif
}

}  // namespace lowrank::autograd
