// embedding: a row lookup. weight (V, C), ids (N) flattened from `ids_shape` -> y (N, C):
//   y[n] = weight[ids[n]]
//   dweight[v] += Σ_{n : ids[n] = v} dy[n]      (a scatter-add; repeated ids accumulate)
// The scatter would race if rows were split across threads (two n with the same id), so threads
// split the C channels into blocks instead: each thread owns a column block of every row and walks
// n in order, so each sum is formed in the same order whatever the thread count (no atomics).
// The ids are validated on the host and copied once into a buffer on the weight's device that the node
// owns; CUDA tensors run the launchers of the same names (cuda/embedding.cu), whose scatter-add forms
// the CPU's sums.
#include <algorithm>
#include <cstring>

#include "autograd/kernels.h"
#include "autograd/op_util.h"
#include "autograd/ops.h"
#include "tensor/parallel.h"

namespace lowrank::autograd {

namespace cpu {

constexpr int64_t kChannelBlock = 64;  // columns per thread task in backward (a few cache lines)

// y (N, C) = weight (V, C) rows picked by ids (N)
void embedding_forward(float* y, const float* weight, const int32_t* ids, int64_t N, int64_t C) {
#pragma omp parallel for schedule(static) if (N * C > tensor::kParallelGrain)
  for (int64_t n = 0; n < N; ++n)
    std::memcpy(y + n * C, weight + static_cast<int64_t>(ids[n]) * C, static_cast<size_t>(C) * sizeof(float));
}

// dweight (V, C) += scatter of dy (N, C) rows into rows ids (N)
void embedding_backward(float* dweight, const float* dy, const int32_t* ids, int64_t N, int64_t C) {
  const int64_t nblocks = (C + kChannelBlock - 1) / kChannelBlock;
#pragma omp parallel for schedule(static) if (N * C > tensor::kParallelGrain)
  for (int64_t blk = 0; blk < nblocks; ++blk) {
    const int64_t c0 = blk * kChannelBlock, c1 = std::min(C, c0 + kChannelBlock);
    for (int64_t n = 0; n < N; ++n) {
      float* dw = dweight + static_cast<int64_t>(ids[n]) * C;
      const float* g = dy + n * C;
      for (int64_t c = c0; c < c1; ++c) dw[c] += g[c];
    }
  }
}

}  // namespace cpu

namespace {

struct EmbeddingOp : Node {
  Tensor weight, out;  // weight contiguous (V, C)
  Tensor ids;          // (N) int32 ids validated in [0, V), on weight's device (device_ints)
  void backward() override {
    const float* dy = grad_of(out);
    float* dweight = grad_sink(weight);
    if (!dy || !dweight) return;
    run(weight.device(), cpu::embedding_backward, cuda::embedding_backward, dweight, dy, ints(ids), ids.numel(),
        weight.size(1));
  }
  const char* name() const override { return "embedding"; }
};

Device check_embedding(const Tensor& weight, const std::vector<int32_t>& ids, const Shape& ids_shape) {
  const Device dev = op_device("embedding", {&weight});
  LR_CHECK(weight.ndim() == 2, "embedding: weight must be (V, C), got ", weight.shape());
  LR_CHECK(ids_shape.ndim < tensor::kMaxDims, "embedding: ids shape ", ids_shape, " leaves no room for C (at most ",
           tensor::kMaxDims - 1, " id dims)");
  LR_CHECK(static_cast<int64_t>(ids.size()) == ids_shape.numel(), "embedding: ", ids.size(),
           " ids do not fill ids shape ", ids_shape, " (", ids_shape.numel(), " expected)");
  const int64_t V = weight.size(0);
  for (size_t n = 0; n < ids.size(); ++n)
    LR_CHECK(ids[n] >= 0 && ids[n] < V, "embedding: id ", ids[n], " at position ", n, " is out of range [0, V=", V,
             ") for weight ", weight.shape());
  return dev;
}

}  // namespace

Tensor embedding(const Tensor& weight_in, const std::vector<int32_t>& ids, const Shape& ids_shape) {
  const Device dev = check_embedding(weight_in, ids, ids_shape);
  Tensor weight = compact(weight_in);
  const int64_t C = weight.size(1), N = static_cast<int64_t>(ids.size());
  Shape s = ids_shape;
  s.d[s.ndim++] = C;  // ids_shape + (C)
  Tensor out = Tensor::empty(s, dev);
  Tensor ids_t = device_ints(ids, dev);
  run(dev, cpu::embedding_forward, cuda::embedding_forward, out.data(), weight.data(), ints(ids_t), N, C);
  if (needs_grad({&weight})) {
    auto node = std::make_unique<EmbeddingOp>();
    node->weight = weight;
    node->out = out;
    node->ids = ids_t;
    record(std::move(node), out);
  }
  return out;
}

}  // namespace lowrank::autograd
