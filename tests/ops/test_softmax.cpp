// softmax and log_softmax over the last dim (autograd/softmax.cpp): CPU values, shift invariance,
// gradient checks, errors and thread-count independence, then the same ops on CUDA tensors against
// the CPU (cudatest::check_on_cuda; skipped without a GPU).
#include "tests/test_util.h"

#ifdef LOWRANK_HAVE_CUDA
#include "tests/cuda_test_util.h"
#endif

using namespace lowrank;
using namespace lowrank::autograd;
using namespace lowrank::testing;

// ---- CPU ----

TEST_CASE("softmax: values, shift invariance, gradients, errors") {
  // exp(1,2,3) / (e + e² + e³)
  check_values(softmax(Tensor::from({1, 2, 3}, {1, 3})), {0.0900306f, 0.2447285f, 0.6652410f});
  // subtracting the row max keeps huge logits finite: same values as (1, 2, 3)
  check_values(softmax(Tensor::from({1001, 1002, 1003}, {3})), {0.0900306f, 0.2447285f, 0.6652410f});
  Tensor x = param({2, 3, 5}, 110);
  check_grad([&] { return softmax(x); }, {x});
  check_grad([&] { return softmax(transpose(x, 1, 2)); }, {x});  // strided input
  std::string e = error_of([&] { softmax(Tensor::full(Shape(), 1.f)); });
  CHECK(contains(e, "softmax: need a non-empty last dim, got ()"));
  CHECK(contains(error_of([&] { softmax(Tensor::zeros({2, 0})); }), "(2, 0)"));
}

TEST_CASE("log_softmax: values, gradients, errors") {
  // log of the softmax above: (1, 2, 3) - log(e + e² + e³)
  check_values(log_softmax(Tensor::from({1, 2, 3, 1001, 1002, 1003}, {2, 3})),
               {-2.4076060f, -1.4076060f, -0.4076060f, -2.4076060f, -1.4076060f, -0.4076060f});
  Tensor x = param({2, 3, 5}, 111);
  check_grad([&] { return log_softmax(x); }, {x});
  check_grad([&] { return log_softmax(slice(x, 2, 1, 3)); }, {x});
  CHECK(contains(error_of([&] {
                   log_softmax(Tensor::zeros({3, 0}));
                 }),
                 "log_softmax: need a non-empty last dim, got (3, 0)"));
}

TEST_CASE("softmax and log_softmax: bit-identical with 1 and 2 threads") {
  Tensor x = param({64, 512}, 140);  // above kParallelGrain
  check_same_with_1_and_2_threads([&] { return softmax(x); }, {x});
  check_same_with_1_and_2_threads([&] { return log_softmax(x); }, {x});
}

// ---- CUDA: softmax 1e-4 relative (docs/cuda.md) ----
#ifdef LOWRANK_HAVE_CUDA

namespace ag = lowrank::autograd;
using namespace lowrank::cudatest;

TEST_CASE("cuda: softmax and log_softmax ops dispatch to the device") {
  LR_SKIP_WITHOUT_GPU();
  for (Shape s : {Shape{7, 1000}, Shape{2, 3, 5}, Shape{4, 1}}) {
    check_on_cuda([](const std::vector<Tensor>& t) { return ag::softmax(t[0]); }, {leaf(s, 60, 3.f)}, kReduce, kReduce,
                  "softmax");
    check_on_cuda([](const std::vector<Tensor>& t) { return ag::log_softmax(t[0]); }, {leaf(s, 61, 3.f)}, kReduce,
                  kReduce, "log_softmax");
  }
  check_on_cuda([](const std::vector<Tensor>& t) { return ag::softmax(ag::transpose(t[0], 0, 1)); },
                {leaf({50, 9}, 62, 3.f)}, kReduce, kReduce, "softmax of a transposed view");
}

#endif  // LOWRANK_HAVE_CUDA
