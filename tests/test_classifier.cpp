// Key-padding in attention, the bidirectional encoder classifier built on it (first-token pooling),
// and the causal GPT classifier (last-token pooling) loaded from a train_gpt checkpoint.
#include "nn/checkpoint.h"
#include "nn/classifier.h"
#include "optim/adamw.h"
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
  CHECK(error_of([&] {
          attention(q, k, v, 2, false, {0, 5});
        }).find("key length 0 outside [1, 5]") != std::string::npos);
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
  CHECK(error_of([&] {
          nn::Classifier m(causal, rng, Device::CPU, nn::Pooling::First);
        }).find("first-token pooling would see only the first token") != std::string::npos);
  nn::GPTConfig no_head = encoder_config();
  no_head.n_classes = 0;
  CHECK(error_of([&] { nn::Classifier m(no_head, rng); }).find("n_classes = 0") != std::string::npos);
  CHECK(error_of([&] { model.forward(ids, 2, 4, {3, 5}, {}); }).find("length 5 outside [1, 4]") != std::string::npos);
}

namespace {
nn::GPTConfig causal_config() {
  nn::GPTConfig c = encoder_config();
  c.causal = true;
  c.n_layer = 2;
  return c;
}
}  // namespace

TEST_CASE("classifier: a causal model pools the last real token, padding after it changes nothing") {
  Rng rng(9);
  nn::Classifier model(causal_config(), rng);
  CHECK(model.pooling == nn::Pooling::Last);
  NoGradGuard ng;
  std::vector<int32_t> ids = {1, 2, 3, 0, 0, 0, 4, 5, 6, 7, 8, 9}, lengths = {3, 6};
  Tensor a = model.forward(ids, 2, 6, lengths, {});
  std::vector<int32_t> repadded = ids;
  repadded[3] = 17;  // padding of sequence 0
  repadded[5] = 11;
  Tensor b = model.forward(repadded, 2, 6, lengths, {});
  for (int j = 0; j < 3; ++j) CHECK(a.at({0, j}) == b.at({0, j}));
  // The same sequence alone, unpadded, gives the same logits (up to GEMM blocking).
  Tensor alone = model.forward({1, 2, 3}, 1, 3, {3}, {});
  for (int j = 0; j < 3; ++j) CHECK(alone.at({0, j}) == doctest::Approx(a.at({0, j})).epsilon(1e-5));
  // The last real token is the one pooled: changing it moves the logits; with first-token pooling
  // of a causal model it would not (position 0 cannot see it).
  std::vector<int32_t> last_changed = ids;
  last_changed[2] = 18;
  Tensor c = model.forward(last_changed, 2, 6, lengths, {});
  bool moved = false;
  for (int j = 0; j < 3; ++j) moved = moved || c.at({0, j}) != a.at({0, j});
  CHECK(moved);
  for (int j = 0; j < 3; ++j) CHECK(c.at({1, j}) == a.at({1, j}));  // the other row is untouched
}

TEST_CASE("classifier: last and mean pooling pass the gradient check, a few AdamW steps lower the loss") {
  for (nn::Pooling pooling : {nn::Pooling::Last, nn::Pooling::Mean}) {
    CAPTURE(static_cast<int>(pooling));
    Rng rng(10);
    nn::Classifier model(causal_config(), rng, Device::CPU, pooling);
    std::vector<int32_t> ids = {1, 2, 3, 0, 4, 5, 6, 7, 9, 9, 0, 0}, lengths = {3, 4, 2}, labels = {2, 0, 1};
    std::vector<Tensor> inputs;
    for (auto& p : model.named_parameters()) inputs.push_back(p.tensor);
    GradCheckOptions opt;
    opt.max_per_input = 6;
    check_grad([&] { return cross_entropy(model.forward(ids, 3, 4, lengths, {}), labels); }, inputs, opt);
    optim::AdamWConfig oc;
    oc.lr = 1e-2f;
    optim::AdamW adam(model.named_parameters(), oc);
    float first = 0.f, last = 0.f;
    for (int step = 0; step < 20; ++step) {
      Tensor loss = cross_entropy(model.forward(ids, 3, 4, lengths, {}), labels);
      (step == 0 ? first : last) = loss.item();
      adam.zero_grad();
      backward(loss);
      adam.step();
    }
    CHECK(last < 0.5f * first);
  }
}

TEST_CASE("classifier: mean pooling averages the real positions only") {
  Rng rng(12);
  nn::Classifier model(causal_config(), rng, Device::CPU, nn::Pooling::Mean);
  NoGradGuard ng;
  std::vector<int32_t> ids = {1, 2, 3, 0, 0, 4, 5, 6, 7, 8}, lengths = {3, 5};
  Tensor a = model.forward(ids, 2, 5, lengths, {});
  std::vector<int32_t> repadded = ids;
  repadded[3] = 17;
  repadded[4] = 11;
  Tensor b = model.forward(repadded, 2, 5, lengths, {});
  for (int j = 0; j < 3; ++j) CHECK(a.at({0, j}) == b.at({0, j}));
  // By hand: the head applied to the average of the encoder's hidden states of the 3 real tokens.
  Tensor h = model.encoder.hidden({1, 2, 3}, 1, 3, {});  // (1,3,C)
  const int64_t C = model.encoder.config.n_embd;
  std::vector<float> avg(static_cast<size_t>(C), 0.f);
  for (int64_t t = 0; t < 3; ++t)
    for (int64_t c = 0; c < C; ++c) avg[static_cast<size_t>(c)] += h.at({0, t, c}) / 3.f;
  Tensor expect = model.out_proj->forward(tanh(model.dense->forward(Tensor::from(avg, {1, C}), {})), {});
  for (int j = 0; j < 3; ++j) CHECK(a.at({0, j}) == doctest::Approx(expect.at({0, j})).epsilon(1e-5));
  CHECK(nn::pooling_by_name("mean") == nn::Pooling::Mean);
  CHECK(error_of([] { nn::pooling_by_name("max"); }).find("unknown pooling 'max'") != std::string::npos);
}

TEST_CASE("classifier: classifier_from_gpt loads a train_gpt checkpoint into the encoder, fresh head") {
  TempDir tmp("clf_from_gpt");
  Rng rng(11);
  nn::GPTConfig cfg = causal_config();
  cfg.n_classes = 0;
  nn::GPT gpt(cfg, rng);
  const std::string path = tmp.file("base.safetensors");
  nn::save_model(path, gpt);
  Rng r1(3), r2(3), r3(4);
  auto clf = nn::classifier_from_gpt(path, 2, r1, 0.25f);
  CHECK(clf->pooling == nn::Pooling::Last);
  CHECK(clf->encoder.config.n_classes == 2);
  CHECK(clf->encoder.config.dropout == 0.25f);
  auto gpt_params = nn::state_dict(gpt);
  for (auto& p : clf->encoder.named_parameters()) {
    CAPTURE(p.name);
    CHECK(p.tensor.to_vector() == gpt_params.at(p.name).to_vector());
  }
  CHECK(clf->named_parameters().back().name == "classifier.out_proj.bias");
  // The head comes from the rng: same seed, same head; another seed, another head.
  auto same = nn::classifier_from_gpt(path, 2, r2), other = nn::classifier_from_gpt(path, 2, r3);
  CHECK(same->dense->weight.to_vector() == clf->dense->weight.to_vector());
  CHECK(other->dense->weight.to_vector() != clf->dense->weight.to_vector());
  // The encoder computes exactly what the GPT computes.
  NoGradGuard ng;
  std::vector<int32_t> ids = {1, 2, 3, 4};
  CHECK(clf->encoder.hidden(ids, 1, 4, {}).to_vector() == gpt.hidden(ids, 1, 4, {}).to_vector());
  const std::string missing = tmp.file("missing.safetensors");
  CHECK(error_of([&] { nn::classifier_from_gpt(missing, 2, r1); }).find("missing.safetensors") != std::string::npos);
}
