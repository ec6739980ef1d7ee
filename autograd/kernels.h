#pragma once
// The CPU reference kernels of the ops, on raw HOST pointers: the same names, arguments and meaning
// as the CUDA launchers of cuda/kernels.h, so an op calls either in one line,
//   run(dev, cpu::layernorm_forward, cuda::layernorm_forward, y, mean, rstd, x, w, b, N, C, eps);
// and the host emulation of the CUDA backend (cuda/emulation/) runs these very kernels on its
// untagged pointers. Each is defined in its op's file, beside the op and the math it implements
// (autograd/<op>.cpp). Forward kernels overwrite their outputs; backward kernels ACCUMULATE (+=)
// into gradient buffers, and a gradient pointer may be nullptr where that input needs none.
// Shape names as in autograd/ops.h: N rows, C channels, V vocabulary. Attention's kernels, which
// take operand structs, are in autograd/attention_kernels.h.
#include <cstdint>

namespace lowrank::autograd::cpu {

// ---- elementwise.cpp: a (outer, inner), b (inner) repeated over rows -------------------------
void add_forward(float* y, const float* a, const float* b, int64_t outer, int64_t inner);
void sub_forward(float* y, const float* a, const float* b, int64_t outer, int64_t inner);
void mul_forward(float* y, const float* a, const float* b, int64_t outer, int64_t inner);
void add_backward(float* da, float* db, const float* dy, int64_t outer, int64_t inner);
void sub_backward(float* da, float* db, const float* dy, int64_t outer, int64_t inner);
void mul_backward(float* da, float* db, const float* dy, const float* a, const float* b, int64_t outer, int64_t inner);
void scale_forward(float* y, const float* x, float s, int64_t n);     // y (n) = s · x
void scale_backward(float* dx, const float* dy, float s, int64_t n);  // dx (n) += s · dy

// ---- activations.cpp, n elements ---------------------------------------------------------------
void gelu_forward(float* y, const float* x, int64_t n);
void gelu_backward(float* dx, const float* dy, const float* x, int64_t n);
void relu_forward(float* y, const float* x, int64_t n);
void relu_backward(float* dx, const float* dy, const float* x, int64_t n);
void tanh_forward(float* y, const float* x, int64_t n);
void tanh_backward(float* dx, const float* dy, const float* y, int64_t n);  // from the saved output y

// ---- reduce.cpp ---------------------------------------------------------------------------------
void sum_forward(float* out, const float* x, int64_t n, float factor);   // out[0] = factor · Σ x
void sum_backward(float* dx, const float* dy, int64_t n, float factor);  // dx (n) += factor · dy[0]
double sumsq(const float* x, int64_t n);  // Σ x², squares and sum in double, in order (clip_grad_norm's)

// ---- softmax.cpp: x, y (N, C) -------------------------------------------------------------------
void softmax_forward(float* y, const float* x, int64_t N, int64_t C, bool log);
void softmax_backward(float* dx, const float* dy, const float* y, int64_t N, int64_t C, bool log);

// ---- layernorm.cpp ---------------------------------------------------------------------------------
void layernorm_forward(float* y, float* mean, float* rstd, const float* x, const float* w, const float* b, int64_t N,
                       int64_t C, float eps);
void layernorm_backward_dx(float* dx, const float* dy, const float* x, const float* w, const float* mean,
                           const float* rstd, int64_t N, int64_t C);
void layernorm_backward_params(float* dw, float* db, const float* dy, const float* x, const float* mean,
                               const float* rstd, int64_t N, int64_t C);

// ---- embedding.cpp: ids (N) in [0, V) --------------------------------------------------------------
void embedding_forward(float* y, const float* weight, const int32_t* ids, int64_t N, int64_t C);
void embedding_backward(float* dweight, const float* dy, const int32_t* ids, int64_t N, int64_t C);

// ---- dropout.cpp: mask (n) = 0 or 1/(1-p) from Philox(key, i) ----------------------------------------
void dropout_forward(float* y, float* mask, const float* x, int64_t n, float p, uint64_t key);
void dropout_backward(float* dx, const float* dy, const float* mask, int64_t n);

// ---- cross_entropy.cpp: logits x (N, V), targets (N), row weights w (N) ------------------------------
void cross_entropy_forward(float* row_loss, float* lse, const float* x, const int32_t* targets, const float* w,
                           int64_t N, int64_t V, float label_smoothing);
void cross_entropy_backward(float* dx, const float* x, const float* lse, const int32_t* targets, const float* row_scale,
                            const float* dloss, int64_t N, int64_t V, float label_smoothing);

}  // namespace lowrank::autograd::cpu
