// embedding, a row lookup of a (V, C) table by integer ids (autograd/embedding.cpp): CPU values,
// the scatter-add backward, errors and thread-count independence, then the op on CUDA tensors
// against the CPU op (skipped without a GPU).
#include "tensor/parallel.h"
#include "tests/test_util.h"

#ifdef LOWRANK_HAVE_CUDA
#include "tests/cuda_test_util.h"
#endif

using namespace lowrank;
using namespace lowrank::autograd;
using namespace lowrank::testing;

// ---- CPU ----

namespace {

std::vector<int32_t> random_ids(size_t n, int64_t V, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> ids(n);
  for (int32_t& id : ids) id = static_cast<int32_t>(rng.randint(V));
  return ids;
}

}  // namespace

TEST_CASE("embedding: forward picks rows and appends C to the ids shape") {
  Tensor w = Tensor::from({0, 1, 2, 10, 11, 12, 20, 21, 22, 30, 31, 32}, {4, 3});
  Tensor y = embedding(w, {2, 0, 2, 3}, {2, 2});
  CHECK(y.shape() == Shape{2, 2, 3});
  check_values(y, {20, 21, 22, 0, 1, 2, 20, 21, 22, 30, 31, 32});
}

TEST_CASE("embedding: repeated ids accumulate in backward, gradcheck w.r.t. weight") {
  Tensor w = param({5, 3}, 100);
  backward(sum(embedding(w, {1, 1, 3, 1}, {2, 2})));
  check_values(w.grad(), {0, 0, 0, 3, 3, 3, 0, 0, 0, 1, 1, 1, 0, 0, 0});
  Tensor w2 = param({6, 4}, 101);
  std::vector<int32_t> ids = {0, 5, 5, 2, 0, 1};
  check_grad([&] { return embedding(w2, ids, {2, 3}); }, {w2});
}

TEST_CASE("embedding: errors name the op, the position, the id and V") {
  Tensor w = Tensor::zeros({5, 3});
  std::string e = error_of([&] { embedding(w, {0, 4, 7}, {3}); });
  CHECK(contains(e, "embedding"));
  CHECK(contains(e, "id 7 at position 2"));
  CHECK(contains(e, "V=5"));
  CHECK(contains(error_of([&] { embedding(w, {-1}, {1}); }), "id -1 at position 0"));
  CHECK(contains(error_of([&] { embedding(w, {0, 1, 2}, {2, 2}); }), "3 ids do not fill ids shape (2, 2)"));
}

TEST_CASE("embedding: backward is the same with 1 and 2 threads") {
  Tensor w = param({40, 300}, 102);
  const std::vector<int32_t> ids = random_ids(2000, 40, 103);  // every row repeated ~50 times
  check_same_with_1_and_2_threads([&] { return embedding(w, ids, {2000}); }, {w});
}

// ---- CUDA: the lookup is a copy and the scatter-add sums in the CPU's order: exact (docs/cuda.md) ----
#ifdef LOWRANK_HAVE_CUDA

namespace ag = lowrank::autograd;
using namespace lowrank::cudatest;

namespace {

// The CPU reference: a (50, 70) table looked up by N = 200 ids, shaped (10, 20), so every row is hit
// many times; backward from a random seed.
struct EmbeddingReference {
  static constexpr int64_t V = 50, C = 70, N = 200;
  std::vector<int32_t> ids;
  Tensor weight, seed, y;  // weight.grad() holds the reference scatter-add
};
EmbeddingReference embedding_reference() {
  EmbeddingReference r;
  Rng rng(60);
  for (int64_t n = 0; n < r.N; ++n) r.ids.push_back(static_cast<int32_t>(rng.randint(r.V)));
  r.weight = leaf({r.V, r.C}, 61);
  r.seed = randn({10, 20, r.C}, 62);
  r.y = ag::embedding(r.weight, r.ids, Shape{10, 20});
  ag::backward(r.y, r.seed);
  return r;
}

}  // namespace

TEST_CASE("cuda: embedding op on CUDA tensors: exact rows, and a scatter-add bitwise equal to the CPU") {
  LR_SKIP_WITHOUT_GPU();
  const EmbeddingReference ref = embedding_reference();
  const int64_t V = ref.V, C = ref.C, N = ref.N;
  const std::vector<int32_t>& ids = ref.ids;
  const Tensor &weight = ref.weight, &seed = ref.seed, &y = ref.y;
  for (int run = 0; run < 2; ++run) {  // the same bits every run, and the CPU's bits
    CAPTURE(run);
    Tensor dweight = dleaf(weight);
    Tensor dy = ag::embedding(dweight, ids, Shape{10, 20});
    CHECK(dy.device() == Device::CUDA);
    CHECK((dy.shape() == Shape{10, 20, C}));
    CHECK(dy.to_vector() == y.to_vector());  // a copy: exact
    ag::backward(dy, dev(seed));
    REQUIRE(dweight.grad().defined());
    CHECK(dweight.grad().to_vector() == weight.grad().to_vector());  // sums in the CPU's order
  }
  // A gradient that already holds G0 gets the scatter-add on top (the backward launcher accumulates).
  Tensor g0 = randn({V, C}, 63), dacc = dleaf(weight);
  dacc.set_grad(dev(g0));
  ag::backward(ag::embedding(dacc, ids, Shape{10, 20}), dev(seed));
  expect_close(dacc.grad().to_vector(), plus(g0, weight.grad()), 1e-5, 1e-5, "accumulates");
  // A frozen table (GPT-2's in LoRA) still looks up on the device, recording nothing.
  Tensor frozen = dev(weight);
  Tensor yf = ag::embedding(frozen, ids, Shape{N});
  CHECK(!yf.requires_grad());
  CHECK(yf.to_vector() == y.to_vector());
  CHECK_THROWS_AS(ag::embedding(frozen, {0, static_cast<int32_t>(V)}, Shape{2}), lowrank::Error);  // id out of range
}

#endif  // LOWRANK_HAVE_CUDA
