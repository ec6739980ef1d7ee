// Tensor handles, views, copies, RNG and the GEMM that everything else relies on.
#include <cmath>

#include "tensor/gemm.h"
#include "tensor/parallel.h"
#include "test_util.h"

using namespace lowrank;
using namespace lowrank::testing;

TEST_CASE("shape: numel, negative dims, printing and errors") {
  Shape s{2, 3, 4};
  CHECK(s.numel() == 24);
  CHECK(s[-1] == 4);
  CHECK(s.rows() == 6);
  CHECK(s.str() == "(2, 3, 4)");
  CHECK(Shape{5}.str() == "(5,)");
  CHECK(Shape().numel() == 1);
  CHECK(error_of([&] { (void)s[3]; }).find("dim 3 out of range for (2, 3, 4)") != std::string::npos);
  CHECK(error_of([] { Shape{1, 2, 3, 4, 5}; }).find("at most 4") != std::string::npos);
}

TEST_CASE("shape: a product of dims past int64 is refused, even with a zero dim (it used to wrap: UB)") {
  const int64_t big = int64_t{1} << 62;
  for (const Shape& s : {Shape{big, 4, 0}, Shape{0, 4, big}, Shape{big, 2}, Shape{3, big, 1}}) {
    CAPTURE(s.str());
    CHECK(error_of([&] { (void)s.numel(); }).find("overflows int64") != std::string::npos);
    CHECK(error_of([&] { (void)tensor::contiguous_strides(s); }).find("overflows int64") != std::string::npos);
  }
  CHECK(Shape{big, 1, 0}.numel() == 0);  // fits: a valid empty shape
  CHECK(Shape{big, 1}.numel() == big);
  CHECK(tensor::contiguous_strides(Shape{big, 1, 0}).str() == "(0, 0, 1)");
}

TEST_CASE("tensor: handles share storage, clone copies") {
  Tensor a = Tensor::from({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = a;  // handle copy
  b.set({0, 1}, 20);
  CHECK(a.at({0, 1}) == 20);
  Tensor c = a.clone();
  c.set({0, 0}, -1);
  CHECK(a.at({0, 0}) == 1);
  CHECK_FALSE(c.shares_storage(a));
}

TEST_CASE("tensor: transpose, permute and narrow are strided views, contiguous copies when needed") {
  Tensor a = Tensor::from({0, 1, 2, 3, 4, 5}, {2, 3});
  Tensor t = a.transpose(0, 1);
  CHECK(t.shape() == Shape{3, 2});
  CHECK_FALSE(t.is_contiguous());
  CHECK(t.shares_storage(a));
  check_values(t.contiguous(), {0, 3, 1, 4, 2, 5});
  Tensor n = a.narrow(1, 1, 2);
  check_values(n, {1, 2, 4, 5});
  Tensor x = Tensor::from(std::vector<float>(24, 0.f), {2, 3, 4});
  for (int i = 0; i < 24; ++i) x.data()[i] = static_cast<float>(i);
  Tensor p = x.permute({2, 0, 1});
  CHECK(p.shape() == Shape{4, 2, 3});
  CHECK(p.at({3, 1, 2}) == x.at({1, 2, 3}));
  CHECK(a.contiguous().shares_storage(a));  // no copy when already contiguous
  CHECK(error_of([&] { t.view({6}); }).find("not contiguous") != std::string::npos);
  CHECK(error_of([&] { a.narrow(1, 2, 2); }).find("out of range") != std::string::npos);
}

TEST_CASE("tensor: add_ and copy_ work across strides") {
  Tensor a = Tensor::zeros({3, 2});
  Tensor b = Tensor::from({1, 2, 3, 4, 5, 6}, {2, 3});
  a.add_(b.transpose(0, 1), 2.f);
  check_values(a, {2, 8, 4, 10, 6, 12});
  CHECK(error_of([&] { a.copy_(b); }).find("copy_: shape mismatch (3, 2) vs (2, 3)") != std::string::npos);
}

TEST_CASE("rng: fixed seed gives identical streams, normal has unit moments") {
  Rng a(42), b(42), c(43);
  for (int i = 0; i < 10; ++i) CHECK(a.next_u64() == b.next_u64());
  CHECK(Rng(42).next_u64() != c.next_u64());
  Rng r(1);
  double s = 0, s2 = 0;
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    double v = r.normal();
    s += v;
    s2 += v * v;
  }
  CHECK(std::fabs(s / n) < 0.01);
  CHECK(std::fabs(s2 / n - 1.0) < 0.01);
  Rng u(3);
  for (int i = 0; i < 1000; ++i) {
    float v = u.uniform();
    CHECK((v >= 0.f && v < 1.f));
  }
}

TEST_CASE("gemm: every transpose combination matches the double reference") {
  const int64_t M = 37, N = 29, K = 53;
  Rng rng(5);
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb)
      for (float beta : {0.f, 1.f, 0.5f}) {
        Tensor A = Tensor::randn(ta ? Shape{K, M} : Shape{M, K}, rng);
        Tensor B = Tensor::randn(tb ? Shape{N, K} : Shape{K, N}, rng);
        Tensor C0 = Tensor::randn({M, N}, rng);
        Tensor C1 = C0.clone(), C2 = C0.clone();
        tensor::gemm(ta, tb, M, N, K, 0.7f, A.data(), ta ? M : K, B.data(), tb ? K : N, beta, C1.data(), N);
        tensor::gemm_reference(ta, tb, M, N, K, 0.7f, A.data(), ta ? M : K, B.data(), tb ? K : N, beta, C2.data(), N);
        std::vector<float> x = C1.to_vector(), y = C2.to_vector();
        for (size_t i = 0; i < x.size(); ++i) REQUIRE(x[i] == doctest::Approx(y[i]).epsilon(1e-4).scale(1.0));
      }
}

TEST_CASE("threads: set_num_threads is honoured") {
  int prev = tensor::num_threads();
  tensor::set_num_threads(1);
  CHECK(tensor::num_threads() == 1);
  tensor::set_num_threads(prev);
  CHECK(tensor::num_threads() == prev);
}

#include "tensor/vecmath.h"

TEST_CASE("fast_exp: within 4 ulp-ish (relative 5e-7) of std::exp over the softmax range") {
  double worst = 0.0;
  for (int i = -870000; i <= 880000; ++i) {
    const float x = static_cast<float>(i) * 1e-4f;
    const double ref = std::exp(static_cast<double>(x));
    const double got = tensor::fast_exp(x);
    if (ref > 1e-37) worst = std::max(worst, std::fabs(got - ref) / ref);
  }
  CHECK(worst < 5e-7);
  CHECK(tensor::fast_exp(-200.f) <= 1.2e-38f);  // clamped to the smallest normal: negligible next to a row max of 1
  CHECK(tensor::fast_exp(0.f) == 1.f);
}

TEST_CASE("fast_exp: NaN in, NaN out, scalar and vectorised (the NaN used to reach a float-to-int cast: UB)") {
  CHECK(std::isnan(tensor::fast_exp(std::nanf(""))));
  CHECK(std::isnan(tensor::fast_tanh(std::nanf(""))));
  std::vector<float> x(64, std::nanf(""));
  for (size_t i = 0; i < x.size(); i += 2) x[i] = -static_cast<float>(i);
#pragma omp simd
  for (size_t i = 0; i < x.size(); ++i) x[i] = tensor::fast_exp(x[i]);
  for (size_t i = 0; i < x.size(); ++i) {
    CAPTURE(i);
    if (i % 2)
      CHECK(std::isnan(x[i]));
    else
      CHECK(x[i] == doctest::Approx(std::exp(-static_cast<double>(i))).epsilon(1e-6));
  }
  CHECK(tensor::fast_exp(INFINITY) > 1e38f);  // clamped at 88.38: 2.4e38
  CHECK(tensor::fast_exp(-INFINITY) <= 1.2e-38f);
}

TEST_CASE("storage: large freed blocks are reused, small ones are not cached, release empties the cache") {
  tensor::release_cpu_cache();
  const size_t in_use = tensor::cpu_bytes_in_use();
  const float* first = nullptr;
  {
    Tensor big = Tensor::empty({1 << 19});  // 2 MiB
    first = big.data();
    CHECK(tensor::cpu_bytes_in_use() == in_use + (size_t(1) << 21));
  }
#ifdef LOWRANK_EXACT_ALLOC  // sanitizer builds (CMake LOWRANK_SANITIZE): no cache, every block goes straight back
  CHECK(tensor::cpu_bytes_cached() == 0);
  return;
#endif
  CHECK(tensor::cpu_bytes_cached() == (size_t(1) << 21));
  Tensor again = Tensor::zeros({1 << 19});
  CHECK(again.data() == first);     // the same block came back
  CHECK(again.at({12345}) == 0.f);  // zeros() still fills: reuse never leaks old values into it
  CHECK(tensor::cpu_bytes_cached() == 0);
  { Tensor small = Tensor::empty({1000}); }
  CHECK(tensor::cpu_bytes_cached() == 0);
  again = Tensor();
  tensor::release_cpu_cache();
  CHECK(tensor::cpu_bytes_cached() == 0);
}
