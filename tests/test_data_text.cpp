// Language-model data: the train/val split, train and val batches, their errors, read_file and
// the unigram baseline.
#include <cmath>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include "data/text.h"
#include "test_util.h"

using namespace lowrank;
using namespace lowrank::testing;

namespace {

// Tokens 0, 1, ..., n-1: a token's value is its position, so windows reveal their offsets.
std::vector<int32_t> iota_tokens(int n) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  std::iota(t.begin(), t.end(), 0);
  return t;
}

}  // namespace

TEST_CASE("data: LMDataset puts the first 90% of the tokens in train and the rest in val") {
  data::LMDataset ds(iota_tokens(100), 0.1f);
  CHECK(ds.train_tokens() == 90);
  CHECK(ds.val_tokens() == 10);
  CHECK(ds.train().front() == 0);
  CHECK(ds.train().back() == 89);

  data::LMDataset quarter(iota_tokens(20), 0.25f);
  CHECK(quarter.train_tokens() == 15);
  CHECK(quarter.val_tokens() == 5);
}

TEST_CASE("data: train_batch targets are the inputs shifted by one, windows inside the train split") {
  data::LMDataset ds(iota_tokens(200), 0.1f);
  const int64_t n_train = static_cast<int64_t>(ds.train_tokens());
  const int64_t B = 6, T = 9;
  Rng rng(3);
  for (int rep = 0; rep < 20; ++rep) {
    data::LMBatch b = ds.train_batch(B, T, rng);
    REQUIRE(b.B == B);
    REQUIRE(b.T == T);
    REQUIRE(b.inputs.size() == static_cast<size_t>(B * T));
    REQUIRE(b.targets.size() == static_cast<size_t>(B * T));
    for (int64_t r = 0; r < B; ++r) {
      const int32_t start = b.inputs[r * T];
      CHECK(start >= 0);
      CHECK(start + T < n_train);  // the last target is a train token too
      for (int64_t t = 0; t < T; ++t) {
        CHECK(b.inputs[r * T + t] == start + t);       // one contiguous window
        CHECK(b.targets[r * T + t] == start + t + 1);  // shifted by one
      }
    }
  }
}

TEST_CASE("data: the same Rng seed gives the same train batch, another seed a different one") {
  data::LMDataset ds(iota_tokens(500), 0.1f);
  Rng a(11), b(11), c(12);
  data::LMBatch ba = ds.train_batch(4, 8, a), bb = ds.train_batch(4, 8, b), bc = ds.train_batch(4, 8, c);
  CHECK(ba.inputs == bb.inputs);
  CHECK(ba.targets == bb.targets);
  CHECK(ba.inputs != bc.inputs);
}

TEST_CASE("data: val_batch is fixed, drawn from val, and batches do not overlap") {
  data::LMDataset ds(iota_tokens(1000), 0.1f);  // val: tokens 900..999
  const int64_t B = 2, T = 8;
  const int64_t n = ds.num_val_batches(B, T);
  CHECK(n == (100 - 1) / (B * T));
  std::set<int32_t> seen;
  for (int64_t i = 0; i < n; ++i) {
    data::LMBatch v = ds.val_batch(i, B, T);
    data::LMBatch again = ds.val_batch(i, B, T);
    CHECK(v.inputs == again.inputs);
    CHECK(v.targets == again.targets);
    for (size_t k = 0; k < v.inputs.size(); ++k) {
      CHECK(v.inputs[k] >= static_cast<int32_t>(ds.train_tokens()));
      CHECK(v.targets[k] == v.inputs[k] + 1);
      CHECK(v.targets[k] < 1000);
      CHECK(seen.insert(v.inputs[k]).second);  // no input token used twice
    }
  }
  CHECK(seen.size() == static_cast<size_t>(n * B * T));
}

TEST_CASE("data: too few tokens for a window is an error naming the counts") {
  data::LMDataset ds(iota_tokens(8), 0.25f);  // 6 train tokens, a window needs T+1 = 9
  REQUIRE(ds.train_tokens() == 6);
  std::string err = error_of([&] {
    Rng rng(1);
    ds.train_batch(1, 8, rng);
  });
  CHECK(contains(err, "too few"));
  CHECK(contains(err, "T=8"));
}

TEST_CASE("data: a batch size or window of 0 or below is an error naming the function and the values") {
  data::LMDataset ds(iota_tokens(100), 0.1f);
  Rng rng(1);
  for (const auto& bt : std::vector<std::pair<int64_t, int64_t>>{{0, 4}, {-1, 4}, {2, 0}, {2, -3}}) {
    CAPTURE(bt.first);
    CAPTURE(bt.second);
    const std::string values = "B=" + std::to_string(bt.first) + " and window T=" + std::to_string(bt.second);
    // num_val_batches divided by B*T: train_gpt --batch-size 0 died of SIGFPE after training
    const std::string err = error_of([&] { ds.num_val_batches(bt.first, bt.second); });
    CHECK(contains(err, "LMDataset::num_val_batches: batch size " + values));
    CHECK(contains(error_of([&] { ds.val_batch(0, bt.first, bt.second); }), "LMDataset::val_batch"));
    CHECK(contains(error_of([&] { ds.train_batch(bt.first, bt.second, rng); }), "LMDataset::train_batch"));
  }
}

TEST_CASE("data: val_fraction outside (0, 1) is an error naming val_fraction") {
  for (float f : {0.f, 1.f, -0.5f, 1.5f}) {
    CAPTURE(f);
    std::string err = error_of([&] { data::LMDataset ds(iota_tokens(100), f); });
    CHECK(contains(err, "val_fraction"));
  }
}

TEST_CASE("data: a validation batch index out of range is an error naming the index and the count") {
  data::LMDataset ds(iota_tokens(100), 0.1f);  // 10 val tokens: (10-1)/(1*4) = 2 batches of 1x4
  REQUIRE(ds.num_val_batches(1, 4) == 2);
  CHECK(error_of([&] { ds.val_batch(1, 1, 4); }).empty());
  std::string err = error_of([&] { ds.val_batch(2, 1, 4); });
  CHECK(contains(err, "validation batch 2 of 2"));
  CHECK(contains(error_of([&] { ds.val_batch(-1, 1, 4); }), "validation batch -1"));
}

TEST_CASE("data: read_file returns the bytes and names a missing path") {
  const std::string fixture = std::string(LOWRANK_SOURCE_DIR) + "/tests/fixtures/tiny_gpt2/config.json";
  CHECK(data::read_file(fixture).find("\"n_embd\": 32") != std::string::npos);
  const std::string missing = "/nonexistent/lowrank/no_such_file.txt";
  std::string err = error_of([&] { data::read_file(missing); });
  CHECK(contains(err, missing));
}

TEST_CASE("data: unigram_baseline is the add-one-smoothed train unigram's cross-entropy on val") {
  // 20 tokens, val_fraction 0.25: train = the first 15, val = the last 5.
  // Train counts of tokens 0..3: 8, 4, 3, 0 -> smoothed 9, 5, 4, 1 over 15 + 4 = 19.
  // The val targets are val[1:] = 0, 1, 3, 2 (the first val token has no prediction).
  std::vector<int32_t> tokens = {0, 0, 1, 0, 2, 0, 1, 0, 0, 2, 1, 0, 1, 2, 0,  // train
                                 3, 0, 1, 3, 2};                               // val
  data::LMDataset ds(tokens, 0.25f);
  REQUIRE(ds.train_tokens() == 15);
  const double expect = -(std::log(9.0 / 19) + std::log(5.0 / 19) + std::log(1.0 / 19) + std::log(4.0 / 19)) / 4.0;
  CHECK(data::unigram_baseline(ds, 4) == doctest::Approx(expect).epsilon(1e-12));
}
