// tools/flash_sim.sh: the fused attention kernels' own source (cuda/flash_attention_*.cu, through the
// host shim in shim/cuda/common.cuh) against a double-precision reference of attention, on cases like
// the parity test's: forward out and L, and backward dq/dk/dv accumulated onto a random G0 (all
// |got − want| <= 1e-5 + 1e-4·|want|). Exits 1 when a case fails.
#include <cstdio>
#include <random>
#include <vector>
#include "cuda/attention_paths.h"

using namespace lowrank;
using autograd::detail::AttnDims;
using autograd::detail::AttnGrads;
using autograd::detail::Operand;

struct Case {
  int64_t B, Tq, Tk, NH, hs;
  bool causal, fused;
  std::vector<int32_t> klen;
};

static double worst = 0;
static bool check(const char* what, const std::vector<float>& got, const std::vector<double>& want, double tol) {
  double w = 0;
  size_t at = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    double e = std::fabs(got[i] - want[i]) / (1e-5 + 1e-4 * std::fabs(want[i]));
    if (!(e <= w)) {
      w = e;
      at = i;
    }
  }
  worst = std::max(worst, w);
  if (!(w <= tol)) {
    std::printf("  FAIL %s: worst %.3g at %zu got %g want %g\n", what, w, at, got[at], want[at]);
    return false;
  }
  return true;
}

static bool run(const Case& c) {
  const int64_t C = c.NH * c.hs, T3 = 3 * C;
  std::mt19937 rng(7);
  std::normal_distribution<float> nd;
  auto rnd = [&](size_t n) {
    std::vector<float> x(n);
    for (float& v : x) v = nd(rng);
    return x;
  };
  std::vector<float> qkv, qb, kb, vb;
  Operand q, k, v;
  if (c.fused) {
    qkv = rnd(c.B * c.Tq * T3);
    q = {qkv.data(), c.Tq * T3, T3};
    k = {qkv.data() + C, c.Tq * T3, T3};
    v = {qkv.data() + 2 * C, c.Tq * T3, T3};
  } else {
    qb = rnd(c.B * c.Tq * C);
    kb = rnd(c.B * c.Tk * C);
    vb = rnd(c.B * c.Tk * C);
    q = {qb.data(), c.Tq * C, C};
    k = {kb.data(), c.Tk * C, C};
    v = {vb.data(), c.Tk * C, C};
  }
  AttnDims d;
  d.B = c.B;
  d.Tq = c.Tq;
  d.Tk = c.Tk;
  d.C = C;
  d.NH = c.NH;
  d.hs = c.hs;
  d.causal = c.causal;
  d.scale = 1.f / std::sqrt(float(c.hs));
  d.key_len = c.klen.empty() ? nullptr : c.klen.data();
  auto at = [&](const Operand& o, int64_t b, int64_t t, int64_t ch) { return double(o.p[b * o.sb + t * o.st + ch]); };
  // reference
  std::vector<double> out(c.B * c.Tq * C), L(c.B * c.NH * c.Tq), dq(c.B * c.Tq * C, 0), dk(c.B * c.Tk * C, 0),
      dv(dk.size(), 0);
  std::vector<float> dO = rnd(c.B * c.Tq * C);
  for (int64_t b = 0; b < c.B; ++b)
    for (int64_t h = 0; h < c.NH; ++h)
      for (int64_t i = 0; i < c.Tq; ++i) {
        int64_t n = c.causal ? i + c.Tk - c.Tq + 1 : c.Tk;
        if (d.key_len) n = std::min<int64_t>(n, d.key_len[b]);
        std::vector<double> p(n), dp(n);
        double mx = -1e300, sum = 0;
        for (int64_t j = 0; j < n; ++j) {
          double s = 0;
          for (int64_t x = 0; x < c.hs; ++x) s += at(q, b, i, h * c.hs + x) * at(k, b, j, h * c.hs + x);
          p[j] = s * d.scale;
          mx = std::max(mx, p[j]);
        }
        for (auto& x : p) sum += (x = std::exp(x - mx));
        for (auto& x : p) x /= sum;
        L[(b * c.NH + h) * c.Tq + i] = mx + std::log(sum);
        const int64_t orow = (b * c.Tq + i) * C + h * c.hs;
        double Dsum = 0;
        for (int64_t j = 0; j < n; ++j) {
          double s = 0;
          for (int64_t x = 0; x < c.hs; ++x) s += dO[orow + x] * at(v, b, j, h * c.hs + x);
          dp[j] = s;
          Dsum += p[j] * s;
        }
        for (int64_t x = 0; x < c.hs; ++x) {
          double o = 0;
          for (int64_t j = 0; j < n; ++j) o += p[j] * at(v, b, j, h * c.hs + x);
          out[orow + x] = o;
        }
        for (int64_t j = 0; j < n; ++j) {
          const double ds = p[j] * (dp[j] - Dsum);
          const int64_t krow = (b * c.Tk + j) * C + h * c.hs;
          for (int64_t x = 0; x < c.hs; ++x) {
            dv[krow + x] += p[j] * dO[orow + x];
            dq[orow + x] += d.scale * ds * at(k, b, j, h * c.hs + x);
            dk[krow + x] += d.scale * ds * at(q, b, i, h * c.hs + x);
          }
        }
      }
  // kernels
  std::vector<float> gout(out.size(), NAN), gL(L.size(), NAN);
  cuda::detail::flash_attention_forward(gout.data(), gL.data(), q, k, v, d);
  bool ok = check("out", gout, out, 1) & check("L", gL, L, 1);
  std::vector<float> g0q = rnd(dq.size()), g0k = rnd(dk.size()), g0v = rnd(dv.size());
  std::vector<float> gq = g0q, gk = g0k, gv = g0v;
  for (size_t i = 0; i < dq.size(); ++i) dq[i] += g0q[i];
  for (size_t i = 0; i < dk.size(); ++i) {
    dk[i] += g0k[i];
    dv[i] += g0v[i];
  }
  AttnGrads g;
  g.dq = gq.data();
  g.dk = gk.data();
  g.dv = gv.data();
  g.dout = dO.data();
  g.out = gout.data();
  cuda::detail::flash_attention_backward(g, gL.data(), q, k, v, d);
  ok = check("dq", gq, dq, 1) & check("dk", gk, dk, 1) & check("dv", gv, dv, 1) & ok;
  return ok;
}

int main() {
  const std::vector<Case> cases = {
      {2, 70, 70, 2, 32, true, false, {}},         {2, 70, 70, 2, 64, false, false, {70, 45}},
      {3, 5, 77, 2, 64, true, false, {77, 40, 6}}, {2, 1, 50, 2, 32, true, false, {50, 17}},
      {2, 100, 100, 2, 64, true, true, {100, 33}}, {2, 40, 40, 2, 128, true, true, {}},
      {1, 33, 97, 2, 128, true, false, {}},        {2, 66, 66, 1, 64, false, false, {66, 1}},
      {1, 130, 130, 1, 128, false, false, {}},     {1, 129, 129, 3, 32, true, true, {}},
  };
  int fails = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    std::printf("case %zu: B %ld Tq %ld Tk %ld NH %ld hs %ld causal %d fused %d klen %zu\n", i, c.B, c.Tq, c.Tk, c.NH,
                c.hs, c.causal, c.fused, c.klen.size());
    if (!run(c)) ++fails;
  }
  std::printf("%d of %zu cases failed; worst error/tolerance %.3g\n", fails, cases.size(), worst);
  return fails != 0;
}
