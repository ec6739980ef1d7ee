// reshape, transpose, permute, slice and concat (autograd/views.cpp): CPU gradient checks through
// the views, storage sharing and errors, then the same ops on CUDA tensors against the CPU
// (cudatest::check_on_cuda; skipped without a GPU).
#include "tests/test_util.h"

#ifdef LOWRANK_HAVE_CUDA
#include "tests/cuda_test_util.h"
#endif

using namespace lowrank;
using namespace lowrank::autograd;
using namespace lowrank::testing;

// ---- CPU ----

TEST_CASE("views: reshape, transpose, permute and slice pass gradients back") {
  Tensor x = param({2, 3, 4}, 50);
  check_grad([&] { return reshape(x, {6, 4}); }, {x});
  check_grad([&] { return transpose(x, 0, 2); }, {x});
  check_grad([&] { return permute(x, {1, 2, 0}); }, {x});
  check_grad([&] { return slice(x, -1, 1, 2); }, {x});
  check_grad([&] { return reshape(transpose(x, 1, 2), {2, 12}); }, {x});  // reshape of a strided view copies
  Tensor p = permute(x, {2, 0, 1});
  CHECK(p.shares_storage(x));
  CHECK(p.shape() == Shape{4, 2, 3});
  CHECK(error_of([&] { reshape(x, {5, 5}); }).find("reshape: cannot reshape (2, 3, 4) to (5, 5)") != std::string::npos);
  CHECK(error_of([&] { slice(x, 1, 2, 2); }).find("out of range") != std::string::npos);
}

TEST_CASE("concat: values along the last and first dim, gradients, errors") {
  Tensor a = Tensor::from({1, 2, 3, 4}, {2, 2});
  Tensor b = Tensor::from({5, 6}, {2, 1});
  check_values(concat({a, b}, -1), {1, 2, 5, 3, 4, 6});
  check_values(concat({a, Tensor::from({7, 8}, {1, 2})}, 0), {1, 2, 3, 4, 7, 8});
  Tensor x = param({2, 3}, 60), y = param({2, 5}, 61), z = param({4, 3}, 62);
  check_grad([&] { return concat({x, y}, 1); }, {x, y});
  check_grad([&] { return concat({x, z, x}, 0); }, {x, z});
  CHECK(error_of([&] {
          concat({x, y}, 0);
        }).find("concat: shapes (2, 3) and (2, 5) differ outside dim 0") != std::string::npos);
}

// ---- CUDA: pure data movement, within float rounding of one add (docs/cuda.md) ----
#ifdef LOWRANK_HAVE_CUDA

namespace ag = lowrank::autograd;
using namespace lowrank::cudatest;

TEST_CASE("cuda: reshape, transpose, permute, slice and concat backward on device gradients") {
  LR_SKIP_WITHOUT_GPU();
  // Each view is followed by mul with a random tensor so the gradient reaching it is not uniform.
  check_on_cuda(
      [](const std::vector<Tensor>& t) {
        return ag::mul(ag::reshape(t[0], {6, 20}), t[1]);
      },
      {leaf({2, 3, 20}, 40), leaf({6, 20}, 41)}, kCopy, kElementwise, "reshape (a view)");
  check_on_cuda(
      [](const std::vector<Tensor>& t) {
        return ag::mul(ag::reshape(ag::transpose(t[0], 0, 2), {20, 6}), t[1]);
      },
      {leaf({2, 3, 20}, 42), leaf({20, 6}, 43)}, kCopy, kElementwise, "reshape of a transpose (a copy)");
  check_on_cuda(
      [](const std::vector<Tensor>& t) {
        return ag::mul(ag::permute(t[0], {2, 0, 1}), t[1]);
      },
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
         leaf(dim == 0   ? Shape{12, 6, 8}
              : dim == 1 ? Shape{4, 18, 8}
                         : Shape{4, 6, 24},
              51)},
        kCopy, kElementwise, "concat dim " + std::to_string(dim));
  }
}

#endif  // LOWRANK_HAVE_CUDA
