// AdamW against hand-computed steps, state only for trainable tensors, schedules, clipping.
#include <cmath>

#include "nn/layers.h"
#include "optim/adamw.h"
#include "optim/schedule.h"
#include "test_util.h"

using namespace lowrank;
using namespace lowrank::testing;

namespace {
nn::NamedTensor scalar_param(const char* name, float value, float grad) {
  Tensor p = Tensor::full({1, 1}, value);
  p.requires_grad_(true);
  p.set_grad(Tensor::full({1, 1}, grad));
  return {name, p};
}
}  // namespace

TEST_CASE("adamw: first steps equal the hand-computed update, with and without decay") {
  optim::AdamWConfig cfg;
  cfg.lr = 0.1f;
  auto p = scalar_param("w", 1.f, 0.5f);
  optim::AdamW adam({p}, cfg);
  adam.step();
  // m = 0.05, v = 0.00025; m̂ = 0.5, v̂ = 0.25: update = 0.5 / (0.5 + 1e-8)
  CHECK(p.tensor.item() == doctest::Approx(1.f - 0.1f * 0.5f / (0.5f + 1e-8f)).epsilon(1e-6));
  cfg.weight_decay = 0.1f;
  auto q = scalar_param("w", 1.f, 0.5f);
  optim::AdamW adamw({q}, cfg);
  adamw.step();
  CHECK(q.tensor.item() == doctest::Approx(1.f - 0.1f * (1.f + 0.1f)).epsilon(1e-5));
  // Second step, same gradient: m = 0.095, v = 0.00049975; m̂ = 0.5, v̂ = 0.25 again.
  adam.step();
  CHECK(p.tensor.item() == doctest::Approx(0.8f).epsilon(1e-5));
  CHECK(adam.steps() == 2);
}

TEST_CASE("adam (coupled L2) adds decay to the gradient before the moments") {
  optim::AdamWConfig cfg;
  cfg.lr = 0.1f;
  cfg.weight_decay = 0.5f;
  cfg.decoupled = false;
  auto p = scalar_param("w", 2.f, 0.f);  // g + wd·p = 1: sign-like first step of size lr
  optim::AdamW adam({p}, cfg);
  adam.step();
  CHECK(p.tensor.item() == doctest::Approx(1.9f).epsilon(1e-5));
}

TEST_CASE("adamw: moment buffers exist only for trainable tensors") {
  Rng rng(1);
  nn::Init init{rng};
  nn::Linear frozen(16, 32, true, init), trainable(16, 4, false, init);
  frozen.set_requires_grad(false);
  std::vector<nn::NamedTensor> all = frozen.named_parameters();
  for (auto& p : trainable.named_parameters()) all.push_back(p);
  optim::AdamW adam(all, optim::AdamWConfig{});
  CHECK(adam.num_tensors() == 1);
  CHECK(adam.state_bytes() == 2 * 16 * 4 * sizeof(float));
}

TEST_CASE("adamw: state_dict round trip resumes identically") {
  auto a = scalar_param("w", 1.f, 0.3f), b = scalar_param("w", 1.f, 0.3f);
  optim::AdamW oa({a}, optim::AdamWConfig{}), ob({b}, optim::AdamWConfig{});
  oa.step();
  ob.load_state_dict(oa.state_dict(), oa.steps());
  b.tensor.copy_(a.tensor);
  oa.step();
  ob.step();
  CHECK(a.tensor.item() == b.tensor.item());
  std::map<std::string, Tensor> bad;
  CHECK(error_of([&] { ob.load_state_dict(bad, 1); }).find("tensor 'm.w' missing") != std::string::npos);
}

TEST_CASE("schedule: warmup then cosine or linear decay") {
  optim::Schedule s{1.f, 10, 110, "cosine", 0.f};
  CHECK(s.lr_at(0) == doctest::Approx(0.1f));
  CHECK(s.lr_at(9) == doctest::Approx(1.f));
  CHECK(s.lr_at(60) == doctest::Approx(0.5f));
  CHECK(s.lr_at(110) == doctest::Approx(0.f).epsilon(1e-6));
  optim::Schedule lin{2.f, 0, 100, "linear", 0.f};
  CHECK(lin.lr_at(25) == doctest::Approx(1.5f));
  optim::Schedule bad{1.f, 0, 10, "step", 0.f};
  CHECK(error_of([&] { bad.validate(); }).find("unknown decay 'step'") != std::string::npos);
}

TEST_CASE("clip_grad_norm: scales to the max norm and reports the norm before") {
  auto a = scalar_param("a", 0.f, 3.f), b = scalar_param("b", 0.f, 4.f);
  float n = optim::clip_grad_norm({a, b}, 1.f);
  CHECK(n == doctest::Approx(5.f));
  CHECK(a.tensor.grad().item() == doctest::Approx(0.6f));
  CHECK(b.tensor.grad().item() == doctest::Approx(0.8f));
  CHECK(optim::clip_grad_norm({a, b}, 10.f) == doctest::Approx(1.f));
  CHECK(a.tensor.grad().item() == doctest::Approx(0.6f));
}
