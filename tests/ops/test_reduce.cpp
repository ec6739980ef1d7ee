// sum and mean (autograd/reduce.cpp): CPU values, gradient checks and a thread-count independent sum,
// then the same ops on CUDA tensors against the CPU (cudatest::check_on_cuda; skipped without a GPU).
#include "tensor/parallel.h"
#include "tests/test_util.h"

#ifdef LOWRANK_HAVE_CUDA
#include "tests/cuda_test_util.h"
#endif

using namespace lowrank;
using namespace lowrank::autograd;
using namespace lowrank::testing;

// ---- CPU ----

TEST_CASE("sum/mean: values and gradients") {
  Tensor a = Tensor::from({1, 2, 3, 4}, {2, 2});
  CHECK(sum(a).item() == 10.f);
  CHECK(mean(a).item() == 2.5f);
  CHECK(sum(a).ndim() == 0);
  Tensor x = param({3, 5}, 40);
  check_grad([&] { return sum(x); }, {x});
  check_grad([&] { return mean(x); }, {x});
}

TEST_CASE("sum: the result does not depend on the thread count") {
  Rng rng(9);
  Tensor x = Tensor::randn({1000, 333}, rng);
  tensor::set_num_threads(1);
  float one = sum(x).item();
  tensor::set_num_threads(2);
  float two = sum(x).item();
  tensor::set_num_threads(0);
  CHECK(one == two);
}

// ---- CUDA: reductions 1e-4 relative, their (broadcast) gradients 1e-5 (docs/cuda.md) ----
#ifdef LOWRANK_HAVE_CUDA

namespace ag = lowrank::autograd;
using namespace lowrank::cudatest;

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

#endif  // LOWRANK_HAVE_CUDA
