// Device dispatch across ops, which no one op's file (tests/ops/test_<op>.cpp) owns: the ops refuse
// inputs on different devices, naming the op, and a chain of embedding, dropout, layernorm,
// attention and cross_entropy on CUDA tensors matches the same chain on the CPU (each op's values
// and gradients alone are checked in its own file). Tolerances as in docs/cuda.md. Every test skips
// without a GPU.
#include "test_util.h"

#ifdef LOWRANK_HAVE_CUDA

#include <string>

#include "cuda_test_util.h"

using namespace lowrank;
namespace ag = lowrank::autograd;

using namespace lowrank::cudatest;

TEST_CASE("cuda: ops reject inputs on different devices, naming the op") {
  LR_SKIP_WITHOUT_GPU();
  Tensor c = randn({4, 5}, 95), g = dev(randn({4, 5}, 96));
  CHECK(testing::error_of([&] { ag::add(c, g); }).find("add: inputs on different devices") != std::string::npos);
  CHECK(testing::error_of([&] { ag::matmul(c, g, false, true); }).find("matmul") != std::string::npos);
  CHECK(testing::error_of([&] { ag::linear(g, c); }).find("linear") != std::string::npos);
  CHECK(testing::error_of([&] { ag::concat({c, g}, 0); }).find("concat") != std::string::npos);
  CHECK(testing::error_of([&] { ag::add_columns(g, {c}, {0}, 1.f); }).find("add_columns") != std::string::npos);
}

TEST_CASE("cuda: embedding, dropout, layernorm, attention and cross_entropy chained on the device match the CPU") {
  LR_SKIP_WITHOUT_GPU();
  // A toy block: token embedding (V, 3C) -> dropout -> layernorm -> fused q/k/v slices -> causal
  // attention whose (B, T, C) output serves as logits over C = V classes -> cross entropy.
  const int64_t B = 2, T = 9, V = 16, C = V;
  std::vector<int32_t> ids(B * T), targets(B * T);
  Rng rng(100);
  for (size_t i = 0; i < ids.size(); ++i) {
    ids[i] = static_cast<int32_t>(rng.randint(V));
    targets[i] = i % 5 == 4 ? -100 : static_cast<int32_t>(rng.randint(V));
  }
  Tensor wte = leaf({V, 3 * C}, 101), lnw = leaf({3 * C}, 102), lnb = leaf({3 * C}, 103, 0.1f);
  Tensor dwte = dleaf(wte), dlnw = dleaf(lnw), dlnb = dleaf(lnb);
  auto run = [&](const Tensor& emb, const Tensor& w, const Tensor& b) {
    Rng drop(104);  // the same seed on both devices: the same units dropped
    Tensor h = ag::dropout(ag::embedding(emb, ids, Shape{B, T}), 0.1f, drop, true);
    Tensor qkv = ag::layernorm(h, w, b);
    Tensor y = ag::attention(ag::slice(qkv, 2, 0, C), ag::slice(qkv, 2, C, C), ag::slice(qkv, 2, 2 * C, C), 2, true);
    return ag::cross_entropy(y, targets);
  };
  Tensor loss = run(wte, lnw, lnb);
  ag::backward(loss);
  Tensor dloss = run(dwte, dlnw, dlnb);
  CHECK(dloss.device() == Device::CUDA);
  CHECK(dloss.item() == doctest::Approx(loss.item()).epsilon(1e-4));
  ag::backward(dloss);  // seeds dloss = 1 on the device
  expect_grad(dwte, wte, 1e-3, 1e-5, "wte");
  expect_grad(dlnw, lnw, 1e-3, 1e-5, "ln weight");
  expect_grad(dlnb, lnb, 1e-3, 1e-5, "ln bias");
}

#endif  // LOWRANK_HAVE_CUDA
