// tools/flash_sim.sh: the fused attention kernels' own source (cuda/flash_attention_*.cu, through the
// host shim in shim/cuda/common.cuh) against a double-precision reference of attention, on cases like
// the parity test's: forward out and L, and backward dq/dk/dv accumulated onto a random G0 (all
// |got − want| <= 1e-5 + 1e-4·|want|). Exits 1 when a case fails.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "cuda/attention_paths.h"

using namespace lowrank;
using autograd::detail::AttnDims;
using autograd::detail::AttnGrads;
using autograd::detail::Operand;

namespace {

struct Case {
  int64_t B, Tq, Tk, NH, hs;
  bool causal, fused;  // fused: q, k, v are slices of one (B, T, 3C) buffer, row stride 3C
  std::vector<int32_t> klen;
};

// q, k, v (strided views into `buf`), dO (B, Tq, C), and the dims.
struct Inputs {
  std::vector<float> buf, dO;
  Operand q, k, v;
  AttnDims d;
  double at(const Operand& o, int64_t b, int64_t t, int64_t h, int64_t x) const {
    return o.p[b * o.sb + t * o.st + h * d.hs + x];
  }
};

std::vector<float> randn(std::mt19937& rng, size_t n) {
  std::normal_distribution<float> nd;
  std::vector<float> x(n);
  for (float& v : x) v = nd(rng);
  return x;
}

Inputs make_inputs(const Case& c, std::mt19937& rng) {
  Inputs in;
  const int64_t C = c.NH * c.hs;
  in.buf = randn(rng, c.fused ? c.B * c.Tq * 3 * C : c.B * (c.Tq + 2 * c.Tk) * C);
  float* p = in.buf.data();
  if (c.fused) {
    in.q = {p, c.Tq * 3 * C, 3 * C}, in.k = {p + C, c.Tq * 3 * C, 3 * C}, in.v = {p + 2 * C, c.Tq * 3 * C, 3 * C};
  } else {
    in.q = {p, c.Tq * C, C}, in.k = {p + c.B * c.Tq * C, c.Tk * C, C};
    in.v = {p + c.B * (c.Tq + c.Tk) * C, c.Tk * C, C};
  }
  in.dO = randn(rng, c.B * c.Tq * C);
  AttnDims& d = in.d;
  d.B = c.B, d.Tq = c.Tq, d.Tk = c.Tk, d.C = C, d.NH = c.NH, d.hs = c.hs, d.causal = c.causal;
  d.scale = 1.f / std::sqrt(float(c.hs));
  d.key_len = c.klen.empty() ? nullptr : c.klen.data();
  return in;
}

struct Ref {
  std::vector<double> out, L, dq, dk, dv;
};

// Row i of head (b, h): P over its n visible keys, out, L, and its terms of dq, dk, dv.
void reference_row(const Inputs& in, Ref& r, int64_t b, int64_t h, int64_t i, int64_t n) {
  const AttnDims& d = in.d;
  std::vector<double> p(n), dp(n);
  double mx = -1e300, sum = 0, D = 0;
  const int64_t orow = (b * d.Tq + i) * d.C + h * d.hs;
  for (int64_t j = 0; j < n; ++j) {
    double s = 0, t = 0;
    for (int64_t x = 0; x < d.hs; ++x) s += in.at(in.q, b, i, h, x) * in.at(in.k, b, j, h, x);
    for (int64_t x = 0; x < d.hs; ++x) t += in.dO[orow + x] * in.at(in.v, b, j, h, x);
    p[j] = s * d.scale, dp[j] = t, mx = std::max(mx, p[j]);
  }
  for (double& x : p) sum += (x = std::exp(x - mx));
  for (int64_t j = 0; j < n; ++j) p[j] /= sum, D += p[j] * dp[j];
  r.L[(b * d.NH + h) * d.Tq + i] = mx + std::log(sum);
  for (int64_t j = 0; j < n; ++j) {
    const double ds = p[j] * (dp[j] - D);
    const int64_t krow = (b * d.Tk + j) * d.C + h * d.hs;
    for (int64_t x = 0; x < d.hs; ++x) {
      r.out[orow + x] += p[j] * in.at(in.v, b, j, h, x);
      r.dv[krow + x] += p[j] * in.dO[orow + x];
      r.dq[orow + x] += d.scale * ds * in.at(in.k, b, j, h, x);
      r.dk[krow + x] += d.scale * ds * in.at(in.q, b, i, h, x);
    }
  }
}

Ref reference(const Inputs& in) {
  const AttnDims& d = in.d;
  Ref r;
  r.out.assign(d.B * d.Tq * d.C, 0), r.dq = r.out, r.L.assign(d.B * d.NH * d.Tq, 0);
  r.dk.assign(d.B * d.Tk * d.C, 0), r.dv = r.dk;
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t h = 0; h < d.NH; ++h)
      for (int64_t i = 0; i < d.Tq; ++i) {
        int64_t n = d.causal ? i + d.Tk - d.Tq + 1 : d.Tk;
        if (d.key_len) n = std::min<int64_t>(n, d.key_len[b]);
        reference_row(in, r, b, h, i, n);
      }
  return r;
}

double worst = 0;

bool check(const char* what, const std::vector<float>& got, const std::vector<double>& want) {
  double w = 0;
  size_t at = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double e = std::fabs(got[i] - want[i]) / (1e-5 + 1e-4 * std::fabs(want[i]));
    if (!(e <= w)) w = e, at = i;  // NaN too
  }
  worst = std::max(worst, w);
  if (w <= 1) return true;
  std::printf("  FAIL %s: error/tolerance %.3g at %zu, got %g want %g\n", what, w, at, got[at], want[at]);
  return false;
}

// want += g0, elementwise: the expected content of a gradient accumulated onto g0.
std::vector<double> plus(std::vector<double> want, const std::vector<float>& g0) {
  for (size_t i = 0; i < want.size(); ++i) want[i] += g0[i];
  return want;
}

bool run(const Case& c) {
  std::mt19937 rng(7);
  const Inputs in = make_inputs(c, rng);
  const Ref r = reference(in);
  std::vector<float> out(r.out.size(), NAN), L(r.L.size(), NAN);
  cuda::detail::flash_attention_forward(out.data(), L.data(), in.q, in.k, in.v, in.d);
  const std::vector<float> g0q = randn(rng, r.dq.size()), g0k = randn(rng, r.dk.size()), g0v = randn(rng, r.dv.size());
  std::vector<float> dq = g0q, dk = g0k, dv = g0v;
  AttnGrads g;
  g.dq = dq.data(), g.dk = dk.data(), g.dv = dv.data(), g.dout = in.dO.data(), g.out = out.data();
  cuda::detail::flash_attention_backward(g, L.data(), in.q, in.k, in.v, in.d);
  bool ok = check("out", out, r.out);
  ok = check("L", L, r.L) && ok;
  ok = check("dq", dq, plus(r.dq, g0q)) && ok;
  ok = check("dk", dk, plus(r.dk, g0k)) && ok;
  return check("dv", dv, plus(r.dv, g0v)) && ok;
}

}  // namespace

int main() {
  const std::vector<Case> cases = {
      {2, 70, 70, 2, 32, true, false, {}},          // causal, ragged query and key tiles
      {2, 70, 70, 2, 64, false, false, {70, 45}},   // bidirectional, key_len ends mid-tile
      {3, 5, 77, 2, 64, true, false, {77, 40, 6}},  // Tq < Tk with key lengths
      {2, 1, 50, 2, 32, true, false, {50, 17}},     // one query over a cache
      {2, 100, 100, 2, 64, true, true, {100, 33}},  // fused qkv
      {2, 40, 40, 2, 128, true, true, {}},          // hs 128, fused qkv
      {1, 33, 97, 2, 128, true, false, {}},         // hs 128, Tq < Tk
      {2, 66, 66, 1, 64, false, false, {66, 1}},    // a sequence of one key
      {1, 130, 130, 1, 128, false, false, {}},      // hs 128, 5 query tiles
      {1, 129, 129, 3, 32, true, true, {}},         // 3 heads, fused, ragged
  };
  int fails = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    std::printf("case %zu: B %ld Tq %ld Tk %ld NH %ld hs %ld causal %d fused %d key lengths %zu\n", i, long(c.B),
                long(c.Tq), long(c.Tk), long(c.NH), long(c.hs), int(c.causal), int(c.fused), c.klen.size());
    if (!run(c)) ++fails;
  }
  std::printf("%d of %zu cases failed; worst error/tolerance %.3g\n", fails, cases.size(), worst);
  return fails != 0;
}
