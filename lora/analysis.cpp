// Section 7 of Hu et al. (2021): subspace similarity (eq. 4) and the ΔW-vs-W projections of Table 7.
// Everything runs in double: φ is a sum of squared cosines that must land in [0, 1], and Table 7
// compares norms that differ by two orders of magnitude.
// GCC 12 reports false -Wmaybe-uninitialized warnings inside Eigen's AVX-512 double GEMM packing
// code, which the SVDs below instantiate (no other file of the library uses double products).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include "lora/analysis.h"

#include <algorithm>
#include <cmath>

#include <Eigen/SVD>

#include "lora/internal.h"
#include "lora/lora.h"
#include "tensor/error.h"

namespace lowrank::lora {

Matrix to_matrix(const Tensor& t) {
  LR_CHECK(t.defined() && t.ndim() == 2, "to_matrix: expected a 2-D tensor, got ", t.defined() ? t.ndim() : 0, " dims");
  LR_CHECK(t.device() == Device::CPU, "to_matrix: tensor must be on the CPU");
  const std::vector<float> v = t.to_vector();  // row-major logical order, any strides
  Matrix m(t.size(0), t.size(1));
  for (int64_t i = 0; i < m.rows(); ++i)
    for (int64_t j = 0; j < m.cols(); ++j) m(i, j) = v[static_cast<size_t>(i * m.cols() + j)];
  return m;
}

Matrix gaussian(int64_t rows, int64_t cols, Rng& rng) {
  Matrix m(rows, cols);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) m(i, j) = rng.normal();
  return m;
}

// Left/right top-k singular vectors of M. BDCSVD switches to Jacobi below 16 columns and is much
// faster than Jacobi on a 768x768 GPT-2 weight; both sort singular values in decreasing order.
namespace {

struct Svd {
  Matrix U, V;
};

Svd top_singular(const Matrix& M, int64_t k, const char* what) {
  LR_CHECK(k >= 1 && k <= std::min(M.rows(), M.cols()), what, ": rank ", k, " outside [1, min(", M.rows(), ", ",
           M.cols(), ")]");
  LR_CHECK(M.allFinite(), what, ": matrix has non-finite values");
  Eigen::BDCSVD<Matrix> svd(M, Eigen::ComputeThinU | Eigen::ComputeThinV);
  return {svd.matrixU().leftCols(k), svd.matrixV().leftCols(k)};
}

}  // namespace

Matrix right_singular(const Matrix& M, int64_t k) { return top_singular(M, k, "right_singular").V; }

// Eq. (4): with P = U1ᵀU2 (r1, r2), ‖U1^iᵀU2^j‖²_F is the sum of P² over the leading i×j block;
// 2-D prefix sums give all r1·r2 values from one product instead of r1·r2 products.
Matrix subspace_similarity(const Matrix& A1, const Matrix& A2) {
  // LAB 8 begin: subspace_similarity (φ of eq. 4)
  LR_CHECK(A1.cols() == A2.cols(), "subspace_similarity: A1 (", A1.rows(), ", ", A1.cols(), ") and A2 (", A2.rows(),
           ", ", A2.cols(), ") differ in input dimension");
  const Matrix U1 = top_singular(A1, A1.rows(), "subspace_similarity: A1").V;
  const Matrix U2 = top_singular(A2, A2.rows(), "subspace_similarity: A2").V;
  const Matrix P2 = (U1.transpose() * U2).array().square().matrix();
  Matrix phi(P2.rows(), P2.cols());
  for (int64_t i = 0; i < P2.rows(); ++i)
    for (int64_t j = 0; j < P2.cols(); ++j) {
      double s = P2(i, j);
      if (i > 0) s += phi(i - 1, j);
      if (j > 0) s += phi(i, j - 1);
      if (i > 0 && j > 0) s -= phi(i - 1, j - 1);
      phi(i, j) = s;  // still the un-normalized prefix sum here
    }
  for (int64_t i = 0; i < phi.rows(); ++i)
    for (int64_t j = 0; j < phi.cols(); ++j)
      phi(i, j) /= static_cast<double>(std::min(i, j) + 1);  // not clamped: rounding only, ~1e-15
  return phi;
  // LAB 8 end
}

int64_t shared_dimensions(const Matrix& phi, double threshold) {
  int64_t k = 0;
  for (int64_t i = 0; i < std::min(phi.rows(), phi.cols()); ++i)
    if (phi(i, i) > threshold) k = i + 1;
  return k;
}

double random_similarity(int64_t i, int64_t j, int64_t d) {
  LR_CHECK(i >= 1 && j >= 1 && d >= std::max(i, j), "random_similarity: need 1 <= i, j <= d, got i=", i, " j=", j,
           " d=", d);
  return static_cast<double>(std::max(i, j)) / static_cast<double>(d);
}

double projected_norm(const Matrix& W, const Matrix& U, const Matrix& V) {
  LR_CHECK(U.rows() == W.rows() && V.rows() == W.cols(), "projected_norm: W (", W.rows(), ", ", W.cols(), "), U (",
           U.rows(), ", ", U.cols(), "), V (", V.rows(), ", ", V.cols(), ") do not fit UᵀWV");
  return (U.transpose() * W * V).norm();
}

WeightProjection weight_projection(const Matrix& W, const Matrix& delta, int64_t r, Rng& rng) {
  LR_CHECK(W.rows() == delta.rows() && W.cols() == delta.cols(), "weight_projection: W (", W.rows(), ", ", W.cols(),
           ") and ΔW (", delta.rows(), ", ", delta.cols(), ") differ in shape");
  const Matrix G = gaussian(W.rows(), W.cols(), rng);
  const Svd d = top_singular(delta, r, "weight_projection: ΔW");
  const Svd w = top_singular(W, r, "weight_projection: W");
  const Svd g = top_singular(G, r, "weight_projection: random");
  WeightProjection p;
  p.r = r;
  p.proj_delta = projected_norm(W, d.U, d.V);
  p.proj_w = projected_norm(W, w.U, w.V);
  p.proj_random = projected_norm(W, g.U, g.V);
  p.norm_w = W.norm();
  p.norm_delta = delta.norm();
  p.amplification = p.proj_delta > 0 ? p.norm_delta / p.proj_delta : INFINITY;
  return p;
}

Matrix lora_delta(const Tensor& A, const Tensor& B, float scale) {
  const Matrix a = to_matrix(A), b = to_matrix(B);
  LR_CHECK(b.cols() == a.rows(), "lora_delta: B (", b.rows(), ", ", b.cols(), ") · A (", a.rows(), ", ", a.cols(),
           "): inner dims differ");
  return static_cast<double>(scale) * b * a;
}

std::vector<AdaptedSlice> adapted_slices(nn::GPT& model) {
  std::vector<AdaptedSlice> out;
  for (size_t l = 0; l < model.h.size(); ++l) {
    const auto* m = dynamic_cast<const LoRAFusedQKV*>(model.h[l]->attn.c_attn.get());
    if (m == nullptr) continue;
    LR_CHECK(!m->merged(), "adapted_slices: layer ", l, " is merged (its weight is W0 + ΔW); unmerge first");
    LR_CHECK(!m->shared_A, "adapted_slices: layer ", l, " shares one A across q, k, v (target c_attn)");
    const int64_t C = m->in_features();
    for (size_t j = 0; j < m->slices.size(); ++j) {
      AdaptedSlice s;
      s.layer = static_cast<int64_t>(l);
      s.slice = m->slices[j];
      s.W = to_matrix(m->weight.narrow(0, detail::slice_index(s.slice) * C, C));
      s.A = to_matrix(m->lora_A[j]);
      s.delta = lora_delta(m->lora_A[j], m->lora_B[j], m->scale);
      out.push_back(std::move(s));
    }
  }
  return out;
}

}  // namespace lowrank::lora
