#include "tensor/bf16.h"

#include <atomic>
#include <mutex>

#include "tensor/error.h"
#include "tensor/parallel.h"
#include "tensor/safetensors.h"  // bfloat16_to_float

namespace lowrank::tensor {

// A plain loop the compiler vectorises (integer adds, shifts and a select); AVX512-BF16's
// vcvtneps2bf16 would be faster but flushes subnormals to zero, which this rounding keeps.
void to_bf16(uint16_t* dst, const float* src, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > kParallelGrain)
  for (int64_t i = 0; i < n; ++i) dst[i] = round_to_bf16(src[i]);
}

void to_bf16_rows(uint16_t* dst, const float* src, int64_t rows, int64_t cols, int64_t ld) {
  if (ld == cols) return to_bf16(dst, src, rows * cols);
#pragma omp parallel for schedule(static) if (rows * cols > kParallelGrain)
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) dst[r * cols + c] = round_to_bf16(src[r * ld + c]);
}

void from_bf16(float* dst, const uint16_t* src, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = bfloat16_to_float(src[i]);
}

namespace {
std::mutex g_copy_mu;  // guards Storage::derived of every storage (reads and the first conversion)
std::atomic<int64_t> g_copies{0};

// The offset of w's first element in its storage.
int64_t offset_in_storage(const Tensor& w) { return w.numel() == 0 ? 0 : w.data() - w.storage()->data(); }
}  // namespace

std::shared_ptr<const Bf16Copy> bf16_copy(const Tensor& w) {
  LR_CHECK(w.defined() && w.device() == Device::CPU && w.is_contiguous(),
           "bf16_copy: needs a contiguous CPU tensor, got ", w.shape(), " on ", device_name(w.device()));
  Storage& s = *w.storage();
  const int64_t offset = offset_in_storage(w);
  std::lock_guard<std::mutex> lock(g_copy_mu);
  auto have = std::static_pointer_cast<const Bf16Copy>(s.derived());
  if (have && have->version == s.version() && have->offset == offset && have->numel == w.numel()) return have;
  auto made = std::make_shared<Bf16Copy>();
  made->values.resize(static_cast<size_t>(w.numel()));
  to_bf16(made->values.data(), w.data(), w.numel());
  made->offset = offset;
  made->numel = w.numel();
  made->version = s.version();
  s.set_derived(made);
  ++g_copies;
  return made;
}

int64_t bf16_copies_made() { return g_copies.load(); }
void count_bf16_copy() { ++g_copies; }

}  // namespace lowrank::tensor
