// matmul, linear, add/sub/mul/scale, sum/mean, reshape/transpose/permute/slice/concat.
#include "tensor/parallel.h"
#include "test_util.h"

using namespace lowrank;
using namespace lowrank::autograd;
using namespace lowrank::testing;

TEST_CASE("matmul: forward values of a 2x3 by 3x2 product") {
  Tensor a = Tensor::from({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = Tensor::from({7, 8, 9, 10, 11, 12}, {3, 2});
  check_values(matmul(a, b), {58, 64, 139, 154});
  check_values(matmul(a, b.transpose(0, 1).contiguous(), false, true), {58, 64, 139, 154});
  check_values(matmul(a.transpose(0, 1).contiguous(), b, true, false), {58, 64, 139, 154});
}

TEST_CASE("matmul: gradients for 2-D, all transposes, batched and a broadcast 2-D weight") {
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      CAPTURE(ta);
      CAPTURE(tb);
      Tensor a = param(ta ? Shape{4, 3} : Shape{3, 4}, 10);
      Tensor b = param(tb ? Shape{5, 4} : Shape{4, 5}, 11);
      check_grad([&] { return matmul(a, b, ta, tb); }, {a, b});
      Tensor ab = param(ta ? Shape{2, 4, 3} : Shape{2, 3, 4}, 12);
      Tensor bb = param(tb ? Shape{2, 5, 4} : Shape{2, 4, 5}, 13);
      check_grad([&] { return matmul(ab, bb, ta, tb); }, {ab, bb});
      check_grad([&] { return matmul(ab, b, ta, tb); }, {ab, b});  // b shared across the batch
    }
  Tensor q = param({2, 2, 3, 4}, 14), k = param({2, 2, 3, 4}, 15);
  check_grad([&] { return matmul(q, k, false, true); }, {q, k});  // 4-D (B,NH,T,hs)·(B,NH,T,hs)ᵀ
}

TEST_CASE("matmul: a strided (transposed) input gets its gradient through the view") {
  Tensor a = param({4, 3}, 16), b = param({4, 5}, 17);
  check_grad([&] { return matmul(transpose(a, 0, 1), b); }, {a, b});
}

TEST_CASE("matmul: shape errors name the op and the shapes") {
  Tensor a = Tensor::zeros({2, 3}), b = Tensor::zeros({4, 5});
  std::string e = error_of([&] { matmul(a, b); });
  CHECK(e.find("matmul") != std::string::npos);
  CHECK(e.find("(2, 3)") != std::string::npos);
  CHECK(e.find("(4, 5)") != std::string::npos);
  CHECK(error_of([&] { matmul(Tensor::zeros({2, 2, 3}), Tensor::zeros({3, 3, 4})); }).find("batch dims differ") !=
        std::string::npos);
}

TEST_CASE("linear: forward equals x·Wᵀ + b; gradients for x, W, b; bias optional") {
  Tensor x = Tensor::from({1, 2, 3, 4}, {2, 2});
  Tensor w = Tensor::from({1, 0, 0, 1, 1, 1}, {3, 2});
  Tensor b = Tensor::from({10, 20, 30}, {3});
  check_values(linear(x, w, b), {11, 22, 33, 13, 24, 37});
  check_values(linear(x, w), {1, 2, 3, 3, 4, 7});
  Tensor xp = param({2, 3, 4}, 20), wp = param({5, 4}, 21), bp = param({5}, 22);
  check_grad([&] { return linear(xp, wp, bp); }, {xp, wp, bp});
  check_grad([&] { return linear(xp, wp); }, {xp, wp});
  CHECK(error_of([&] { linear(xp, Tensor::zeros({5, 3})); }).find("linear: x (2, 3, 4) does not match weight (5, 3)") !=
        std::string::npos);
  CHECK(error_of([&] { linear(xp, wp, Tensor::zeros({4})); }).find("bias (4,)") != std::string::npos);
}

TEST_CASE("linear: a frozen weight gets no gradient buffer") {
  Tensor x = param({3, 4}, 23);
  Rng rng(1);
  Tensor w = Tensor::randn({2, 4}, rng);  // requires_grad off: frozen
  backward(sum(linear(x, w)));
  CHECK(x.grad().defined());
  CHECK_FALSE(w.grad().defined());
}

TEST_CASE("add/sub/mul: values with row broadcast, gradients, and shape errors") {
  Tensor a = Tensor::from({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = Tensor::from({10, 20, 30}, {3});
  check_values(add(a, b), {11, 22, 33, 14, 25, 36});
  check_values(sub(a, b), {-9, -18, -27, -6, -15, -24});
  check_values(mul(a, b), {10, 40, 90, 40, 100, 180});
  check_values(scale(a, -2.f), {-2, -4, -6, -8, -10, -12});
  Tensor x = param({2, 3, 4}, 30), y = param({2, 3, 4}, 31), bias = param({4}, 32), row = param({3, 4}, 33);
  check_grad([&] { return add(x, y); }, {x, y});
  check_grad([&] { return add(x, bias); }, {x, bias});
  check_grad([&] { return sub(x, row); }, {x, row});
  check_grad([&] { return mul(x, y); }, {x, y});
  check_grad([&] { return mul(x, bias); }, {x, bias});
  check_grad([&] { return scale(x, 0.37f); }, {x});
  std::string e = error_of([&] { add(x, Tensor::zeros({3})); });
  CHECK(e.find("add: cannot broadcast (3,) onto (2, 3, 4)") != std::string::npos);
  CHECK(error_of([&] { mul(bias, x); }).find("mul: cannot broadcast") != std::string::npos);
}

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
  CHECK(error_of([&] { concat({x, y}, 0); }).find("concat: shapes (2, 3) and (2, 5) differ outside dim 0") !=
        std::string::npos);
}

TEST_CASE("add_columns: values, gradients for y and every part, errors") {
  Tensor y = Tensor::from({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor p = Tensor::from({10, 20}, {2, 1});
  check_values(add_columns(y, {p}, {2}, 0.5f), {1, 2, 8, 4, 5, 16});
  check_values(add_columns(y, {}, {}, 2.f), {1, 2, 3, 4, 5, 6});
  Tensor Y = param({2, 3, 6}, 70), q = param({2, 3, 2}, 71), v = param({2, 3, 2}, 72);
  check_grad([&] { return add_columns(Y, {q, v}, {0, 4}, 1.7f); }, {Y, q, v});
  Tensor base = param({3, 2, 6}, 73);  // a (2, 3, 6) transposed view of it: gradient through the view
  check_grad([&] { return add_columns(transpose(base, 0, 1), {q}, {3}, -0.5f); }, {base, q});
  CHECK(error_of([&] { add_columns(Y, {q, v}, {0, 1}, 1.f); }).find("overlap") != std::string::npos);
  CHECK(error_of([&] { add_columns(Y, {q}, {5}, 1.f); }).find("does not fit in y (2, 3, 6)") != std::string::npos);
  CHECK(error_of([&] { add_columns(Y, {param({2, 4, 2}, 74)}, {0}, 1.f); }).find("in dim 1") != std::string::npos);
}
