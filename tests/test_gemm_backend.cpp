// tensor::gemm against tensor::gemm_reference (double accumulation), whatever backend the build has
// (-DLOWRANK_GEMM=openblas|onednn|blis|eigen): the step's shapes scaled down, every transpose
// combination, beta 0 / 1 / other, padded leading dimensions, and the empty cases.
#include <omp.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include <doctest/doctest.h>
#include "gemm_test_util.h"
#include "tensor/gemm.h"
#include "tensor/gemm_profile.h"
#include "tensor/parallel.h"

using namespace lowrank;
using namespace lowrank::testing;

TEST_CASE("gemm backend: the name matches the configured LOWRANK_GEMM") {
  CHECK(std::string(tensor::gemm_backend()) == LOWRANK_GEMM_EXPECTED);  // set from CMake's LOWRANK_GEMM
  CHECK(!tensor::gemm_backend_info().empty());
}

TEST_CASE("gemm backend: the step's shapes, scaled down, match the double reference") {
  // GPT-2 step shapes at tokens 64, width 96 (768/8), LoRA rank 4 and a 5027-wide head (50257/10):
  // forward x·Wᵀ (NT), backward dy·W (NN) and dyᵀ·x (TN), as in examples/bench_ops.cpp.
  const int64_t T = 64, C = 96, r = 4, V = 5027;
  const std::vector<Shape3> shapes = {
      {false, true, T, 3 * C, C}, {false, false, T, C, 3 * C}, {true, false, 3 * C, C, T},  // attn.c_attn
      {false, true, T, 4 * C, C}, {false, false, T, C, 4 * C}, {true, false, C, 4 * C, T},  // mlp
      {false, true, T, r, C},     {false, true, T, C, r},      {true, false, C, r, T},      // LoRA r=4
      {false, false, T, r, C},    {true, false, r, C, T},      {false, false, T, C, r},
      {false, true, T, V, C},     {false, false, T, C, V},     {true, false, V, C, T}};  // head
  unsigned seed = 1;
  for (int threads : {1, 2}) {
    const int prev = tensor::num_threads();
    tensor::set_num_threads(threads);
    for (const auto& s : shapes) check(s, 1.f, 0.f, 0, seed++);
    tensor::set_num_threads(prev);
  }
}

TEST_CASE("gemm backend: transposes, alpha and beta, padded leading dimensions") {
  unsigned seed = 100;
  const std::vector<std::tuple<int64_t, int64_t, int64_t>> sizes = {{37, 29, 53}, {33, 4, 70}, {4, 45, 1}};
  for (const auto& [M, N, K] : sizes)
    for (int ta = 0; ta < 2; ++ta)
      for (int tb = 0; tb < 2; ++tb)
        for (float beta : {0.f, 1.f, -0.7f})
          for (int64_t pad : {0, 3}) check({ta == 1, tb == 1, M, N, K}, pad ? -1.3f : 0.7f, beta, pad, seed++);
}

TEST_CASE("gemm backend: beta = 0 overwrites C, NaN included, empty products") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> A = random_floats(6 * 5, 7), B = random_floats(5 * 4, 8);
  std::vector<float> C(6 * 4, nan);
  tensor::gemm(false, false, 6, 4, 5, 1.f, A.data(), 5, B.data(), 4, 0.f, C.data(), 4);
  for (float c : C) CHECK(std::isfinite(c));

  SUBCASE("K = 0: C = beta·C, and zeros for beta = 0 whatever C held") {
    std::vector<float> D(6 * 4, 2.f);
    tensor::gemm(false, false, 6, 4, 0, 1.f, A.data(), 1, B.data(), 4, 0.5f, D.data(), 4);
    for (float d : D) CHECK(d == 1.f);
    std::vector<float> E(6 * 4, nan);
    tensor::gemm(true, true, 6, 4, 0, 1.f, A.data(), 6, B.data(), 1, 0.f, E.data(), 4);
    for (float e : E) CHECK(e == 0.f);
  }
  SUBCASE("M = 0 or N = 0: C is not touched") {
    std::vector<float> D(6 * 4, 3.f);
    tensor::gemm(false, false, 0, 4, 5, 1.f, A.data(), 5, B.data(), 4, 0.f, D.data(), 4);
    tensor::gemm(false, false, 6, 0, 5, 1.f, A.data(), 5, B.data(), 4, 0.f, D.data(), 4);
    for (float d : D) CHECK(d == 3.f);
  }
}

TEST_CASE("gemm profile: a row per shape and beta outside parallel regions, pooled inside, nothing while off") {
  const int64_t M = 8, N = 32, K = 16;
  std::vector<float> A(M * K, 1.f), B(K * N, 1.f), C(2 * M * N, 0.f);
  auto call = [&](float beta, float* c) {
    tensor::gemm(false, true, M, N, K, 1.f, A.data(), K, B.data(), K, beta, c, N);
  };
  call(0.f, C.data());  // off: not recorded
  CHECK_FALSE(tensor::gemm_profiling());
  tensor::gemm_profile_start();
  CHECK(tensor::gemm_profiling());
  call(0.f, C.data());
  call(0.f, C.data());
  call(1.f, C.data());
  int in_parallel = 0, team = 0;
#pragma omp parallel num_threads(2) reduction(+ : in_parallel, team)
  {
    call(0.f, C.data() + omp_get_thread_num() * M * N);  // each thread its own C
    in_parallel += omp_in_parallel() ? 1 : 0;
    team += 1;
  }
  const std::vector<tensor::GemmStat> rows = tensor::gemm_profile_stop();
  CHECK_FALSE(tensor::gemm_profiling());
  call(0.f, C.data());                   // off again
  CHECK(C[0] == doctest::Approx(16.f));  // the timed path computes what the plain one does
  const double flops = 2.0 * M * N * K;
  int64_t plain = 0, accumulate = 0, pooled = 0;
  for (const tensor::GemmStat& r : rows) {
    CHECK(r.transA == false);
    CHECK(r.transB == true);
    CHECK(r.seconds >= 0);
    CHECK(r.flops == doctest::Approx(flops * r.calls));
    if (r.pooled()) {
      pooled += r.calls;
      CHECK((r.N == -1 && r.K == -1));
    } else {
      CHECK((r.M == M && r.N == N && r.K == K));
      (r.accumulate ? accumulate : plain) += r.calls;
    }
  }
  CHECK(rows.size() == (in_parallel > 0 ? 3u : 2u));
  CHECK(plain == 2 + (in_parallel > 0 ? 0 : team));  // a team of one is not an active parallel region
  CHECK(accumulate == 1);
  CHECK(pooled == in_parallel);
  for (size_t i = 1; i < rows.size(); ++i) CHECK(rows[i - 1].seconds >= rows[i].seconds);  // most time first
  tensor::gemm_profile_start();
  CHECK(tensor::gemm_profile_stop().empty());  // a new start clears the old table
}
