// The device dispatch of the basic autograd ops (elementwise, add_columns, activations, reductions,
// views, softmax, matmul, linear): each op runs through the public autograd API on CUDA tensors and
// on the same CPU tensors, and the outputs and every input gradient (via autograd::backward from
// one random seed) are compared. Gradients start from the same random G0 on both sides, so the
// device backward must accumulate like the CPU one. Tolerances as in docs/cuda.md: elementwise and
// activations 1e-5 relative, reductions and softmax 1e-4, GEMMs 1e-3 (TF32 off), pure data movement
// (views, concat) within float rounding of one add. Every test skips when no GPU is present.
#include "test_util.h"

#ifdef LOWRANK_HAVE_CUDA

#include <functional>
#include <string>

#include "cuda_test_util.h"

using namespace lowrank;
namespace ag = lowrank::autograd;

using namespace lowrank::cudatest;

namespace {

using OpFn = std::function<Tensor(const std::vector<Tensor>&)>;

struct Tol {
  double rtol, atol;
};

// f on the CPU tensors `xs` and on CUDA copies of them; compares f's output and, for each input that
// requires grad, its accumulated gradient. `what` names the case in failure messages.
void check_on_cuda(const OpFn& f, std::vector<Tensor> xs, Tol fwd, Tol bwd, const std::string& what) {
  INFO(what);
  std::vector<Tensor> ds;
  for (size_t i = 0; i < xs.size(); ++i) {
    Tensor d = dev(xs[i]);
    if (xs[i].requires_grad()) {
      Tensor g0 = randn(xs[i].shape(), 500 + i);
      xs[i].set_grad(g0.clone());
      d.requires_grad_(true);
      d.set_grad(dev(g0));
    }
    ds.push_back(d);
  }
  // One pass per device: the tape is shared and backward() clears all of it, so recording both
  // forwards before the first backward would drop the device nodes unrun.
  Tensor y = f(xs);
  Tensor seed = randn(y.shape(), 600);
  ag::backward(y, seed);
  Tensor dy = f(ds);
  REQUIRE(dy.device() == Device::CUDA);
  REQUIRE(dy.shape() == y.shape());
  expect_close(dy, y, fwd.rtol, fwd.atol, (what + ": forward").c_str());
  ag::backward(dy, dev(seed));
  for (size_t i = 0; i < xs.size(); ++i) {
    if (!xs[i].requires_grad()) {
      CHECK_FALSE(ds[i].grad().defined());  // frozen inputs get no gradient buffer on the device either
      continue;
    }
    REQUIRE(ds[i].grad().device() == Device::CUDA);
    const std::string name = what + ": grad of input " + std::to_string(i);
    expect_close(ds[i].grad(), xs[i].grad(), bwd.rtol, bwd.atol, name.c_str());
  }
}

const Tol kElementwise{1e-5, 1e-6}, kReduce{1e-4, 1e-5}, kGemm{1e-3, 1e-3}, kCopy{1e-6, 1e-7};
// The CPU's GELU uses tensor::fast_tanh (absolute error ~1e-7; tanhf on the device), which the
// gradient multiplies by up to |x|·k(1 + 3a·x²): an absolute floor of 1e-5.
const Tol kGeluGrad{1e-5, 1e-5};

}  // namespace

TEST_CASE("cuda: add, sub, mul (same shape, bias row, strided input) and scale dispatch to the device") {
  LR_SKIP_WITHOUT_GPU();
  const std::vector<OpFn> binaries = {
      [](const std::vector<Tensor>& t) { return ag::add(t[0], t[1]); },
      [](const std::vector<Tensor>& t) { return ag::sub(t[0], t[1]); },
      [](const std::vector<Tensor>& t) { return ag::mul(t[0], t[1]); },
  };
  for (size_t k = 0; k < binaries.size(); ++k) {
    const std::string name = std::string(k == 0 ? "add" : k == 1 ? "sub" : "mul");
    check_on_cuda(binaries[k], {leaf({3, 5, 37}, 1), leaf({3, 5, 37}, 2)}, kElementwise, kElementwise, name);
    check_on_cuda(binaries[k], {leaf({3, 5, 37}, 3), leaf({37}, 4)}, kElementwise, {1e-5, 1e-5}, name + " bias row");
    check_on_cuda(binaries[k], {leaf({4, 37}, 5), randn({37}, 6)}, kElementwise, kElementwise, name + " frozen b");
  }
  // a strided a (a transposed view is made contiguous by a recorded copy on the device)
  check_on_cuda([](const std::vector<Tensor>& t) { return ag::add(ag::transpose(t[0], 0, 1), t[1]); },
                {leaf({37, 6}, 7), leaf({37}, 8)}, kElementwise, {1e-5, 1e-5}, "add of a transposed view");
  check_on_cuda([](const std::vector<Tensor>& t) { return ag::scale(t[0], -1.5f); }, {leaf({1000}, 9)},
                kElementwise, kElementwise, "scale");
}

TEST_CASE("cuda: add_columns on a fused-qkv-shaped tensor (LoRA's q and v updates)") {
  LR_SKIP_WITHOUT_GPU();
  const int64_t B = 2, T = 7, C = 24;
  const OpFn qv = [C](const std::vector<Tensor>& t) { return ag::add_columns(t[0], {t[1], t[2]}, {0, 2 * C}, 0.5f); };
  check_on_cuda(qv, {leaf({B, T, 3 * C}, 10), leaf({B, T, C}, 11), leaf({B, T, C}, 12)}, kElementwise, kElementwise,
                "add_columns q and v");
  // frozen y (the base model's output under LoRA) and one frozen part
  check_on_cuda(qv, {randn({B, T, 3 * C}, 13), leaf({B, T, C}, 14), randn({B, T, C}, 15)}, kElementwise, kElementwise,
                "add_columns frozen y");
  // a strided part: a slice of a wider tensor, made contiguous on the device
  check_on_cuda(
      [C](const std::vector<Tensor>& t) { return ag::add_columns(t[0], {ag::slice(t[1], 2, 1, C)}, {C}, -2.f); },
      {leaf({B, T, 3 * C}, 16), leaf({B, T, C + 3}, 17)}, kElementwise, kElementwise, "add_columns strided part");
}

TEST_CASE("cuda: gelu, relu, tanh ops dispatch to the device") {
  LR_SKIP_WITHOUT_GPU();
  const std::vector<OpFn> acts = {
      [](const std::vector<Tensor>& t) { return ag::gelu(t[0]); },
      [](const std::vector<Tensor>& t) { return ag::relu(t[0]); },
      [](const std::vector<Tensor>& t) { return ag::tanh(t[0]); },
  };
  for (size_t k = 0; k < acts.size(); ++k) {
    const std::string name = k == 0 ? "gelu" : k == 1 ? "relu" : "tanh";
    check_on_cuda(acts[k], {leaf({5000}, 20, 2.f)}, kElementwise, k == 0 ? kGeluGrad : kElementwise, name);
  }
  check_on_cuda([](const std::vector<Tensor>& t) { return ag::gelu(ag::transpose(t[0], 0, 1)); },
                {leaf({30, 40}, 21, 2.f)}, kElementwise, kGeluGrad, "gelu of a transposed view");
}

TEST_CASE("cuda: sum and mean ops keep the result on the device") {
  LR_SKIP_WITHOUT_GPU();
  for (int64_t n : {int64_t(1), int64_t(1000), int64_t(300000)}) {
    check_on_cuda([](const std::vector<Tensor>& t) { return ag::sum(t[0]); }, {leaf({n}, 30)}, kReduce, kElementwise,
                  "sum n = " + std::to_string(n));
    check_on_cuda([](const std::vector<Tensor>& t) { return ag::mean(t[0]); }, {leaf({n}, 31)}, kReduce, kElementwise,
                  "mean n = " + std::to_string(n));
  }
  check_on_cuda([](const std::vector<Tensor>& t) { return ag::mean(ag::slice(t[0], 1, 2, 5)); }, {leaf({9, 11}, 32)},
                kReduce, kElementwise, "mean of a slice");
  Tensor y = ag::sum(dev(randn({10}, 33)));
  CHECK(y.device() == Device::CUDA);
  CHECK(y.shape() == Shape());
}

TEST_CASE("cuda: reshape, transpose, permute, slice and concat backward on device gradients") {
  LR_SKIP_WITHOUT_GPU();
  // Each view is followed by mul with a random tensor so the gradient reaching it is not uniform.
  check_on_cuda([](const std::vector<Tensor>& t) { return ag::mul(ag::reshape(t[0], {6, 20}), t[1]); },
                {leaf({2, 3, 20}, 40), leaf({6, 20}, 41)}, kCopy, kElementwise, "reshape (a view)");
  check_on_cuda(
      [](const std::vector<Tensor>& t) { return ag::mul(ag::reshape(ag::transpose(t[0], 0, 2), {20, 6}), t[1]); },
      {leaf({2, 3, 20}, 42), leaf({20, 6}, 43)}, kCopy, kElementwise, "reshape of a transpose (a copy)");
  check_on_cuda([](const std::vector<Tensor>& t) { return ag::mul(ag::permute(t[0], {2, 0, 1}), t[1]); },
                {leaf({2, 3, 20}, 44), leaf({20, 2, 3}, 45)}, kCopy, kElementwise, "permute");
  // Two overlapping slices of one input: their gradients add into the same buffer.
  check_on_cuda(
      [](const std::vector<Tensor>& t) {
        return ag::add(ag::mul(ag::slice(t[0], 1, 0, 8), t[1]), ag::slice(t[0], 1, 4, 8));
      },
      {leaf({5, 12}, 46), leaf({5, 8}, 47)}, kCopy, kElementwise, "slices");
  for (int dim : {0, 1, -1}) {
    check_on_cuda(
        [dim](const std::vector<Tensor>& t) {
          return ag::mul(ag::concat({t[0], ag::transpose(t[1], 1, 2), t[2]}, dim), t[3]);
        },
        {leaf({4, 6, 8}, 48), leaf({4, 8, 6}, 49), randn({4, 6, 8}, 50),
         leaf(dim == 0 ? Shape{12, 6, 8} : dim == 1 ? Shape{4, 18, 8} : Shape{4, 6, 24}, 51)},
        kCopy, kElementwise, "concat dim " + std::to_string(dim));
  }
}

TEST_CASE("cuda: softmax and log_softmax ops dispatch to the device") {
  LR_SKIP_WITHOUT_GPU();
  for (Shape s : {Shape{7, 1000}, Shape{2, 3, 5}, Shape{4, 1}}) {
    check_on_cuda([](const std::vector<Tensor>& t) { return ag::softmax(t[0]); }, {leaf(s, 60, 3.f)}, kReduce,
                  kReduce, "softmax");
    check_on_cuda([](const std::vector<Tensor>& t) { return ag::log_softmax(t[0]); }, {leaf(s, 61, 3.f)}, kReduce,
                  kReduce, "log_softmax");
  }
  check_on_cuda([](const std::vector<Tensor>& t) { return ag::softmax(ag::transpose(t[0], 0, 1)); },
                {leaf({50, 9}, 62, 3.f)}, kReduce, kReduce, "softmax of a transposed view");
}

TEST_CASE("cuda: matmul, plain (every transpose), broadcast (folded and not) and batched") {
  LR_SKIP_WITHOUT_GPU();
  cuda::set_tf32(false);
  const int64_t M = 13, K = 29, N = 17;
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb)
      check_on_cuda([ta, tb](const std::vector<Tensor>& t) { return ag::matmul(t[0], t[1], ta, tb); },
                    {leaf(ta ? Shape{K, M} : Shape{M, K}, 70), leaf(tb ? Shape{N, K} : Shape{K, N}, 71)}, kGemm,
                    kGemm, "matmul 2-D ta " + std::to_string(ta) + " tb " + std::to_string(tb));
  // b (K, N) shared by a (3, 4, M, K): the batch folds into M (one GEMM per direction)
  for (int tb = 0; tb < 2; ++tb)
    check_on_cuda([tb](const std::vector<Tensor>& t) { return ag::matmul(t[0], t[1], false, tb); },
                  {leaf({3, 4, M, K}, 72), leaf(tb ? Shape{N, K} : Shape{K, N}, 73)}, kGemm, kGemm,
                  "matmul broadcast folded tb " + std::to_string(tb));
  // a transposed with a shared b: no fold; b's gradient sums over the batch (ordered single GEMMs)
  for (int tb = 0; tb < 2; ++tb)
    check_on_cuda([tb](const std::vector<Tensor>& t) { return ag::matmul(t[0], t[1], true, tb); },
                  {leaf({5, K, M}, 74), leaf(tb ? Shape{N, K} : Shape{K, N}, 75)}, kGemm, kGemm,
                  "matmul broadcast unfolded tb " + std::to_string(tb));
  // batched (B, NH, T, hs): attention-shaped products, every transpose case
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb)
      check_on_cuda([ta, tb](const std::vector<Tensor>& t) { return ag::matmul(t[0], t[1], ta, tb); },
                    {leaf(ta ? Shape{2, 3, K, M} : Shape{2, 3, M, K}, 76),
                     leaf(tb ? Shape{2, 3, N, K} : Shape{2, 3, K, N}, 77)},
                    kGemm, kGemm, "matmul batched ta " + std::to_string(ta) + " tb " + std::to_string(tb));
  // strided operands (views made contiguous on the device) and a frozen b
  check_on_cuda([](const std::vector<Tensor>& t) { return ag::matmul(ag::transpose(t[0], 1, 2), t[1]); },
                {leaf({3, K, M}, 78), randn({3, K, N}, 79)}, kGemm, kGemm, "matmul of a transposed view");
}

TEST_CASE("cuda: linear with and without bias, frozen weight, strided input") {
  LR_SKIP_WITHOUT_GPU();
  cuda::set_tf32(false);
  const int64_t in = 40, out = 24;
  const OpFn with_bias = [](const std::vector<Tensor>& t) { return ag::linear(t[0], t[1], t[2]); };
  const OpFn no_bias = [](const std::vector<Tensor>& t) { return ag::linear(t[0], t[1]); };
  check_on_cuda(with_bias, {leaf({2, 9, in}, 80), leaf({out, in}, 81), leaf({out}, 82)}, kGemm, kGemm,
                "linear with bias");
  check_on_cuda(no_bias, {leaf({2, 9, in}, 83), leaf({out, in}, 84)}, kGemm, kGemm, "linear without bias");
  // LoRA: the pretrained weight and bias are frozen, only x's gradient flows
  check_on_cuda(with_bias, {leaf({18, in}, 85), randn({out, in}, 86), randn({out}, 87)}, kGemm, kGemm,
                "linear frozen weight and bias");
  check_on_cuda([](const std::vector<Tensor>& t) { return ag::linear(ag::slice(t[0], 1, 3, in), t[1], t[2]); },
                {leaf({10, in + 5}, 88), leaf({out, in}, 89), leaf({out}, 90)}, kGemm, kGemm,
                "linear of a strided slice");
  // many rows: the bias gradient is a column sum over N
  check_on_cuda(with_bias, {leaf({700, in}, 91), leaf({out, in}, 92), leaf({out}, 93)}, kGemm, kGemm,
                "linear with 700 rows");
}

TEST_CASE("cuda: ops reject inputs on different devices, naming the op") {
  LR_SKIP_WITHOUT_GPU();
  Tensor c = randn({4, 5}, 95), g = dev(randn({4, 5}, 96));
  CHECK(testing::error_of([&] { ag::add(c, g); }).find("add: inputs on different devices") != std::string::npos);
  CHECK(testing::error_of([&] { ag::matmul(c, g, false, true); }).find("matmul") != std::string::npos);
  CHECK(testing::error_of([&] { ag::linear(g, c); }).find("linear") != std::string::npos);
  CHECK(testing::error_of([&] { ag::concat({c, g}, 0); }).find("concat") != std::string::npos);
  CHECK(testing::error_of([&] { ag::add_columns(g, {c}, {0}, 1.f); }).find("add_columns") != std::string::npos);
}

#endif  // LOWRANK_HAVE_CUDA
