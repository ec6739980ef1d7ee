// The bf16 precision policy at the tensor level (tensor/precision.h, docs/precision.md): the rounding
// to bf16, the policy setting, the bf16 GEMM against the fp32 reference, and the bf16 copy of a weight
// with what drops it (every write of its storage). Where this CPU has no bf16 GEMM the GEMM check says
// why it is skipped; the rest runs everywhere. The ops in bf16: test_bf16_ops.cpp; a training curve:
// test_bf16_train.cpp.
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <vector>

#include "bf16_test_util.h"
#include "gemm_test_util.h"
#include "tensor/bf16.h"
#include "tensor/gemm_bf16.h"
#include "tensor/precision.h"
#include "tensor/safetensors.h"
#include "test_util.h"

using namespace lowrank;
using namespace lowrank::testing;
using tensor::Precision;
using tensor::PrecisionGuard;

namespace {

float float_of(uint32_t b) {
  float f;
  std::memcpy(&f, &b, sizeof f);
  return f;
}

}  // namespace

TEST_CASE("bf16: rounding to nearest even, exact round trips, NaN, infinities and subnormals") {
  const auto round = [](float f) { return tensor::round_to_bf16(f); };
  CHECK(round(1.f) == 0x3f80);
  CHECK(round(-2.f) == 0xc000);
  CHECK(round(0.f) == 0x0000);
  CHECK(round(-0.f) == 0x8000);
  // Halfway cases go to the even neighbour; anything past the midpoint goes up.
  CHECK(round(float_of(0x3f808000u)) == 0x3f80);  // 1 + 2^-8: tie, 0x3f80 is even
  CHECK(round(float_of(0x3f818000u)) == 0x3f82);  // tie, 0x3f81 odd: up to 0x3f82
  CHECK(round(float_of(0x3f808001u)) == 0x3f81);  // just above the tie
  CHECK(round(float_of(0x3f807fffu)) == 0x3f80);  // just below
  // Infinities stay; the largest floats round up to infinity, as IEEE rounding does.
  CHECK(round(std::numeric_limits<float>::infinity()) == 0x7f80);
  CHECK(round(-std::numeric_limits<float>::infinity()) == 0xff80);
  CHECK(round(std::numeric_limits<float>::max()) == 0x7f80);
  CHECK(round(float_of(0x7f7f7fffu)) == 0x7f7f);  // below the midpoint to inf: the largest bf16
  // NaNs stay NaN (quiet), even one whose payload sits only in the dropped bits, and keep their sign.
  for (uint32_t nan : {0x7fc00000u, 0x7f800001u, 0xff800001u, 0x7fffffffu}) {
    CAPTURE(nan);
    const uint16_t h = round(float_of(nan));
    CHECK(std::isnan(tensor::bfloat16_to_float(h)));
    CHECK((h & 0x0040u) != 0);
    CHECK((h & 0x8000u) == ((nan >> 16) & 0x8000u));
  }
  // Subnormals round within bf16's subnormals (same exponent range as float32), no flush to zero.
  CHECK(round(float_of(0x00010000u)) == 0x0001);  // the smallest bf16 subnormal, exact
  CHECK(round(float_of(0x00018000u)) == 0x0002);  // tie, odd: up
  CHECK(round(float_of(0x00008000u)) == 0x0000);  // tie, even (zero): down
  CHECK(round(float_of(0x00008001u)) == 0x0001);
  CHECK(round(float_of(0x807fffffu)) == 0x8080);  // the largest negative subnormal rounds up to -2^-126
  // Every bf16 value converts to float32 and back unchanged; the bulk conversions agree with round().
  std::vector<float> all;
  for (uint32_t h = 0; h < 0x10000u; ++h)
    if ((h & 0x7fffu) <= 0x7f80u) all.push_back(tensor::bfloat16_to_float(static_cast<uint16_t>(h)));
  std::vector<uint16_t> back(all.size());
  tensor::to_bf16(back.data(), all.data(), static_cast<int64_t>(all.size()));
  std::vector<float> again(all.size());
  tensor::from_bf16(again.data(), back.data(), static_cast<int64_t>(all.size()));
  CHECK(std::memcmp(again.data(), all.data(), all.size() * sizeof(float)) == 0);
  const std::vector<float> src = {1.f, 2.5f, -3.14159f, 1e-40f, 7.f, 8.f};  // (2, 2) rows of a (2, 3) buffer
  std::vector<uint16_t> rows(4);
  tensor::to_bf16_rows(rows.data(), src.data(), 2, 2, 3);
  CHECK(rows == std::vector<uint16_t>{round(1.f), round(2.5f), round(1e-40f), round(7.f)});
}

TEST_CASE("bf16: the precision policy parses fp32 and bf16, refuses others, and a guard restores it") {
  CHECK(tensor::precision() == Precision::fp32);  // the default
  CHECK(tensor::parse_precision("bf16") == Precision::bf16);
  CHECK(std::string(tensor::precision_name(Precision::bf16)) == "bf16");
  CHECK(
      contains(error_of([] { tensor::parse_precision("fp16"); }), "unknown precision 'fp16' (expected fp32 or bf16)"));
  {
    PrecisionGuard g(Precision::bf16);
    CHECK(tensor::precision() == Precision::bf16);
  }
  CHECK(tensor::precision() == Precision::fp32);
}

TEST_CASE("bf16: gemm_bf16 matches the fp32 reference for every transpose pair, odd shapes and beta 0 or 1") {
  if (!bf16_gemm_here()) return;
  INFO(tensor::bf16_gemm_info());
  const std::vector<Shape3> shapes = {{false, false, 17, 19, 23},  {false, true, 33, 29, 65},
                                      {true, false, 31, 67, 18},   {true, true, 129, 17, 37},
                                      {false, true, 100, 257, 96}, {false, false, 1, 1, 1}};
  unsigned seed = 1;
  for (const Shape3& s : shapes)
    for (float beta : {0.f, 1.f}) {
      const int64_t pad = 3, lda = (s.ta ? s.M : s.K) + pad, ldb = (s.tb ? s.K : s.N) + pad, ldc = s.N + pad;
      INFO(s.M, "x", s.N, "x", s.K, " ta=", s.ta, " tb=", s.tb, " beta=", beta);
      std::vector<float> A = random_floats((s.ta ? s.K : s.M) * lda, seed++),
                         B = random_floats((s.tb ? s.N : s.K) * ldb, seed++), C = random_floats(s.M * ldc, seed++);
      std::vector<uint16_t> A16(A.size()), B16(B.size());
      tensor::to_bf16(A16.data(), A.data(), static_cast<int64_t>(A.size()));
      tensor::to_bf16(B16.data(), B.data(), static_cast<int64_t>(B.size()));
      std::vector<float> Ar(A.size()), Br(B.size()), ref = C, exact = C, scale(C.size());
      tensor::from_bf16(Ar.data(), A16.data(), static_cast<int64_t>(A.size()));  // the operands bf16 saw
      tensor::from_bf16(Br.data(), B16.data(), static_cast<int64_t>(B.size()));
      std::vector<float> absA(A.size()), absB(B.size());
      for (size_t i = 0; i < A.size(); ++i) absA[i] = std::fabs(A[i]);
      for (size_t i = 0; i < B.size(); ++i) absB[i] = std::fabs(B[i]);
      for (size_t i = 0; i < C.size(); ++i) scale[i] = beta * std::fabs(C[i]);
      tensor::gemm_reference(s.ta, s.tb, s.M, s.N, s.K, 1.f, A.data(), lda, B.data(), ldb, beta, ref.data(), ldc);
      tensor::gemm_reference(s.ta, s.tb, s.M, s.N, s.K, 1.f, Ar.data(), lda, Br.data(), ldb, beta, exact.data(), ldc);
      tensor::gemm_reference(s.ta, s.tb, s.M, s.N, s.K, 1.f, absA.data(), lda, absB.data(), ldb, 1.f, scale.data(),
                             ldc);
      const int64_t calls = tensor::bf16_gemm_calls();
      tensor::gemm_bf16(s.ta, s.tb, s.M, s.N, s.K, A16.data(), lda, B16.data(), ldb, beta, C.data(), ldc);
      CHECK(tensor::bf16_gemm_calls() == calls + 1);
      for (int64_t i = 0; i < s.M; ++i)  // the padding columns are left alone
        for (int64_t j = s.N; j < ldc; ++j) CHECK(C[i * ldc + j] == ref[i * ldc + j]);
      // Within bf16's rounding of the fp32 operands, and within fp32 summation of the bf16 operands
      // themselves: the products are accumulated in fp32, not rounded to bf16 on the way.
      check_close(C, ref, scale, kBf16Tol);
      check_close(C, exact, scale, 1e-5);
    }
  CHECK(contains(error_of([] {
                   float c = 0;
                   uint16_t a = 0;
                   tensor::gemm_bf16(false, false, 1, 1, 1, &a, 1, &a, 1, 0.5f, &c, 1);
                 }),
                 "gemm_bf16: (1x1)·(1x1) with beta 0.5: needs every dimension >= 1 and beta 0 or 1"));
}

TEST_CASE("bf16: a weight's bf16 copy is made once, shared, and dropped by every write") {
  Rng rng(12);
  Tensor w = Tensor::randn({6, 5}, rng);
  const auto first = tensor::bf16_copy(w);
  const int64_t made = tensor::bf16_copies_made();
  CHECK(tensor::bf16_copy(w) == first);  // kept by the storage: no second conversion
  CHECK(tensor::bf16_copies_made() == made);
  std::vector<uint16_t> expect(30);
  tensor::to_bf16(expect.data(), w.data(), 30);
  CHECK(first->values == expect);
  // Each kind of write makes the next call convert the new values.
  const std::vector<std::pair<const char*, std::function<void()>>> writes = {
      {"add_",
       [&] {
         w.add_(Tensor::full({6, 5}, 0.5f));
       }},
      {"copy_",
       [&] {
         w.copy_(Tensor::full({6, 5}, 2.f));
       }},
      {"fill_", [&] { w.fill_(3.f); }},
      {"copy_ into a row view",
       [&] {
         w.narrow(0, 2, 1).copy_(Tensor::full({1, 5}, -1.f));
       }},
      {"mark_written", [&] { w.data()[0] = 9.f, w.mark_written(); }},
      {"requires_grad_(true)", [&] { w.data()[1] = 8.f, w.requires_grad_(true), w.requires_grad_(false); }},
  };
  for (const auto& entry : writes) {  // no structured binding: clang 14 cannot capture one in CAPTURE
    const std::string what = entry.first;
    const auto& write = entry.second;
    CAPTURE(what);
    const uint64_t version = w.version();
    const auto before = tensor::bf16_copy(w);
    write();
    CHECK(w.version() > version);
    const auto after = tensor::bf16_copy(w);
    CHECK(after != before);
    tensor::to_bf16(expect.data(), w.data(), 30);
    CHECK(after->values == expect);
  }
  // Another view of the same storage gets its own copy (and replaces the first).
  const Tensor rows = w.narrow(0, 1, 3);
  const auto part = tensor::bf16_copy(rows);
  CHECK(part->numel == 15);
  CHECK(part->offset == 5);
  CHECK(part->values == std::vector<uint16_t>(expect.begin() + 5, expect.begin() + 20));
  CHECK(contains(error_of([&] { tensor::bf16_copy(w.transpose(0, 1)); }),
                 "bf16_copy: needs a contiguous CPU tensor, got (5, 6)"));
}
