// Host emulation (see tagged.h: CI runs the CUDA tests without a GPU) of cuda/softmax.cu,
// layernorm.cu, embedding.cu and adamw.cu. Same formulas and argument meaning as the kernels;
// row reductions the GPU forms as float trees are summed in double here (a sequential float sum
// over a long row would be less accurate than the tree it stands for), the column sums of dw/db
// in double like the kernel, and the embedding scatter-add walks rows in order with float adds
// exactly as embedding.cu does (bitwise equal to the CPU op).
#include <algorithm>
#include <cmath>

#include "cuda/emulation/tagged.h"
#include "cuda/kernels.h"

namespace lowrank::cuda {

void softmax_forward(float* y, const float* x, int64_t N, int64_t C, bool log) {
  if (N == 0 || C == 0) return;
  float* yh = emu::arg(y, N * C, "softmax_forward y");
  const float* xh = emu::arg(x, N * C, "softmax_forward x");
  for (int64_t n = 0; n < N; ++n) {
    const float* xr = xh + n * C;
    float* yr = yh + n * C;
    const float m = *std::max_element(xr, xr + C);
    double s = 0.0;
    for (int64_t j = 0; j < C; ++j) s += std::exp(xr[j] - m);
    const float sf = static_cast<float>(s);
    const float lse = m + std::log(sf), inv = 1.f / sf;
    for (int64_t j = 0; j < C; ++j) yr[j] = log ? xr[j] - lse : std::exp(xr[j] - m) * inv;
  }
}

void softmax_backward(float* dx, const float* dy, const float* y, int64_t N, int64_t C, bool log) {
  if (N == 0 || C == 0) return;
  float* dxh = emu::arg(dx, N * C, "softmax_backward dx");
  const float* g = emu::arg(dy, N * C, "softmax_backward dy");
  const float* yh = emu::arg(y, N * C, "softmax_backward y");
  for (int64_t n = 0; n < N; ++n) {
    const float *yr = yh + n * C, *gr = g + n * C;
    double dot = 0.0;  // softmax: Σ dy·y;  log_softmax: Σ dy
    for (int64_t j = 0; j < C; ++j) dot += log ? gr[j] : gr[j] * yr[j];
    const float d = static_cast<float>(dot);
    for (int64_t j = 0; j < C; ++j) dxh[n * C + j] += log ? gr[j] - std::exp(yr[j]) * d : yr[j] * (gr[j] - d);
  }
}

void layernorm_forward(float* y, float* mean, float* rstd, const float* x, const float* w, const float* b,
                       int64_t N, int64_t C, float eps) {
  if (N == 0 || C == 0) return;
  float* yh = emu::arg(y, N * C, "layernorm_forward y");
  float* mh = emu::arg(mean, N, "layernorm_forward mean");
  float* rh = emu::arg(rstd, N, "layernorm_forward rstd");
  const float* xh = emu::arg(x, N * C, "layernorm_forward x");
  const float* wh = emu::arg(w, C, "layernorm_forward w");
  const float* bh = emu::opt_arg(b, C, "layernorm_forward b");
  for (int64_t n = 0; n < N; ++n) {
    const float* xr = xh + n * C;
    double s = 0.0, v = 0.0;
    for (int64_t j = 0; j < C; ++j) s += xr[j];
    const float m = static_cast<float>(s) / C;
    for (int64_t j = 0; j < C; ++j) v += (xr[j] - m) * (xr[j] - m);  // second pass, as the kernel
    const float r = 1.f / std::sqrt(static_cast<float>(v) / C + eps);
    for (int64_t j = 0; j < C; ++j) yh[n * C + j] = (xr[j] - m) * r * wh[j] + (bh ? bh[j] : 0.f);
    mh[n] = m;
    rh[n] = r;
  }
}

void layernorm_backward_dx(float* dx, const float* dy, const float* x, const float* w, const float* mean,
                           const float* rstd, int64_t N, int64_t C) {
  if (N == 0 || C == 0) return;
  float* dxh = emu::arg(dx, N * C, "layernorm_backward_dx dx");
  const float* g = emu::arg(dy, N * C, "layernorm_backward_dx dy");
  const float* xh = emu::arg(x, N * C, "layernorm_backward_dx x");
  const float* wh = emu::arg(w, C, "layernorm_backward_dx w");
  const float* mh = emu::arg(mean, N, "layernorm_backward_dx mean");
  const float* rh = emu::arg(rstd, N, "layernorm_backward_dx rstd");
  for (int64_t n = 0; n < N; ++n) {
    const float m = mh[n], r = rh[n];
    double s1 = 0.0, s2 = 0.0;  // Σ dxhat, Σ dxhat·xhat
    for (int64_t j = 0; j < C; ++j) {
      const float dxhat = g[n * C + j] * wh[j];
      s1 += dxhat;
      s2 += dxhat * ((xh[n * C + j] - m) * r);
    }
    const float m1 = static_cast<float>(s1) / C, m2 = static_cast<float>(s2) / C;
    for (int64_t j = 0; j < C; ++j) {
      const float xhat = (xh[n * C + j] - m) * r;
      dxh[n * C + j] += r * (g[n * C + j] * wh[j] - m1 - xhat * m2);
    }
  }
}

void layernorm_backward_params(float* dw, float* db, const float* dy, const float* x, const float* mean,
                               const float* rstd, int64_t N, int64_t C) {
  if ((!dw && !db) || C == 0) return;
  float* dwh = emu::opt_arg(dw, C, "layernorm_backward_params dw");
  float* dbh = emu::opt_arg(db, C, "layernorm_backward_params db");
  const float* g = emu::arg(dy, N * C, "layernorm_backward_params dy");
  const float* xh = dwh ? emu::arg(x, N * C, "layernorm_backward_params x") : nullptr;
  const float* mh = dwh ? emu::arg(mean, N, "layernorm_backward_params mean") : nullptr;
  const float* rh = dwh ? emu::arg(rstd, N, "layernorm_backward_params rstd") : nullptr;
  for (int64_t c = 0; c < C; ++c) {
    double sw = 0.0, sb = 0.0;
    for (int64_t n = 0; n < N; ++n) {
      const float d = g[n * C + c];
      if (dwh) sw += d * ((xh[n * C + c] - mh[n]) * rh[n]);
      sb += d;
    }
    if (dwh) dwh[c] += static_cast<float>(sw);
    if (dbh) dbh[c] += static_cast<float>(sb);
  }
}

namespace {

// The ids, checked >= 0; returns the rows of weight they reach (max id + 1), for its extent.
int64_t rows_reached(const int32_t* ids, int64_t N, const char* op) {
  int64_t rows = 0;
  for (int64_t n = 0; n < N; ++n) {
    LR_CHECK(ids[n] >= 0, "cuda emulation: ", op, ": id ", ids[n], " at row ", n, " is negative");
    rows = std::max<int64_t>(rows, ids[n] + 1);
  }
  return rows;
}

}  // namespace

void embedding_forward(float* y, const float* weight, const int32_t* ids, int64_t N, int64_t C) {
  if (N == 0 || C == 0) return;
  const int32_t* idh = emu::arg(ids, N, "embedding_forward ids");
  float* yh = emu::arg(y, N * C, "embedding_forward y");
  const float* wh = emu::arg(weight, rows_reached(idh, N, "embedding_forward") * C, "embedding_forward weight");
  for (int64_t n = 0; n < N; ++n) std::copy(wh + int64_t{idh[n]} * C, wh + (int64_t{idh[n]} + 1) * C, yh + n * C);
}

void embedding_backward(float* dweight, const float* dy, const int32_t* ids, int64_t N, int64_t C) {
  if (N == 0 || C == 0) return;
  const int32_t* idh = emu::arg(ids, N, "embedding_backward ids");
  const float* g = emu::arg(dy, N * C, "embedding_backward dy");
  float* dw = emu::arg(dweight, rows_reached(idh, N, "embedding_backward") * C, "embedding_backward dweight");
  for (int64_t n = 0; n < N; ++n)  // rows in order, float adds: each cell's sum in the CPU's order
    for (int64_t c = 0; c < C; ++c) dw[int64_t{idh[n]} * C + c] += g[n * C + c];
}

// AdamW / Adam + L2, with adamw.cu's expression order (division by c1, c2 rather than the CPU's
// multiplication by their inverses).
void adamw_update(float* p, float* m, float* v, const float* g, int64_t n, float lr, float beta1, float beta2,
                  float eps, float wd, float c1, float c2, bool decoupled) {
  if (n == 0) return;
  float* ph = emu::arg(p, n, "adamw_update p");
  float* mh = emu::arg(m, n, "adamw_update m");
  float* vh = emu::arg(v, n, "adamw_update v");
  const float* gh = emu::arg(g, n, "adamw_update g");
  for (int64_t i = 0; i < n; ++i) {
    const float pi = ph[i];
    const float gi = decoupled ? gh[i] : gh[i] + wd * pi;
    const float mi = beta1 * mh[i] + (1.f - beta1) * gi;
    const float vi = beta2 * vh[i] + (1.f - beta2) * gi * gi;
    mh[i] = mi;
    vh[i] = vi;
    const float update = (mi / c1) / (std::sqrt(vi / c2) + eps);
    ph[i] = pi - lr * (update + (decoupled ? wd * pi : 0.f));
  }
}

}  // namespace lowrank::cuda
