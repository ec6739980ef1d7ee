#pragma once
// Tape-based reverse-mode autograd (micrograd's idea, llm.c's explicitness).
// Ops run eagerly; when any input requires grad, the op pushes one Node onto the tape,
// holding the tensors it saved for backward as named members. backward() walks the tape
// in reverse execution order; each Node reads its output's .grad and ADDS (+=) into its
// inputs' .grad. The tape owns its nodes (a std::vector of unique_ptr): tensors never point
// back at nodes, so there are no reference cycles. The tape is cleared after backward.
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tensor/tensor.h"

namespace lowrank::autograd {

using tensor::Tensor;

struct Node {
  virtual ~Node() = default;
  virtual void backward() = 0;           // out.grad -> inputs' grads (accumulate)
  virtual const char* name() const = 0;  // op name, for errors and tape dumps
};

class Tape {
 public:
  void record(std::unique_ptr<Node> node) { nodes_.push_back(std::move(node)); }
  // Seeds root.grad += droot, runs every node in reverse, then clears the tape.
  void backward(Tensor root, const Tensor& droot);
  void clear() { nodes_.clear(); }
  size_t size() const { return nodes_.size(); }
  const Node& node(size_t i) const { return *nodes_[i]; }
  // Wall seconds of backward() per node name, summed over the backward passes run between start and
  // stop (`bench_step --profile`). CPU timing: on CUDA it would time the launches, not the kernels.
  void start_profile() {
    profile_.clear();
    profiling_ = true;
  }
  std::map<std::string, double> stop_profile() {
    profiling_ = false;
    return std::exchange(profile_, {});
  }

 private:
  std::vector<std::unique_ptr<Node>> nodes_;
  bool profiling_ = false;
  std::map<std::string, double> profile_;
};

Tape& tape();  // the calling thread's tape

// ---- recording control ----
bool grad_enabled();
class NoGradGuard {  // inference scope: ops record nothing while it lives
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

// True when recording is on and any of the inputs requires grad (undefined tensors are ignored).
bool needs_grad(std::initializer_list<const Tensor*> inputs);

// Marks `out` as requiring grad and pushes `node` onto the tape. Ops call it only when needs_grad().
void record(std::unique_ptr<Node> node, Tensor& out);

// ---- entry points ----
void backward(const Tensor& loss);                       // loss has one element: seeds dloss = 1
void backward(const Tensor& root, const Tensor& droot);  // seeds root.grad += droot (same shape)
void zero_grad(std::vector<Tensor>& params);             // sets every existing .grad to 0

}  // namespace lowrank::autograd
