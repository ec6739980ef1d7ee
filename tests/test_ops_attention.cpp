// embedding, dropout, attention.
#include <cmath>

#include "tensor/parallel.h"
#include "test_util.h"

using namespace lowrank;
using namespace lowrank::autograd;
using namespace lowrank::testing;

namespace {

// Attention computed with plain loops in double from the logical elements (works for strided views).
std::vector<double> naive_attention(const Tensor& q, const Tensor& k, const Tensor& v, int NH, bool causal) {
  const int64_t B = q.size(0), Tq = q.size(1), Tk = k.size(1), C = q.size(2), hs = C / NH;
  std::vector<double> out(static_cast<size_t>(B * Tq * C), 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < NH; ++h)
      for (int64_t i = 0; i < Tq; ++i) {
        const int64_t n = causal ? i + (Tk - Tq) + 1 : Tk;  // visible keys [0, n)
        std::vector<double> s(static_cast<size_t>(n));
        double mx = -1e300, sum = 0.0;
        for (int64_t j = 0; j < n; ++j) {
          double dot = 0.0;
          for (int64_t c = h * hs; c < (h + 1) * hs; ++c) dot += double(q.at({b, i, c})) * k.at({b, j, c});
          s[j] = dot / std::sqrt(double(hs));
          mx = std::max(mx, s[j]);
        }
        for (double& x : s) sum += (x = std::exp(x - mx));
        for (int64_t c = h * hs; c < (h + 1) * hs; ++c) {
          double acc = 0.0;
          for (int64_t j = 0; j < n; ++j) acc += s[j] / sum * v.at({b, j, c});
          out[(b * Tq + i) * C + c] = acc;
        }
      }
  return out;
}

void check_close(const Tensor& t, const std::vector<double>& expect, double tol = 1e-5) {
  std::vector<float> got = t.to_vector();
  REQUIRE(got.size() == expect.size());
  double worst = 0.0;
  for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::fabs(got[i] - expect[i]));
  CHECK(worst < tol);
}

std::vector<int32_t> random_ids(size_t n, int64_t V, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> ids(n);
  for (int32_t& id : ids) id = static_cast<int32_t>(rng.randint(V));
  return ids;
}

}  // namespace

// ---- embedding ----

TEST_CASE("embedding: forward picks rows and appends C to the ids shape") {
  Tensor w = Tensor::from({0, 1, 2, 10, 11, 12, 20, 21, 22, 30, 31, 32}, {4, 3});
  Tensor y = embedding(w, {2, 0, 2, 3}, {2, 2});
  CHECK(y.shape() == Shape{2, 2, 3});
  check_values(y, {20, 21, 22, 0, 1, 2, 20, 21, 22, 30, 31, 32});
}

TEST_CASE("embedding: repeated ids accumulate in backward; gradcheck w.r.t. weight") {
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
  std::vector<int32_t> ids = random_ids(2000, 40, 103);
  Rng rng(104);
  Tensor dy = Tensor::randn({2000, 300}, rng);
  std::vector<float> grads[2];
  for (int n : {1, 2}) {
    tensor::set_num_threads(n);
    w.zero_grad();
    backward(embedding(w, ids, {2000}), dy);
    grads[n - 1] = w.grad().to_vector();
  }
  tensor::set_num_threads(0);
  CHECK(grads[0] == grads[1]);
}

// ---- dropout ----

TEST_CASE("dropout: the same seed draws the same mask, another seed another") {
  Tensor x = Tensor::full({1000}, 1.f);
  Rng a(42), b(42), c(43);
  std::vector<float> ya = dropout(x, 0.5f, a).to_vector();
  CHECK(ya == dropout(x, 0.5f, b).to_vector());
  CHECK(ya != dropout(x, 0.5f, c).to_vector());
}

TEST_CASE("dropout: p = 0 and eval mode return x itself and record nothing") {
  Tensor x = param({4, 5}, 110);
  Rng rng(1);
  tape().clear();
  Tensor y0 = dropout(x, 0.f, rng);
  Tensor ye = dropout(x, 0.7f, rng, /*training=*/false);
  CHECK(tape().size() == 0);
  CHECK(y0.slot() == x.slot());
  CHECK(ye.slot() == x.slot());
  CHECK(ye.to_vector() == x.to_vector());
}

TEST_CASE("dropout: keeps about 1-p of 100k elements and scales them by 1/(1-p)") {
  const float p = 0.3f;
  Tensor x = Tensor::full({100000}, 1.f);
  Rng rng(7);
  std::vector<float> y = dropout(x, p, rng).to_vector();
  int64_t kept = 0;
  bool scaled = true;
  for (float v : y) {
    if (v != 0.f) ++kept;
    scaled = scaled && (v == 0.f || v == doctest::Approx(1.0 / (1.0 - p)).epsilon(1e-6));
  }
  CHECK(std::fabs(double(kept) / y.size() - (1.0 - p)) < 0.01);  // std of the fraction is ~0.0015
  CHECK(scaled);
}

TEST_CASE("dropout: gradcheck with the mask redrawn from the same seed; invalid p") {
  Tensor x = param({3, 7}, 111);
  check_grad([&] {
    Rng rng(5);  // re-created each call: every evaluation uses the same mask
    return dropout(x, 0.4f, rng);
  }, {x});
  Rng rng(1);
  CHECK(contains(error_of([&] { dropout(x, 1.f, rng); }), "dropout: p must be in [0, 1), got 1"));
  CHECK(contains(error_of([&] { dropout(x, -0.1f, rng); }), "dropout: p must be in [0, 1)"));
}

// ---- attention ----

TEST_CASE("attention: forward matches a double-precision reference, causal and not, Tq == Tk and Tq < Tk") {
  const int NH = 3;
  for (bool causal : {false, true})
    for (int64_t Tq : {5, 2}) {
      CAPTURE(causal);
      CAPTURE(Tq);
      Rng rng(200 + Tq);
      Tensor q = Tensor::randn({2, Tq, 12}, rng), k = Tensor::randn({2, 5, 12}, rng), v = Tensor::randn({2, 5, 12}, rng);
      Tensor y = attention(q, k, v, NH, causal);
      CHECK(y.shape() == Shape{2, Tq, 12});
      CHECK(y.is_contiguous());
      check_close(y, naive_attention(q, k, v, NH, causal));
    }
}

TEST_CASE("attention: the last Tq queries over all Tk keys equal the last Tq rows of full causal attention") {
  const int64_t T = 7, Tq = 3, C = 8;
  Rng rng(210);
  Tensor q = Tensor::randn({2, T, C}, rng), k = Tensor::randn({2, T, C}, rng), v = Tensor::randn({2, T, C}, rng);
  Tensor full = attention(q, k, v, 2, true);
  Tensor tail = attention(q.narrow(1, T - Tq, Tq), k, v, 2, true);  // strided batch: no copy of q
  std::vector<float> a = full.narrow(1, T - Tq, Tq).to_vector(), b = tail.to_vector();
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) CHECK(a[i] == doctest::Approx(b[i]).epsilon(1e-6).scale(1.0));
}

TEST_CASE("attention: causal outputs at positions <= t ignore k and v at t+1 exactly") {
  const int64_t T = 6, C = 8, t = 2;
  Rng rng(220);
  Tensor q = Tensor::randn({2, T, C}, rng), k = Tensor::randn({2, T, C}, rng), v = Tensor::randn({2, T, C}, rng);
  Tensor before = attention(q, k, v, 2, true);
  Tensor k2 = k.clone(), v2 = v.clone();
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t c = 0; c < C; ++c) {
      k2.set({b, t + 1, c}, 100.f + c);
      v2.set({b, t + 1, c}, -50.f);
    }
  Tensor after = attention(q, k2, v2, 2, true);
  CHECK(before.narrow(1, 0, t + 1).to_vector() == after.narrow(1, 0, t + 1).to_vector());
  CHECK(before.narrow(1, t + 1, 1).to_vector() != after.narrow(1, t + 1, 1).to_vector());
}

TEST_CASE("attention: gradients for q, k, v (Tq == Tk and Tq < Tk)") {
  for (bool causal : {false, true}) {
    CAPTURE(causal);
    Tensor q = param({2, 4, 6}, 230), k = param({2, 4, 6}, 231), v = param({2, 4, 6}, 232);
    check_grad([&] { return attention(q, k, v, 2, causal); }, {q, k, v});
    Tensor qs = param({2, 2, 6}, 233);
    check_grad([&] { return attention(qs, k, v, 2, causal); }, {qs, k, v});
  }
  Tensor x = param({2, 4, 6}, 234);  // self-attention with q = k = v the same tensor
  check_grad([&] { return attention(x, x, x, 3, true); }, {x});
}

TEST_CASE("attention: q, k, v as slices of one fused (B, T, 3C) tensor pass gradients to it") {
  const int64_t C = 6;
  Tensor qkv = param({2, 4, 3 * C}, 240);
  auto f = [&] {
    return attention(slice(qkv, -1, 0, C), slice(qkv, -1, C, C), slice(qkv, -1, 2 * C, C), 2, true);
  };
  Tensor y = f();
  Tensor qc = qkv.narrow(2, 0, C).contiguous(), kc = qkv.narrow(2, C, C).contiguous();
  check_close(y, naive_attention(qc, kc, qkv.narrow(2, 2 * C, C).contiguous(), 2, true));
  tape().clear();
  GradCheckOptions opt;
  opt.max_per_input = 2 * 4 * 3 * C;  // every element
  check_grad(f, {qkv}, opt);
}

TEST_CASE("attention: inference records no node and gives the recorded values") {
  Tensor q = param({2, 5, 8}, 250), k = param({2, 5, 8}, 251), v = param({2, 5, 8}, 252);
  tape().clear();
  Tensor y = attention(q, k, v, 2, true);
  CHECK(tape().size() == 1);
  tape().clear();
  NoGradGuard guard;
  Tensor yi = attention(q, k, v, 2, true);
  CHECK(tape().size() == 0);
  CHECK_FALSE(yi.requires_grad());
  CHECK(y.to_vector() == yi.to_vector());
}

TEST_CASE("attention: shape and stride errors name the op and the shapes") {
  Tensor q = Tensor::zeros({2, 4, 6}), k = Tensor::zeros({2, 4, 6});
  CHECK(contains(error_of([&] { attention(q, k, Tensor::zeros({2, 3, 6}), 2, false); }),
                 "attention: k (2, 4, 6) and v (2, 3, 6) must have the same shape"));
  Tensor k3 = Tensor::zeros({3, 4, 6});
  CHECK(contains(error_of([&] { attention(q, k3, k3, 2, false); }), "attention: q (2, 4, 6) and k (3, 4, 6)"));
  Tensor k8 = Tensor::zeros({2, 4, 8});
  CHECK(contains(error_of([&] { attention(q, k8, k8, 2, false); }), "must have the same B and C"));
  CHECK(contains(error_of([&] { attention(q, k, k, 4, false); }), "C = 6 of q (2, 4, 6) is not divisible by NH = 4"));
  CHECK(contains(error_of([&] { attention(Tensor::zeros({2, 6}), k, k, 2, false); }), "must be (B, T, C)"));
  Tensor k2 = Tensor::zeros({2, 2, 6});
  CHECK(contains(error_of([&] { attention(q, k2, k2, 2, true); }), "causal needs Tq <= Tk"));
  Tensor qt = Tensor::zeros({2, 6, 4}).transpose(1, 2);  // (2, 4, 6) with channel stride 4
  CHECK(contains(error_of([&] { attention(qt, k, k, 2, false); }), "q (2, 4, 6) must have stride 1 in its last dim"));
}

TEST_CASE("attention: forward and gradients are the same with 1 and 2 threads") {
  Tensor qkv = param({2, 64, 96}, 260);
  Rng rng(261);
  Tensor dy = Tensor::randn({2, 64, 32}, rng);
  std::vector<float> outs[2], grads[2];
  for (int n : {1, 2}) {
    tensor::set_num_threads(n);
    qkv.zero_grad();
    Tensor y = attention(slice(qkv, -1, 0, 32), slice(qkv, -1, 32, 32), slice(qkv, -1, 64, 32), 4, true);
    outs[n - 1] = y.to_vector();
    backward(y, dy);
    grads[n - 1] = qkv.grad().to_vector();
  }
  tensor::set_num_threads(0);
  CHECK(outs[0] == outs[1]);
  CHECK(grads[0] == grads[1]);
}
