// tensor/gemm_thin.cpp through tensor::gemm: products with a dimension of at most 16 (LoRA's rank-r
// GEMMs) in each of their loop forms (dot form for thin N, axpy form for thin K or M, the transposed
// problem for the rest), at the threshold and just past it (the BLAS again), and their results the
// same bits at 1 and 2 threads.
#include <cstring>
#include <tuple>
#include <vector>

#include <doctest/doctest.h>
#include "gemm_test_util.h"
#include "tensor/gemm.h"
#include "tensor/parallel.h"

using namespace lowrank;
using namespace lowrank::testing;

TEST_CASE("gemm thin: every transpose combination with M, N or K thin matches the double reference") {
  // (M, N, K): thin N (dot form; transposed problem when op(A) is transposed), thin K (axpy form, rows of
  // C outside), thin M (axpy form, k outside; transposed problem when op(B) is transposed), all three
  // thin, the threshold 16 itself and 17 (the BLAS), and LoRA's shapes at 300 tokens, width 200, r = 4.
  const std::vector<std::tuple<int64_t, int64_t, int64_t>> sizes = {
      {40, 3, 37},  {41, 37, 2},   {5, 40, 37},   {3, 4, 5},     {16, 40, 33},
      {40, 17, 33}, {300, 4, 200}, {300, 200, 4}, {200, 4, 300}, {4, 200, 300}};
  unsigned seed = 500;
  for (const auto& [M, N, K] : sizes)
    for (int ta = 0; ta < 2; ++ta)
      for (int tb = 0; tb < 2; ++tb)
        for (float beta : {0.f, 1.f, -0.7f})
          for (int64_t pad : {0, 3}) check({ta == 1, tb == 1, M, N, K}, pad ? -1.3f : 0.7f, beta, pad, seed++);
}

TEST_CASE("gemm thin: LoRA's rank-4 products give the same bits at 1 and 2 threads") {
  const int64_t T = 300, C = 200, r = 4;
  const std::vector<Shape3> shapes = {{false, true, T, r, C},  {false, true, T, C, r}, {true, false, C, r, T},
                                      {false, false, T, r, C}, {true, false, r, C, T}, {false, false, T, C, r}};
  const int prev = tensor::num_threads();
  unsigned seed = 900;
  for (const Shape3& s : shapes) {
    const std::vector<float> A = random_floats(s.M * s.K, seed), B = random_floats(s.K * s.N, seed + 1);
    std::vector<std::vector<float>> out;
    for (int threads : {1, 2}) {
      tensor::set_num_threads(threads);
      std::vector<float> Cm = random_floats(s.M * s.N, seed + 2);
      tensor::gemm(s.ta, s.tb, s.M, s.N, s.K, 1.f, A.data(), s.ta ? s.M : s.K, B.data(), s.tb ? s.K : s.N, 0.5f,
                   Cm.data(), s.N);
      out.push_back(Cm);
    }
    seed += 3;
    CAPTURE(s.M);
    CAPTURE(s.N);
    CAPTURE(s.K);
    CHECK(std::memcmp(out[0].data(), out[1].data(), out[0].size() * sizeof(float)) == 0);
  }
  tensor::set_num_threads(prev);
}
