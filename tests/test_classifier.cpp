// Key-padding in attention and the bidirectional encoder classifier built on it.
#include "nn/classifier.h"
#include "test_util.h"

using namespace lowrank;
using namespace lowrank::autograd;
using namespace lowrank::testing;

TEST_CASE("attention: keys past key_lengths[b] are invisible (values and gradients)") {
  Tensor q = param({2, 5, 6}, 300), k = param({2, 5, 6}, 301), v = param({2, 5, 6}, 302);
  std::vector<int32_t> len = {3, 5};
  Tensor y = attention(q, k, v, 2, false, len);
  tape().clear();
  Tensor k2 = k.clone(), v2 = v.clone();
  for (int t = 3; t < 5; ++t)
    for (int c = 0; c < 6; ++c) {
      k2.set({0, t, c}, 100.f);  // only sequence 0's padding changes
      v2.set({0, t, c}, -50.f);
    }
  Tensor y2 = attention(q, k2, v2, 2, false, len);
  for (int t = 0; t < 5; ++t)
    for (int c = 0; c < 6; ++c) REQUIRE(y.at({0, t, c}) == y2.at({0, t, c}));
  tape().clear();
  for (bool causal : {false, true}) {
    CAPTURE(causal);
    check_grad([&] { return attention(q, k, v, 2, causal, len); }, {q, k, v});
  }
  CHECK(error_of([&] { attention(q, k, v, 2, false, {3}); }).find("1 key lengths for batch 2") != std::string::npos);
  CHECK(error_of([&] { attention(q, k, v, 2, false, {0, 5}); }).find("key length 0 outside [1, 5]") !=
        std::string::npos);
}

namespace {
nn::GPTConfig encoder_config() {
  nn::GPTConfig c = nn::config_by_name("tiny");
  c.vocab_size = 19;
  c.n_positions = 6;
  c.n_embd = 8;
  c.n_head = 2;
  c.n_layer = 1;
  c.causal = false;
  c.n_classes = 3;
  return c;
}
}  // namespace

TEST_CASE("classifier: logits ignore padding content, first token sees the whole sequence") {
  Rng rng(7);
  nn::Classifier model(encoder_config(), rng);
  NoGradGuard ng;
  std::vector<int32_t> ids = {1, 2, 3, 0, 0, 0, 4, 5, 6, 7, 8, 9}, lengths = {3, 6};
  Tensor a = model.forward(ids, 2, 6, lengths, {});
  CHECK(a.shape() == Shape{2, 3});
  std::vector<int32_t> repadded = ids;
  repadded[3] = 17;
  repadded[5] = 11;
  Tensor b = model.forward(repadded, 2, 6, lengths, {});
  for (int j = 0; j < 3; ++j) CHECK(a.at({0, j}) == b.at({0, j}));
  std::vector<int32_t> last_changed = ids;
  last_changed[8] = 18;  // a valid token after position 0 of sequence 1: bidirectional, so logits move
  Tensor c = model.forward(last_changed, 2, 6, lengths, {});
  bool moved = false;
  for (int j = 0; j < 3; ++j) moved = moved || c.at({1, j}) != a.at({1, j});
  CHECK(moved);
}

TEST_CASE("classifier: gradient check of the classification loss, names and config errors") {
  Rng rng(8);
  nn::Classifier model(encoder_config(), rng);
  std::vector<int32_t> ids = {1, 2, 3, 0, 4, 5, 6, 7}, lengths = {3, 4}, labels = {2, 0};
  std::vector<Tensor> inputs;
  for (auto& p : model.named_parameters()) inputs.push_back(p.tensor);
  CHECK(model.named_parameters().back().name == "classifier.out_proj.bias");
  GradCheckOptions opt;
  opt.max_per_input = 6;
  check_grad([&] { return cross_entropy(model.forward(ids, 2, 4, lengths, {}), labels); }, inputs, opt);
  nn::GPTConfig causal = encoder_config();
  causal.causal = true;
  CHECK(error_of([&] { nn::Classifier m(causal, rng); }).find("needs causal = false") != std::string::npos);
}
