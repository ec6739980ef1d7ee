// PiSSA / OLoRA initialisation and DoRA's factor (lora/variants.h gives the equations).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // Eigen's double GEMM packing (see analysis.cpp)
#endif
#include "lora/variants.h"

#include <cmath>

#include <Eigen/QR>
#include <Eigen/SVD>

#include "autograd/ops.h"
#include "lora/analysis.h"
#include "tensor/error.h"

namespace lowrank::lora::variants {

using tensor::Device;
using tensor::Shape;

namespace {

Tensor to_tensor(const Matrix& m, Device dev) {
  Tensor t = Tensor::empty(Shape{m.rows(), m.cols()});
  for (int64_t i = 0; i < m.rows(); ++i)
    for (int64_t j = 0; j < m.cols(); ++j) t.data()[i * m.cols() + j] = static_cast<float>(m(i, j));
  return t.to(dev);
}

}  // namespace

// Both in double (Eigen's BDCSVD, Householder QR), so A0 and B0 are W0's factors to float rounding.
// The product s·B0 A0 does not depend on the sign each solver gives a singular vector or a column of Q.
std::pair<Tensor, Tensor> init_pair(const std::string& init, const Tensor& w, int64_t r, float scale) {
  const Matrix W = to_matrix(w.to(Device::CPU));
  LR_CHECK(W.allFinite(), init, " init: W0 ", w.shape(), " has non-finite values");
  LR_CHECK(r <= std::min(W.rows(), W.cols()), init, " init: r=", r, " exceeds the rank of W0 ", w.shape());
  Matrix A0, B0;
  if (init == "pissa") {
    Eigen::BDCSVD<Matrix> svd(W, Eigen::ComputeThinU | Eigen::ComputeThinV);
    const Eigen::VectorXd root = (svd.singularValues().head(r) / scale).cwiseSqrt();  // √(S_r / s)
    A0 = root.asDiagonal() * svd.matrixV().leftCols(r).transpose();
    B0 = svd.matrixU().leftCols(r) * root.asDiagonal();
  } else {
    LR_CHECK(init == "olora", "init_lora_weights: unknown '", init, "' (gaussian, pissa or olora)");
    Eigen::HouseholderQR<Matrix> qr(W);
    const int64_t k = std::min(W.rows(), W.cols());
    const Matrix Q = qr.householderQ() * Matrix::Identity(W.rows(), k);
    const Matrix R = qr.matrixQR().topRows(k).triangularView<Eigen::Upper>();
    A0 = R.topRows(r);
    B0 = Q.leftCols(r);
  }
  Tensor a = to_tensor(A0, w.device()), b = to_tensor(B0, w.device());
  return {a, b};
}

Tensor delta(const Tensor& B, const Tensor& A, const Tensor& B0, const Tensor& A0, float s) {
  Tensor dw = autograd::matmul(B, A);
  if (A0.defined()) dw = autograd::sub(dw, autograd::matmul(B0, A0));
  return autograd::scale(dw, s);
}

Tensor dora_factor(const Tensor& m, const Tensor& w0, const Tensor& dw) {
  return autograd::mul(m, autograd::reciprocal(autograd::weight_norm(autograd::add(w0, dw))));
}

Tensor row_norms(const Tensor& w) {
  if (w.device() == Device::Meta) return Tensor::zeros(Shape{w.size(0)}, Device::Meta);  // a probe's shapes
  autograd::NoGradGuard ng;
  return autograd::weight_norm(w.detach());
}

std::pair<Tensor, Tensor> converted(const Tensor& A, const Tensor& B, const Tensor& A0, const Tensor& B0) {
  const int64_t r = A.size(0), in = A.size(1), out = B.size(0);
  Tensor a = Tensor::empty(Shape{2 * r, in}), b = Tensor::empty(Shape{out, 2 * r});
  a.narrow(0, 0, r).copy_(A.to(Device::CPU));
  a.narrow(0, r, r).copy_(A0.to(Device::CPU));
  b.narrow(1, 0, r).copy_(B.to(Device::CPU));
  Tensor nb = Tensor::zeros(B0.shape());
  nb.add_(B0.to(Device::CPU), -1.f);
  b.narrow(1, r, r).copy_(nb);
  return {a, b};
}

std::vector<float> dora_merge(Tensor w, const Tensor& m) {
  std::vector<float> g = m.to_vector();
  const std::vector<float> n = row_norms(w).to_vector();
  for (size_t j = 0; j < n.size(); ++j) g[j] /= n[j];
  scale_rows(w, g, false);
  return g;
}

void scale_rows(Tensor w, const std::vector<float>& g, bool divide) {
  LR_CHECK(w.ndim() == 2 && static_cast<int64_t>(g.size()) == w.size(0), "scale_rows: ", g.size(),
           " factors for a weight ", w.shape());
  Tensor h = w.to(Device::CPU).clone();
  const int64_t C = h.size(1);
  for (int64_t j = 0; j < h.size(0); ++j)
    for (int64_t i = 0; i < C; ++i)
      h.data()[j * C + i] = divide ? h.data()[j * C + i] / g[j] : h.data()[j * C + i] * g[j];
  w.copy_(h.to(w.device()));
}

}  // namespace lowrank::lora::variants
