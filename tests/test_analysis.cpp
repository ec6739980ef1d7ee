// Section 7 analysis (lora/analysis.h): the subspace similarity φ of eq. (4) on matrices whose row
// spaces are known by construction, and Table 7's projections on hand-built W and ΔW.
#include <cmath>

#include "lora/analysis.h"
#include "lora/lora.h"
#include "test_util.h"

using namespace lowrank;
using namespace lowrank::testing;
using lora::Matrix;

namespace {

Matrix gaussian(int64_t rows, int64_t cols, uint64_t seed) {
  Rng rng(seed);
  return lora::gaussian(rows, cols, rng);
}

// φ straight from eq. (4), one (i, j) at a time, to check the prefix-sum version against.
double phi_direct(const Matrix& A1, const Matrix& A2, int64_t i, int64_t j) {
  const Matrix U1 = lora::right_singular(A1, A1.rows()).leftCols(i);
  const Matrix U2 = lora::right_singular(A2, A2.rows()).leftCols(j);
  return (U1.transpose() * U2).squaredNorm() / static_cast<double>(std::min(i, j));
}

}  // namespace

TEST_CASE("analysis: φ(A, A) is 1 everywhere (nested subspaces), diagonal included") {
  const Matrix A = gaussian(6, 20, 1);
  const Matrix phi = lora::subspace_similarity(A, A);
  REQUIRE(phi.rows() == 6);
  REQUIRE(phi.cols() == 6);
  for (int64_t i = 0; i < 6; ++i)
    for (int64_t j = 0; j < 6; ++j) CHECK(phi(i, j) == doctest::Approx(1.0).epsilon(1e-12));
}

TEST_CASE("analysis: the same row space in another basis gives φ(r, r) = 1, but not every φ(i, j) = 1") {
  const Matrix A = gaussian(5, 16, 2);
  const Matrix mixed = gaussian(5, 5, 3) * A;  // invertible mix: same row space, other singular vectors
  const Matrix phi = lora::subspace_similarity(A, mixed);
  CHECK(phi(4, 4) == doctest::Approx(1.0).epsilon(1e-10));
  CHECK(phi(0, 0) < 0.99);  // the top directions differ: φ is not trivially 1
  // Permuting rows keeps A's singular vectors (up to sign): every φ is 1.
  Matrix perm = A;
  perm.row(0).swap(perm.row(3));
  const Matrix phi_p = lora::subspace_similarity(A, perm);
  CHECK(phi_p.minCoeff() == doctest::Approx(1.0).epsilon(1e-10));
}

TEST_CASE("analysis: orthogonal row spaces give φ = 0, one tilted direction gives cos²θ") {
  Matrix A1 = Matrix::Zero(3, 10), A2 = Matrix::Zero(4, 10);
  for (int64_t k = 0; k < 3; ++k) A1(k, k) = 3.0 - static_cast<double>(k);      // rows in e0..e2
  for (int64_t k = 0; k < 4; ++k) A2(k, 3 + k) = 4.0 - static_cast<double>(k);  // rows in e3..e6
  CHECK(lora::subspace_similarity(A1, A2).cwiseAbs().maxCoeff() < 1e-20);
  const double theta = 0.3;
  Matrix a = Matrix::Zero(1, 4), b = Matrix::Zero(1, 4);
  a(0, 0) = 2.0;
  b(0, 0) = std::cos(theta);
  b(0, 1) = std::sin(theta);
  CHECK(lora::subspace_similarity(a, b)(0, 0) == doctest::Approx(std::cos(theta) * std::cos(theta)).epsilon(1e-12));
  // Shared dimensions: A2's top row is A1's second direction, the rest orthogonal to A1.
  Matrix A3 = A2;
  A3(0, 3) = 0.0;
  A3(0, 1) = 10.0;
  const Matrix phi = lora::subspace_similarity(A1, A3);  // φ(1,1) = 0, φ(2,2) = 1/2, φ(3,3) = 1/3
  CHECK(phi(1, 1) == doctest::Approx(0.5));
  CHECK(lora::shared_dimensions(phi) == 0);
  CHECK(lora::shared_dimensions(phi, 0.4) == 2);
  CHECK(lora::shared_dimensions(lora::subspace_similarity(A1, A1)) == 3);
}

TEST_CASE("analysis: φ on random A matches eq. (4) term by term, lies in [0, 1] and is symmetric") {
  const Matrix A1 = gaussian(4, 24, 4), A2 = gaussian(9, 24, 5);
  const Matrix phi = lora::subspace_similarity(A1, A2);
  REQUIRE(phi.rows() == 4);
  REQUIRE(phi.cols() == 9);
  for (int64_t i = 1; i <= 4; ++i)
    for (int64_t j = 1; j <= 9; ++j) {
      INFO("i=" << i << " j=" << j);
      CHECK(phi(i - 1, j - 1) == doctest::Approx(phi_direct(A1, A2, i, j)).epsilon(1e-10));
      CHECK(phi(i - 1, j - 1) >= -1e-12);
      CHECK(phi(i - 1, j - 1) <= 1.0 + 1e-12);
    }
  CHECK((lora::subspace_similarity(A2, A1).transpose() - phi).cwiseAbs().maxCoeff() < 1e-12);
}

TEST_CASE("analysis: φ of independent random A averages max(i, j)/d (the floor of Figures 3 and 4)") {
  const int64_t d = 200;
  double mean_11 = 0, mean_4_16 = 0;
  const int n = 40;
  for (int s = 0; s < n; ++s) {
    const Matrix phi = lora::subspace_similarity(gaussian(4, d, 100 + s), gaussian(16, d, 200 + s));
    mean_11 += phi(0, 0) / n;
    mean_4_16 += phi(3, 15) / n;
  }
  CHECK(lora::random_similarity(4, 16, d) == doctest::Approx(0.08));
  CHECK(mean_11 == doctest::Approx(lora::random_similarity(1, 1, d)).epsilon(0.5));  // 0.005, noisy
  CHECK(mean_4_16 == doctest::Approx(lora::random_similarity(4, 16, d)).epsilon(0.15));
}

TEST_CASE("analysis: Table 7 projections on diagonal W, ΔW in W's top, bottom and off-diagonal directions") {
  Matrix W = Matrix::Zero(5, 6);
  for (int64_t k = 0; k < 5; ++k) W(k, k) = 5.0 - static_cast<double>(k);  // σ = 5, 4, 3, 2, 1
  Rng rng(7);
  Matrix top = Matrix::Zero(5, 6);
  top(0, 0) = 0.3;
  top(1, 1) = 0.2;
  lora::WeightProjection p = lora::weight_projection(W, top, 2, rng);
  CHECK(p.proj_delta == doctest::Approx(std::sqrt(41.0)));  // UᵀWV = diag(5, 4)
  CHECK(p.proj_w == doctest::Approx(std::sqrt(41.0)));
  CHECK(p.norm_w == doctest::Approx(std::sqrt(55.0)));
  CHECK(p.norm_delta == doctest::Approx(std::sqrt(0.13)));
  CHECK(p.amplification == doctest::Approx(std::sqrt(0.13 / 41.0)));
  Matrix bottom = Matrix::Zero(5, 6);
  bottom(3, 3) = 0.2;
  bottom(4, 4) = 0.1;
  p = lora::weight_projection(W, bottom, 2, rng);
  CHECK(p.proj_delta == doctest::Approx(std::sqrt(5.0)));  // diag(2, 1): directions W does not emphasise
  CHECK(p.proj_w == doctest::Approx(std::sqrt(41.0)));
  // A hand example: W = [[3, 1], [0, 2]], ΔW = 0.5 e0 e1ᵀ: U = e0, V = e1, UᵀWV = W01 = 1.
  Matrix W2(2, 2), D2 = Matrix::Zero(2, 2);
  W2 << 3, 1, 0, 2;
  D2(0, 1) = 0.5;
  p = lora::weight_projection(W2, D2, 1, rng);
  CHECK(p.proj_delta == doctest::Approx(1.0));
  CHECK(p.amplification == doctest::Approx(0.5));
}

TEST_CASE("analysis: W's own top-r directions bound every projection, the random one is seeded") {
  const Matrix W = gaussian(30, 40, 8), D = gaussian(30, 3, 9) * gaussian(3, 40, 10);
  Rng a(11), b(11), c(12);
  const lora::WeightProjection p = lora::weight_projection(W, D, 3, a);
  CHECK(p.proj_delta <= p.proj_w + 1e-9);
  CHECK(p.proj_random <= p.proj_w + 1e-9);
  CHECK(lora::weight_projection(W, D, 3, b).proj_random == p.proj_random);
  CHECK(lora::weight_projection(W, D, 3, c).proj_random != p.proj_random);
  CHECK(error_of([&] { lora::weight_projection(W, D, 31, a); }).find("rank 31") != std::string::npos);
  CHECK(error_of([&] { lora::subspace_similarity(gaussian(2, 5, 1), gaussian(2, 6, 1)); }).find("input dimension") !=
        std::string::npos);
}

TEST_CASE("analysis: adapted_slices gives W0, A and scale·BA per slice, ΔW equals what merge adds") {
  nn::GPTConfig cfg = nn::config_by_name("tiny");
  cfg.n_embd = 8;
  cfg.n_head = 2;
  cfg.n_layer = 2;
  Rng rng(3);
  nn::GPT model(cfg, rng);
  lora::LoRAConfig lc;
  lc.r = 2;
  lc.targets = {"v", "q"};
  lora::apply_lora(model, lc, rng);
  for (nn::NamedTensor& p : model.named_parameters())  // B = 0 at init: give ΔW something to show
    if (p.name.find("lora_B") != std::string::npos) p.tensor.copy_(Tensor::randn(p.tensor.shape(), rng));
  const std::vector<lora::AdaptedSlice> s = lora::adapted_slices(model);
  REQUIRE(s.size() == 4);
  CHECK((s[0].layer == 0 && s[0].slice == "q" && s[1].slice == "v" && s[3].layer == 1));
  const Matrix W0 = lora::to_matrix(model.h[1]->attn.c_attn->weight);
  lora::merge(model);
  const Matrix W1 = lora::to_matrix(model.h[1]->attn.c_attn->weight);
  CHECK((W1.block(16, 0, 8, 8) - W0.block(16, 0, 8, 8) - s[3].delta).cwiseAbs().maxCoeff() < 1e-5);  // v rows
  CHECK((W0.block(16, 0, 8, 8) - s[3].W).cwiseAbs().maxCoeff() == 0.0);
  CHECK(s[3].A.rows() == 2);
  CHECK(error_of([&] { lora::adapted_slices(model); }).find("merged") != std::string::npos);
}
