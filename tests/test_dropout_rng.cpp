// The counter-based generator behind dropout (tensor/philox.h) and the per-call stream of
// autograd::dropout: Random123's known answers, the drop rate over ~1e6 elements, one key per call
// from the caller's Rng, the mask independent of the thread count, and the mask exactly the shared
// header's function of (key, index), which is what the CUDA kernel computes (cuda/dropout.cu).
#include <algorithm>
#include <cmath>

#include "tensor/parallel.h"
#include "tensor/philox.h"
#include "test_util.h"

using namespace lowrank;
using namespace lowrank::autograd;
using namespace lowrank::testing;
namespace philox = lowrank::tensor::philox;

namespace {

// The mask the op used: y / x for an all-ones x (0 or 1/(1-p)).
std::vector<float> mask_of(int64_t n, float p, Rng& rng) { return dropout(Tensor::full({n}, 1.f), p, rng).to_vector(); }

}  // namespace

TEST_CASE("philox: Philox-4x32-10 reproduces Random123's known-answer vectors") {
  // Random123 (Salmon et al. 2011), tests/kat_vectors: counter, key -> output.
  struct Kat {
    philox::U32x4 ctr;
    uint32_t k0, k1;
    philox::U32x4 out;
  };
  const Kat kats[] = {
      {{{0, 0, 0, 0}}, 0, 0, {{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}}},
      {{{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}},
       0xffffffffu,
       0xffffffffu,
       {{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}}},
      {{{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}},
       0xa4093822u,
       0x299f31d0u,
       {{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}}},
  };
  for (const Kat& k : kats) {
    const philox::U32x4 got = philox::philox4x32_10(k.ctr, k.k0, k.k1);
    for (int l = 0; l < 4; ++l) CHECK(got.v[l] == k.out.v[l]);
  }
  CHECK(philox::to_unit_float(0xffffffffu) < 1.f);  // [0, 1): the top 24 bits never round up to 1
  CHECK(philox::to_unit_float(0u) == 0.f);
}

TEST_CASE("philox: the uniforms of 2^20 elements fill ten bins evenly") {
  const int64_t groups = int64_t(1) << 18;  // 4 uniforms each
  std::vector<int64_t> bins(10, 0);
  for (int64_t g = 0; g < groups; ++g) {
    float u[4];
    philox::uniform4(0x0123456789abcdefull, static_cast<uint64_t>(g), u);
    for (float v : u) ++bins[std::min<size_t>(9, static_cast<size_t>(v * 10.f))];
  }
  const double n = 4.0 * groups, expect = n / 10, sd = std::sqrt(n * 0.1 * 0.9);
  for (int64_t b : bins) CHECK(std::fabs(double(b) - expect) < 5 * sd);
}

TEST_CASE("dropout: the drop rate over 2^20 elements is within 5 std of p, for several p") {
  const int64_t n = int64_t(1) << 20;
  for (float p : {0.1f, 0.5f, 0.9f}) {
    CAPTURE(p);
    Rng rng(11);
    const std::vector<float> m = mask_of(n, p, rng);
    int64_t dropped = 0;
    double sum = 0;
    for (float v : m) {
      dropped += v == 0.f;
      sum += v;
    }
    const double sd = std::sqrt(p * (1.0 - p) / n);  // std of the dropped fraction
    CHECK(std::fabs(double(dropped) / n - p) < 5 * sd);
    CHECK(std::fabs(sum / n - 1.0) < 5 * sd / (1.0 - p));  // inverted dropout keeps E[y] = x
  }
}

TEST_CASE("dropout: one key per call: same Rng state same mask, consecutive calls differ") {
  const int64_t n = 4099;  // a partial last group of 4
  Rng a(42), b(42);
  const std::vector<float> first = mask_of(n, 0.3f, a);
  CHECK(first == mask_of(n, 0.3f, b));  // same state, same mask
  const std::vector<float> second = mask_of(n, 0.3f, a);
  CHECK(second != first);  // the Rng advanced: a new stream
  int64_t agree = 0;
  for (int64_t i = 0; i < n; ++i) agree += (first[i] == 0.f) == (second[i] == 0.f);
  CHECK(double(agree) / n < 0.7);  // independent masks agree on 0.3² + 0.7² = 58% of units
  // Exactly one 64-bit draw per call, whatever n: the caller's stream stays predictable.
  Rng c(42);
  c.next_u64();
  c.next_u64();
  CHECK(a.next_u64() == c.next_u64());
  Rng d(42), e(42);
  mask_of(1, 0.3f, d);
  mask_of(100000, 0.3f, e);
  CHECK(d.next_u64() == e.next_u64());
}

TEST_CASE("dropout: the mask is the shared header's function of (key, index), whatever the thread count") {
  const int64_t n = 300003;  // above the parallel grain, not a multiple of 4
  const float p = 0.25f;
  Tensor x = param({n}, 5);
  Rng key_rng(9);
  const uint64_t key = key_rng.next_u64();
  // The reference: the header evaluated serially, as the CUDA kernel evaluates it per group.
  std::vector<float> want_y(n), want_mask(n);
  const std::vector<float> xv = x.to_vector();
  for (int64_t g = 0; g < philox::dropout_groups(n); ++g)
    philox::dropout_group(want_y.data(), want_mask.data(), xv.data(), n, uint64_t(g), key, p, 1.f / (1.f - p));
  for (int threads : {1, 0}) {  // 1 thread, then the default
    CAPTURE(threads);
    tensor::set_num_threads(threads);
    Rng rng(9);
    CHECK(dropout(x, p, rng).to_vector() == want_y);
  }
  tensor::set_num_threads(0);
}
