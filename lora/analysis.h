#pragma once
// The paper's Section 7 analysis of what LoRA learns (Hu et al., 2021), in double precision with
// Eigen's SVD:
//  - Section 7.2, eq. (4): the normalized subspace similarity of two adaptation matrices A1 (r1, in)
//    and A2 (r2, in):  φ(A1, A2, i, j) = ‖U1^iᵀ U2^j‖²_F / min(i, j) ∈ [0, 1], where U^i holds the
//    top-i right-singular vectors of A (directions in the input space, A's rows span its row
//    space). 1: the smaller subspace lies inside the larger one; 0: they are orthogonal.
//    (Figure 3: A_{r=8} vs A_{r=64}; Figure 4: A_{r=64} from two seeds.)
//  - Section 7.3, Table 7: how ΔW relates to W. U, V = top-r left/right singular vectors of ΔW
//    (or of W itself, or of a random Gaussian matrix); ‖Uᵀ W V‖_F is W's size inside that r×r
//    window, and ‖ΔW‖_F / ‖Uᵀ W V‖_F (with ΔW's own U, V) is the "amplification factor" (21.5 for
//    GPT-3 at r = 4: ΔW strongly amplifies directions W already has but does not emphasise).
#include <cstdint>
#include <string>
#include <vector>

#include "tensor/eigen_core.h"  // before <Eigen/Dense>: see there

#include <Eigen/Dense>

#include "nn/gpt.h"
#include "tensor/tensor.h"

namespace lowrank::lora {

using Matrix = Eigen::MatrixXd;

// A 2-D float tensor (any strides, CPU) as a double matrix of the same shape.
Matrix to_matrix(const Tensor& t);

// A (rows, cols) matrix of N(0, 1) draws from rng, row by row (a seed gives the same matrix).
Matrix gaussian(int64_t rows, int64_t cols, Rng& rng);

// The top-k right-singular vectors of M (rows, cols) as the columns of a (cols, k) matrix, ordered by
// decreasing singular value; k <= min(rows, cols). (Left ones: right_singular(Mᵀ, k).)
Matrix right_singular(const Matrix& M, int64_t k);

// φ(A1, A2, i, j) of eq. (4) for every 1 <= i <= r1, 1 <= j <= r2, as an (r1, r2) matrix whose
// element (i-1, j-1) is φ at (i, j). A1 (r1, in) and A2 (r2, in) share `in`; r <= in for both.
Matrix subspace_similarity(const Matrix& A1, const Matrix& A2);

// How many top directions two adapters share: the largest k with φ(k, k) > threshold (0 if none).
int64_t shared_dimensions(const Matrix& phi, double threshold = 0.5);

// Expected φ(i, j) of two independent uniformly random subspaces of R^d: E‖U_iᵀU_j‖²_F = i·j/d,
// so max(i, j)/d. The floor against which Figures 3 and 4 read on a small model (d = 192 here,
// against 12,288 for GPT-3, where it is ~0).
double random_similarity(int64_t i, int64_t j, int64_t d);

// ‖Uᵀ W V‖_F for W (out, in), U (out, r), V (in, r) with orthonormal columns.
double projected_norm(const Matrix& W, const Matrix& U, const Matrix& V);

// One column of Table 7 for one weight W (out, in) and its update ΔW (out, in) at rank r.
struct WeightProjection {
  int64_t r = 0;
  double proj_delta = 0;     // ‖UᵀWV‖_F, U/V: top-r singular vectors of ΔW
  double proj_w = 0;         //  ... of W itself (= sqrt of W's top-r squared singular values)
  double proj_random = 0;    //  ... of a random Gaussian (out, in) matrix
  double norm_w = 0;         // ‖W‖_F
  double norm_delta = 0;     // ‖ΔW‖_F
  double amplification = 0;  // norm_delta / proj_delta
};

// Table 7's quantities; rng draws the random matrix (seeded: the same rng state gives the same value).
WeightProjection weight_projection(const Matrix& W, const Matrix& delta, int64_t r, Rng& rng);

// ΔW = scale · B A for A (r, in), B (out, r): the update a LoRA pair adds to W (Section 4.1).
Matrix lora_delta(const Tensor& A, const Tensor& B, float scale);

// One adapted q/k/v slice of a fused c_attn (LoRAFusedQKV, per-slice A): what Section 7 analyses.
struct AdaptedSlice {
  int64_t layer = 0;
  std::string slice;  // "q", "k" or "v"
  Matrix W;           // the frozen pretrained slice W0 (C, C): rows [s·C, (s+1)·C) of c_attn.weight
  Matrix A;           // (r, C)
  Matrix delta;       // scale · B A (C, C)
};

// Every per-slice LoRA pair of the model's c_attn modules, by layer then q, k, v. Throws when the
// model is merged (W would hold W0 + ΔW) or uses the shared-A layout (target "c_attn").
std::vector<AdaptedSlice> adapted_slices(nn::GPT& model);

}  // namespace lowrank::lora
