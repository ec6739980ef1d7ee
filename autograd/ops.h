#pragma once
// Every differentiable op of lowrank. Each op lives in one .cpp beside its backward:
//   reference kernels `<op>_forward` / `<op>_backward` (shapes in comments), then a Node struct
//   holding what it saved, then the recorded entry point declared here.
// Shape names used throughout: B batch, T time (sequence), C channels, V vocabulary, NH heads,
// hs = C / NH head size, N = number of rows (B*T flattened).
// Every op checks its inputs and throws lowrank::Error naming the op and the shapes.
#include <cstdint>
#include <vector>

#include "autograd/tape.h"

namespace lowrank::autograd {

using tensor::Rng;
using tensor::Shape;

// ---- linear algebra (matmul.cpp) ----
// a (..., M, K) [(..., K, M) if trans_a] times b: either 2-D (K, N) [(N, K) if trans_b], broadcast
// over a's leading dims, or with the same leading dims as a (batched). Result (..., M, N).
Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a = false, bool trans_b = false);
// x (..., in), w (out, in), optional b (out) -> (..., out) = x wᵀ + b  (nn.Linear layout)
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b = Tensor());

// ---- elementwise with row broadcast (elementwise.cpp) ----
// b has a's shape, or a suffix of it (e.g. a bias (C) added to (B,T,C)); result has a's shape.
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor scale(const Tensor& x, float s);
// y (..., W) with s·parts[j] (..., w_j) added into columns [offsets[j], offsets[j] + w_j); the ranges
// must be disjoint (add_columns.cpp). LoRA's per-slice update of GPT-2's fused qkv in one pass.
Tensor add_columns(const Tensor& y, const std::vector<Tensor>& parts, const std::vector<int64_t>& offsets, float s);

// ---- activations (activations.cpp) ----
Tensor gelu(const Tensor& x);  // GPT-2's tanh approximation
Tensor relu(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor reciprocal(const Tensor& x);  // 1 / x (DoRA's m / ‖V‖)

// ---- reductions (reduce.cpp) ----
Tensor sum(const Tensor& x);   // all elements -> shape ()
Tensor mean(const Tensor& x);  // all elements -> shape ()

// ---- views and joins (views.cpp); backward maps the gradient back through the view ----
Tensor reshape(const Tensor& x, const Shape& shape);                 // copies only when x is not contiguous
Tensor transpose(const Tensor& x, int d0, int d1);                   // strided view
Tensor permute(const Tensor& x, std::initializer_list<int> dims);    // strided view
Tensor slice(const Tensor& x, int dim, int64_t start, int64_t len);  // strided view
Tensor concat(const std::vector<Tensor>& xs, int dim);               // fresh contiguous tensor

// ---- softmax family (softmax.cpp), over the last dim ----
Tensor softmax(const Tensor& x);
Tensor log_softmax(const Tensor& x);

// ---- normalisation (layernorm.cpp) ----
// x (..., C), w (C), b (C): (x - mean) / sqrt(var + eps) * w + b over the last dim
Tensor layernorm(const Tensor& x, const Tensor& w, const Tensor& b, float eps = 1e-5f);

// ---- DoRA's weight norm (weight_norm.cpp) ----
// w (N, C) -> (N): the Euclidean norm of each row (one per output feature of an nn.Linear weight)
Tensor weight_norm(const Tensor& w);

// ---- lookup and regularisation (embedding.cpp, dropout.cpp) ----
// weight (V, C), ids with shape `ids_shape` (e.g. (B,T)) -> ids_shape + (C). Ids are checked in [0, V).
Tensor embedding(const Tensor& weight, const std::vector<int32_t>& ids, const Shape& ids_shape);
// Inverted dropout: keeps each element with probability 1-p and scales it by 1/(1-p).
// Identity (no mask drawn, no node) when !training or p == 0. Otherwise draws one key from rng and
// takes the mask from Philox(key, element index): the same mask on CPU and CUDA tensors.
Tensor dropout(const Tensor& x, float p, Rng& rng, bool training = true);

// ---- attention (attention.cpp) ----
// Scaled dot-product attention over NH heads. q (B, Tq, C), k and v (B, Tk, C); head h owns
// channels [h*hs, (h+1)*hs). The last dim must have stride 1; rows may be strided, so q/k/v can be
// slice()s of GPT-2's fused qkv (B, T, 3C) without a copy. Result (B, Tq, C), contiguous.
// causal: query i sees key j iff j <= i + (Tk - Tq) (the ends aligned: KV cache and prefixes work).
// key_lengths (B), optional: sequence b has key_lengths[b] valid keys, the rest is right padding
// that no query sees (bidirectional encoders over padded batches).
Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, int NH, bool causal,
                 const std::vector<int32_t>& key_lengths = {});

// ---- loss (cross_entropy.cpp) ----
struct CrossEntropyOptions {
  int32_t ignore_index = -100;  // targets equal to it contribute nothing
  float label_smoothing = 0.f;  // eps: target distribution (1-eps)·onehot + eps/V
  std::vector<float> mask;      // optional per-row weight (N), e.g. 1 on completion tokens only
};
// logits (..., V), targets with one id per row -> shape () = Σ w_i·loss_i / Σ w_i, where
// w_i = mask_i (or 1) when targets_i != ignore_index, else 0. Zero total weight gives loss 0.
Tensor cross_entropy(const Tensor& logits, const std::vector<int32_t>& targets,
                     const CrossEntropyOptions& opt = CrossEntropyOptions());

// ---- the LM head fused with its loss (linear_cross_entropy.cpp) ----
// cross_entropy(matmul(h, w, false, true), targets, opt) for h (..., C) and w (V, C), the same loss and
// gradients within float rounding, but computed chunk_rows rows at a time: O(chunk_rows·V) memory instead
// of the (N, V) logits and their gradient. chunk_rows 0: as many rows as fit kHeadChunkFloats logits
// (333 rows at GPT-2's V). Errors name the logits' shape (..., V) as cross_entropy does.
constexpr int64_t kHeadChunkFloats = int64_t{1} << 24;  // 64 MiB of float logits per chunk
Tensor linear_cross_entropy(const Tensor& h, const Tensor& w, const std::vector<int32_t>& targets,
                            const CrossEntropyOptions& opt = CrossEntropyOptions(), int64_t chunk_rows = 0);

}  // namespace lowrank::autograd
