#include "autograd/gradcheck.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "tensor/error.h"

namespace lowrank::autograd {

namespace {

double project(const Tensor& out, const std::vector<float>& r) {
  std::vector<float> v = out.to_vector();
  double acc = 0.0;
  for (size_t i = 0; i < v.size(); ++i) acc += static_cast<double>(v[i]) * r[i];
  return acc;
}

// Which elements of an input of n values to check: all, or a seeded sample.
std::vector<int64_t> pick(int64_t n, int max, Rng& rng) {
  std::vector<int64_t> idx(static_cast<size_t>(n));
  std::iota(idx.begin(), idx.end(), 0);
  if (n <= max) return idx;
  for (int i = 0; i < max; ++i) std::swap(idx[i], idx[i + rng.randint(n - i)]);
  idx.resize(max);
  return idx;
}

}  // namespace

GradCheckResult gradcheck(const std::function<Tensor()>& f, std::vector<Tensor> inputs, const GradCheckOptions& opt) {
  // LAB 1 begin: gradcheck (tape gradient vs central differences)
  for (const Tensor& x : inputs)
    LR_CHECK(x.is_contiguous() && x.requires_grad() && x.device() == tensor::Device::CPU,
             "gradcheck: inputs must be contiguous CPU leaves with requires_grad, got ", x.shape());
  Rng rng(opt.seed);
  tape().clear();

  // Analytic gradient through the tape, on top of known noise in .grad.
  Tensor out = f();
  Tensor R = Tensor::randn(out.shape(), rng);
  std::vector<Tensor> noise;
  for (Tensor& x : inputs) {
    noise.push_back(Tensor::randn(x.shape(), rng));
    x.set_grad(noise.back().clone());
  }
  backward(out, R);
  std::vector<float> r = R.to_vector();

  GradCheckResult res;
  double worst_ratio = -1.0;
  NoGradGuard no_grad;
  for (size_t k = 0; k < inputs.size(); ++k) {
    Tensor& x = inputs[k];
    std::vector<float> g = x.grad().to_vector();
    std::vector<float> g0 = noise[k].to_vector();
    float* p = x.data();
    for (int64_t i : pick(x.numel(), opt.max_per_input, rng)) {
      const float orig = p[i];
      const float xp = orig + opt.eps, xm = orig - opt.eps;
      p[i] = xp;
      double lp = project(f(), r);
      p[i] = xm;
      double lm = project(f(), r);
      p[i] = orig;
      double numeric = (lp - lm) / (static_cast<double>(xp) - xm);
      double analytic = static_cast<double>(g[i]) - g0[i];
      double err = std::fabs(analytic - numeric);
      double tol = opt.atol + opt.rtol * std::max(std::fabs(analytic), std::fabs(numeric));
      ++res.checked;
      res.max_abs_err = std::max(res.max_abs_err, err);
      if (err / tol > worst_ratio) {  // remember the element closest to (or furthest past) its tolerance
        worst_ratio = err / tol;
        res.worst = cat("input ", k, " ", x.shape(), " [", i, "]: analytic ", analytic, " numeric ", numeric);
      }
      if (err > tol) res.ok = false;
    }
  }
  return res;
  // LAB 1 end
}

}  // namespace lowrank::autograd
