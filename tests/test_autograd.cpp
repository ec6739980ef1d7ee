// The tape itself and the gradient checker, including proof that the checker catches wrong backwards.
#include <chrono>
#include <thread>

#include "autograd/op_util.h"
#include "test_util.h"

using namespace lowrank;
using namespace lowrank::autograd;
using namespace lowrank::testing;

namespace {

// y = x² with a deliberately configurable backward, to show the checker catches mistakes.
enum class Bug { None, WrongFactor, Assigns };
struct SquareOp : Node {
  Tensor x, out;
  Bug bug = Bug::None;
  void backward() override {
    const float* dy = grad_of(out);
    float* dx = grad_sink(x);
    for (int64_t i = 0; i < x.numel(); ++i) {
      float g = (bug == Bug::WrongFactor ? 2.2f : 2.f) * x.data()[i] * dy[i];
      if (bug == Bug::Assigns)
        dx[i] = g;
      else
        dx[i] += g;
    }
  }
  const char* name() const override { return "square"; }
};

Tensor square(const Tensor& x, Bug bug) {
  Tensor out = Tensor::empty(x.shape());
  for (int64_t i = 0; i < x.numel(); ++i) out.data()[i] = x.data()[i] * x.data()[i];
  if (needs_grad({&x})) {
    auto n = std::make_unique<SquareOp>();
    n->x = x;
    n->out = out;
    n->bug = bug;
    record(std::move(n), out);
  }
  return out;
}

// Passes the gradient through unchanged and takes a known time doing it, for the profile test.
struct SlowIdentityOp : Node {
  Tensor x, out;
  void backward() override {
    const float* dy = grad_of(out);
    float* dx = grad_sink(x);
    for (int64_t i = 0; i < x.numel(); ++i) dx[i] += dy[i];
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const char* name() const override { return "slow_identity"; }
};

Tensor slow_identity(const Tensor& x) {
  Tensor out = x.clone();
  auto n = std::make_unique<SlowIdentityOp>();
  n->x = x;
  n->out = out;
  record(std::move(n), out);
  return out;
}

}  // namespace

TEST_CASE("gradcheck: passes a correct backward, fails a wrong factor and a backward that assigns") {
  Tensor x = param({4, 5}, 1);
  CHECK(gradcheck([&] { return square(x, Bug::None); }, {x}).ok);
  GradCheckResult wrong = gradcheck([&] { return square(x, Bug::WrongFactor); }, {x});
  CHECK_FALSE(wrong.ok);
  CHECK(wrong.worst.find("input 0") != std::string::npos);
  CHECK_FALSE(gradcheck([&] { return square(x, Bug::Assigns); }, {x}).ok);
}

TEST_CASE("tape: records only when needed, backward runs in reverse and clears the tape") {
  tape().clear();
  Tensor w = param({3}, 2);
  Tensor c = Tensor::full({3}, 2.f);  // a constant: no grad
  Tensor y = mul(c, c);
  CHECK(tape().size() == 0);
  CHECK_FALSE(y.requires_grad());
  Tensor loss = sum(mul(w, c));
  CHECK(tape().size() == 2);
  backward(loss);
  CHECK(tape().size() == 0);
  check_values(w.grad(), {2, 2, 2});
  CHECK_FALSE(c.grad().defined());
}

TEST_CASE("tape: gradients accumulate across backward calls until zero_grad") {
  Tensor w = param({2}, 3);
  backward(sum(scale(w, 3.f)));
  backward(sum(scale(w, 3.f)));
  check_values(w.grad(), {6, 6});
  std::vector<Tensor> ps{w};
  zero_grad(ps);
  check_values(w.grad(), {0, 0});
}

TEST_CASE("tape: a tensor used twice receives both contributions") {
  Tensor x = param({3}, 4);
  backward(sum(mul(x, x)));
  std::vector<float> xv = x.to_vector(), g = x.grad().to_vector();
  for (int i = 0; i < 3; ++i) CHECK(g[i] == doctest::Approx(2 * xv[i]));
}

TEST_CASE("no-grad scope records nothing and outputs do not require grad") {
  tape().clear();
  Tensor w = param({3}, 5);
  {
    NoGradGuard guard;
    Tensor y = sum(mul(w, w));
    CHECK_FALSE(y.requires_grad());
    CHECK(tape().size() == 0);
  }
  CHECK(grad_enabled());
  CHECK(sum(w).requires_grad());
  tape().clear();
}

TEST_CASE("backward: errors for a non-scalar loss and for a root without grad") {
  Tensor w = param({3}, 6);
  Tensor y = scale(w, 2.f);
  CHECK(error_of([&] { backward(y); }).find("one element, got shape (3,)") != std::string::npos);
  tape().clear();
  Tensor c = Tensor::full({}, 1.f);
  CHECK(error_of([&] { backward(c); }).find("does not require grad") != std::string::npos);
}

namespace {
// Records whether it has been destroyed, and whether the node after it was gone when it ran.
struct ProbeOp : Node {
  Tensor x, out;
  bool* destroyed = nullptr;
  const bool* later_destroyed = nullptr;
  bool* later_was_gone = nullptr;
  void backward() override {
    if (later_destroyed) *later_was_gone = *later_destroyed;
    grad_sink(x);
  }
  ~ProbeOp() override { *destroyed = true; }
  const char* name() const override { return "probe"; }
};
Tensor probe(const Tensor& x, bool* destroyed, const bool* later_destroyed, bool* later_was_gone) {
  Tensor out = x.clone();
  auto n = std::make_unique<ProbeOp>();
  n->x = x;
  n->out = out;
  n->destroyed = destroyed;
  n->later_destroyed = later_destroyed;
  n->later_was_gone = later_was_gone;
  record(std::move(n), out);
  return out;
}
}  // namespace

TEST_CASE("tape: each node is freed right after its backward, so saved activations go early") {
  tape().clear();
  Tensor x = param({4}, 3);
  bool first_gone = false, second_gone = false, second_gone_when_first_ran = false;
  Tensor h = probe(x, &first_gone, &second_gone, &second_gone_when_first_ran);
  Tensor y = probe(h, &second_gone, nullptr, nullptr);
  backward(sum(y));
  CHECK(second_gone_when_first_ran);  // the later node was destroyed before the earlier one ran
  CHECK(first_gone);
  CHECK(tape().size() == 0);
}

TEST_CASE("tape: the profile sums each op's backward time between start and stop, and only there") {
  tape().clear();
  Tensor w = param({3}, 2);
  Tensor c = Tensor::full({3}, 2.f);
  backward(mean(w));  // before start: not timed
  tape().start_profile();
  backward(sum(slow_identity(w)));
  backward(sum(mul(slow_identity(w), c)));
  const std::map<std::string, double> prof = tape().stop_profile();
  backward(mean(w));  // after stop: not timed
  REQUIRE(prof.size() == 3);
  REQUIRE(prof.count("slow_identity") == 1);
  CHECK(prof.at("slow_identity") >= 0.040);  // both 20 ms backward calls, summed under the node's name
  CHECK(prof.count("sum") == 1);
  CHECK(prof.count("mul") == 1);
  CHECK(prof.count("mean") == 0);                          // the passes outside start..stop
  check_values(w.grad(), {11.f / 3, 11.f / 3, 11.f / 3});  // 1/3 + 1 + 2 + 1/3: timing changes no gradient
  tape().start_profile();
  CHECK(tape().stop_profile().empty());  // a new start clears the old table
}
