// Tensor plumbing and tape seeding with CUDA tensors, against the same calls on CPU tensors:
// fill_/zeros/full, copy_ (on the device and across devices, strided views on either side), add_
// with alpha, contiguous/clone/to, host reads, and backward's seed. Pure data movement must be
// bit-identical; arithmetic (add_) is compared with the tolerances of docs/cuda.md. The optimizer
// and checkpoints are in test_cuda_optim.cpp. Every test skips without a GPU.
#include "test_util.h"

#ifdef LOWRANK_HAVE_CUDA

#include <functional>
#include <sstream>

#include "cuda_test_util.h"

using namespace lowrank;
using namespace lowrank::cudatest;
using lowrank::testing::contains;
using lowrank::testing::error_of;
namespace ag = lowrank::autograd;

namespace {

// A (3, 4, 5) view of a tensor of shape `base`, built the same way over a CPU tensor and over its
// device copy: contiguous, permuted, narrowed (row gaps) and a transposed slice (unit stride first,
// non-zero offset). Every pair of them has the same shape, so any two can meet in copy_/add_.
struct View {
  const char* name;
  Shape base;
  std::function<Tensor(const Tensor&)> of;
};

std::vector<View> views345() {
  return {{"contiguous", {3, 4, 5}, [](const Tensor& t) { return t; }},
          {"permuted",
           {5, 3, 4},
           [](const Tensor& t) {
             return t.permute({1, 2, 0});
           }},
          {"narrowed", {3, 6, 5}, [](const Tensor& t) { return t.narrow(1, 1, 4); }},
          {"transposed slice", {5, 4, 4}, [](const Tensor& t) { return t.transpose(0, 2).narrow(0, 1, 3); }}};
}

// The printed form of a CPU tensor as its CUDA twin prints it.
std::string printed(const Tensor& t) {
  std::ostringstream os;
  os << t;
  return os.str();
}

}  // namespace

TEST_CASE("cuda: zeros and full are made on the device, fill_ matches the CPU on contiguous and strided views") {
  LR_SKIP_WITHOUT_GPU();
  Tensor z = Tensor::zeros({3, 5}, Device::CUDA);
  CHECK(z.device() == Device::CUDA);
  CHECK(z.to_vector() == std::vector<float>(15, 0.f));
  const int64_t n = int64_t(1) << 21;  // more elements than one grid covers: the grid-stride loop wraps
  CHECK(Tensor::full({n}, -2.5f, Device::CUDA).to_vector() == std::vector<float>(n, -2.5f));
  for (float x : Tensor::full({4}, -0.f, Device::CUDA).to_vector()) CHECK(std::signbit(x));  // not a memset
  for (const View& v : views345()) {
    CAPTURE(v.name);
    Tensor cpu = randn(v.base, 10), gpu = dev(cpu);
    v.of(cpu).fill_(7.25f);
    v.of(gpu).fill_(7.25f);
    CHECK(gpu.to_vector() == cpu.to_vector());  // elements outside the view are untouched as well
  }
  Tensor empty = Tensor::empty({0, 3}, Device::CUDA);
  empty.fill_(1.f);
  CHECK(empty.to_vector().empty());
}

TEST_CASE("cuda: copy_ on the device and across devices, with strided views on either side") {
  LR_SKIP_WITHOUT_GPU();
  const std::pair<Device, Device> routes[] = {
      {Device::CUDA, Device::CUDA}, {Device::CPU, Device::CUDA}, {Device::CUDA, Device::CPU}};
  for (auto [to, from] : routes)
    for (const View& dv : views345())
      for (const View& sv : views345()) {
        CAPTURE(tensor::device_name(to));
        CAPTURE(tensor::device_name(from));
        CAPTURE(dv.name);
        CAPTURE(sv.name);
        Tensor dst = randn(dv.base, 20), src = randn(sv.base, 21);
        Tensor want = dst.clone();
        dv.of(want).copy_(sv.of(src));
        Tensor got = dst.to(to);
        dv.of(got).copy_(sv.of(src.to(from)));
        CHECK(got.device() == to);
        CHECK(got.to_vector() == want.to_vector());
      }
  Tensor g = Tensor::zeros({2, 3}, Device::CUDA);
  CHECK(contains(error_of([&] { g.copy_(Tensor::zeros({3, 2})); }), "shape mismatch"));
  CHECK(contains(error_of([&] { g.copy_(Tensor::empty({2, 3}, Device::Meta)); }), "meta"));
}

TEST_CASE("cuda: add_ with alpha matches the CPU on contiguous and strided views, across devices is an error") {
  LR_SKIP_WITHOUT_GPU();
  for (float alpha : {1.f, -0.375f})
    for (const View& dv : views345())
      for (const View& sv : views345()) {
        CAPTURE(alpha);
        CAPTURE(dv.name);
        CAPTURE(sv.name);
        Tensor dst = randn(dv.base, 30), src = randn(sv.base, 31);
        Tensor want = dst.clone();
        dv.of(want).add_(sv.of(src), alpha);
        Tensor got = dev(dst);
        dv.of(got).add_(sv.of(dev(src)), alpha);
        expect_close(got, want, 1e-6, 1e-6, "add_");  // the device may fuse the multiply-add
      }
  Tensor g = Tensor::zeros({2, 3}, Device::CUDA);
  const std::string err = error_of([&] { g.add_(Tensor::zeros({2, 3})); });
  CHECK(contains(err, "different devices"));
  CHECK(contains(err, "cuda"));
  CHECK(contains(err, "cpu"));
}

TEST_CASE("cuda: contiguous, clone and to of strided device views, item, to_vector, printing and set_grad") {
  LR_SKIP_WITHOUT_GPU();
  for (const View& v : views345()) {
    CAPTURE(v.name);
    Tensor base = randn(v.base, 40), gbase = dev(base);
    Tensor cv = v.of(base), gv = v.of(gbase);
    const std::vector<float> want = cv.contiguous().to_vector();
    CHECK(gv.to_vector() == want);  // a direct host read of the view
    Tensor c = gv.contiguous();
    CHECK(c.device() == Device::CUDA);
    CHECK(c.is_contiguous());
    CHECK(c.shares_storage(gbase) == gv.is_contiguous());  // a copy only when needed
    CHECK(c.to_vector() == want);
    Tensor k = gv.clone();
    CHECK(k.device() == Device::CUDA);
    CHECK_FALSE(k.shares_storage(gbase));
    CHECK(k.to_vector() == want);
    Tensor h = gv.to(Device::CPU);
    CHECK(h.device() == Device::CPU);
    CHECK(h.to_vector() == want);
    Tensor up = cv.to(Device::CUDA);  // a strided host view goes up compact
    CHECK(up.device() == Device::CUDA);
    CHECK(up.is_contiguous());
    CHECK(up.to_vector() == want);
    std::string expect = printed(cv);
    expect.replace(expect.find(" cpu ["), 6, " cuda [");
    CHECK(printed(gv) == expect);
    // set_grad stores a compact copy of a strided device gradient
    Tensor p = Tensor::zeros({3, 4, 5}, Device::CUDA);
    p.set_grad(gv);
    CHECK(p.grad().device() == Device::CUDA);
    CHECK(p.grad().is_contiguous());
    CHECK(p.grad().to_vector() == want);
    CHECK(contains(error_of([&] { p.set_grad(cv); }), "set_grad: gradient on cpu"));
  }
  Tensor base = randn({3, 4, 5}, 41), g = dev(base);
  CHECK(g.narrow(0, 1, 1).narrow(1, 2, 1).narrow(2, 3, 1).item() == base.at({1, 2, 3}));
  Tensor big = randn({100}, 42);  // only the first values are downloaded for printing
  std::string expect = printed(big);
  expect.replace(expect.find(" cpu ["), 6, " cuda [");
  CHECK(printed(dev(big)) == expect);
}

TEST_CASE("cuda: backward seeds dloss = 1 on the loss's device, gradients accumulate and zero_grad keeps them") {
  LR_SKIP_WITHOUT_GPU();
  ag::tape().clear();  // the roots below are leaves: nothing else may be left on the tape
  Tensor x = Tensor::full({1}, 3.f, Device::CUDA);
  x.requires_grad_(true);
  ag::backward(x);
  REQUIRE(x.grad().defined());
  CHECK(x.grad().device() == Device::CUDA);
  CHECK(x.grad().item() == 1.f);
  const float* buffer = x.grad().data();
  ag::backward(x);  // the seed is added to the existing gradient
  CHECK(x.grad().item() == 2.f);
  std::vector<Tensor> params{x};
  ag::zero_grad(params);
  CHECK(x.grad().data() == buffer);  // the device allocation is kept
  CHECK(x.grad().item() == 0.f);

  Tensor y = dev(randn({4, 6}, 50)), seed = randn({4, 6}, 51);
  y.requires_grad_(true);
  ag::backward(y, dev(seed).transpose(0, 1).contiguous().transpose(0, 1));  // a strided device seed
  CHECK(y.grad().to_vector() == seed.to_vector());
  CHECK(contains(error_of([&] { ag::backward(y, seed); }), "seed gradient on cpu"));
}

// Needs the device dispatch of sum and mul (autograd/reduce.cpp, autograd/elementwise.cpp).
TEST_CASE("cuda: backward through recorded ops reaches device leaves like on the CPU") {
  LR_SKIP_WITHOUT_GPU();
  Tensor c = leaf({5, 7}, 60), g = dev(c);
  g.requires_grad_(true);
  Tensor lc = ag::sum(ag::mul(c, c));
  ag::backward(lc);  // runs (and clears) the whole tape: the device graph is recorded after it
  Tensor lg = ag::sum(ag::mul(g, g));
  CHECK(lg.device() == Device::CUDA);
  expect_close(lg, lc, 1e-4, 1e-4, "loss");
  ag::backward(lg);
  REQUIRE(g.grad().defined());
  CHECK(g.grad().device() == Device::CUDA);
  expect_close(g.grad(), c.grad(), 1e-5, 1e-6, "d loss / dx = 2x");
}

#endif  // LOWRANK_HAVE_CUDA
