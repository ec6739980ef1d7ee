#include "autograd/tape.h"

#include <chrono>

#include "tensor/error.h"

namespace lowrank::autograd {

namespace {
thread_local Tape t_tape;
thread_local bool t_grad_enabled = true;
}  // namespace

Tape& tape() { return t_tape; }

void Tape::backward(Tensor root, const Tensor& droot) {
  LR_CHECK(root.requires_grad(), "backward: the root ", root.shape(),
           " does not require grad (no parameter with requires_grad reached it, or it was computed under NoGradGuard)");
  LR_CHECK(droot.shape() == root.shape(), "backward: seed gradient ", droot.shape(), " does not match root ",
           root.shape());
  LR_CHECK(droot.device() == root.device(), "backward: seed gradient on ", tensor::device_name(droot.device()),
           " but the root ", root.shape(), " is on ", tensor::device_name(root.device()));
  // Clear the tape even when a node throws, so stale nodes never run on the next backward.
  struct ClearOnExit {
    Tape& t;
    ~ClearOnExit() { t.clear(); }
  } guard{*this};
  root.grad_or_zeros().add_(droot);
  // A node is destroyed as soon as its backward has run: every consumer of its output ran before
  // it, so the saved activations and gradient buffers only it held go back to the allocator now,
  // not at the end. Activation memory then falls during backward instead of doubling.
  using Clock = std::chrono::steady_clock;
  for (size_t i = nodes_.size(); i-- > 0;) {
    const Clock::time_point t0 = profiling_ ? Clock::now() : Clock::time_point{};
    nodes_[i]->backward();
    if (profiling_) profile_[nodes_[i]->name()] += std::chrono::duration<double>(Clock::now() - t0).count();
    nodes_[i].reset();
  }
}

bool grad_enabled() { return t_grad_enabled; }

NoGradGuard::NoGradGuard() : prev_(t_grad_enabled) { t_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { t_grad_enabled = prev_; }

bool needs_grad(std::initializer_list<const Tensor*> inputs) {
  if (!t_grad_enabled) return false;
  for (const Tensor* t : inputs)
    if (t && t->defined() && t->requires_grad()) return true;
  return false;
}

void record(std::unique_ptr<Node> node, Tensor& out) {
  out.requires_grad_(true);
  t_tape.record(std::move(node));
}

void backward(const Tensor& loss) {
  LR_CHECK(loss.numel() == 1, "backward: loss must have one element, got shape ", loss.shape());
  t_tape.backward(loss, Tensor::full(loss.shape(), 1.f, loss.device()));  // dloss = 1, where the loss lives
}

void backward(const Tensor& root, const Tensor& droot) { t_tape.backward(root, droot); }

void zero_grad(std::vector<Tensor>& params) {
  for (Tensor& p : params) p.zero_grad();
}

}  // namespace lowrank::autograd
