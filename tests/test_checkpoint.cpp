// Model and training checkpoints: save/load round trips, errors for broken or mismatched
// files, bit-exact resume of a training run, and atomic overwrites.
#include <unistd.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "data/text.h"
#include "nn/checkpoint.h"
#include "nn/gpt.h"
#include "optim/adamw.h"
#include "optim/checkpoint.h"
#include "tensor/safetensors.h"
#include "test_util.h"

using namespace lowrank;
using namespace lowrank::testing;
namespace fs = std::filesystem;

namespace {

// Every field away from its default, so that a field the checkpoint loses would show.
nn::GPTConfig ckpt_config() {
  nn::GPTConfig c = tiny_config(31, 8, 16, 2, 2);
  c.name = "ckpt-test";
  c.n_inner = 24;
  c.layer_norm_eps = 1e-6f;
  return c;
}

void check_same_parameters(nn::GPT& a, nn::GPT& b) {
  auto pa = a.named_parameters(), pb = b.named_parameters();
  REQUIRE(pa.size() == pb.size());
  for (size_t i = 0; i < pa.size(); ++i) {
    CAPTURE(pa[i].name);
    REQUIRE(pa[i].name == pb[i].name);
    CHECK(pa[i].tensor.to_vector() == pb[i].tensor.to_vector());  // bit-identical
  }
}

// ---- a tiny training run, seeded per step like examples/train_gpt.cpp ----

constexpr uint64_t kSeed = 4242;
constexpr int64_t kB = 2, kT = 8;

uint64_t step_seed(uint64_t seed, int64_t step, uint64_t stream) {
  return seed * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(step) * 0xBF58476D1CE4E5B9ULL + stream;
}

nn::GPTConfig train_config() {
  nn::GPTConfig c = ckpt_config();
  c.dropout = 0.1f;
  return c;
}

data::LMDataset synthetic_dataset() {
  std::vector<int32_t> tokens;
  Rng rng(77);
  for (int i = 0; i < 400; ++i) tokens.push_back(static_cast<int32_t>((i * 7 + rng.randint(3)) % 31));
  return data::LMDataset(tokens, 0.1f);
}

optim::AdamWConfig adamw_config() {
  optim::AdamWConfig oc;
  oc.lr = 3e-3f;
  oc.beta2 = 0.95f;
  oc.weight_decay = 0.1f;
  return oc;
}

// A step-dependent learning rate, so a resumed run only matches if the step count is restored.
float lr_at(int64_t step) { return 3e-3f * static_cast<float>(step + 1) / 6.f; }

void train_step(nn::GPT& model, optim::AdamW& opt, const data::LMDataset& ds, int64_t step) {
  Rng batch_rng(step_seed(kSeed, step, 1)), drop_rng(step_seed(kSeed, step, 2));
  opt.zero_grad();
  data::LMBatch b = ds.train_batch(kB, kT, batch_rng);
  Tensor loss = autograd::cross_entropy(model.forward(b.inputs, kB, kT, nn::Context{true, &drop_rng}), b.targets);
  autograd::backward(loss);
  optim::clip_grad_norm(model.named_parameters(), 0.5f);
  opt.step(lr_at(step));
}

// Runs steps opt.steps() .. end-1 (the optimizer's step count is the loop's position).
void train_until(nn::GPT& model, optim::AdamW& opt, const data::LMDataset& ds, int64_t end) {
  for (int64_t step = opt.steps(); step < end; ++step) train_step(model, opt, ds, step);
}

}  // namespace

TEST_CASE("checkpoint: save_model + load_model restores parameters, logits and config") {
  TempDir tmp("roundtrip");
  Rng rng(5);
  nn::GPT model(ckpt_config(), rng);
  const std::string path = tmp.file("model.safetensors");
  nn::save_model(path, model, {{"note", "hello"}});

  Rng rng2(6);  // a different init: everything must come from the file
  std::unique_ptr<nn::GPT> loaded = nn::load_model(path, rng2);
  CHECK(nn::config_to_json(loaded->config) == nn::config_to_json(model.config));
  CHECK(loaded->config.name == "ckpt-test");
  CHECK(loaded->config.n_inner == 24);
  CHECK(loaded->config.layer_norm_eps == 1e-6f);
  check_same_parameters(model, *loaded);

  std::vector<int32_t> ids = {1, 2, 3, 30, 4, 5, 6, 0, 9, 9, 8, 7};
  autograd::NoGradGuard no_grad;
  CHECK(model.forward(ids, 2, 6, {}).to_vector() == loaded->forward(ids, 2, 6, {}).to_vector());
  CHECK(load_safetensors(path).metadata.at("note") == "hello");
}

TEST_CASE("checkpoint: a truncated file is an error naming the file") {
  TempDir tmp("truncated");
  Rng rng(5);
  nn::GPT model(ckpt_config(), rng);
  const std::string path = tmp.file("model.safetensors");
  nn::save_model(path, model);
  fs::resize_file(path, fs::file_size(path) - 100);
  std::string err = error_of([&] { nn::load_model(path, rng); });
  CHECK(!err.empty());
  CHECK(contains(err, path));
}

TEST_CASE("checkpoint: loading a different config's tensors names the tensor and both shapes") {
  TempDir tmp("mismatch");
  Rng rng(5);
  nn::GPTConfig wide = ckpt_config();
  wide.n_embd = 24;
  wide.n_head = 3;
  nn::GPT other(wide, rng);
  const std::string path = tmp.file("wide.safetensors");
  nn::save_model(path, other);

  nn::GPT model(ckpt_config(), rng);
  std::string err = error_of([&] { nn::load_state_dict(model, load_safetensors(path).tensors, path); });
  CHECK(contains(err, path));
  CHECK(contains(err, "'wte.weight'"));  // the first parameter in collection order
  CHECK(contains(err, "(31, 24)"));
  CHECK(contains(err, "(31, 16)"));
}

TEST_CASE("checkpoint: a file without 'lowrank.config' metadata is rejected clearly") {
  TempDir tmp("nometa");
  Rng rng(5);
  nn::GPT model(ckpt_config(), rng);
  const std::string path = tmp.file("plain.safetensors");
  save_safetensors(path, nn::state_dict(model));  // tensors only
  std::string err = error_of([&] { nn::load_model(path, rng); });
  CHECK(contains(err, path));
  CHECK(contains(err, "lowrank.config"));
}

TEST_CASE("checkpoint: resuming from a training checkpoint reproduces the uninterrupted run bit for bit") {
  const data::LMDataset ds = synthetic_dataset();

  Rng init_a(kSeed);
  nn::GPT uninterrupted(train_config(), init_a);
  optim::AdamW opt_a(uninterrupted.named_parameters(), adamw_config());
  train_until(uninterrupted, opt_a, ds, 6);
  REQUIRE(opt_a.steps() == 6);

  TempDir tmp("resume");
  const std::string path = tmp.file("train.safetensors");
  {
    Rng init_b(kSeed);
    nn::GPT first_half(train_config(), init_b);
    optim::AdamW opt_b(first_half.named_parameters(), adamw_config());
    train_until(first_half, opt_b, ds, 3);
    optim::save_training(path, first_half, opt_b, {{"run", "resume-test"}});
  }

  Rng init_c(999);  // a fresh model with different weights: all state must come from the file
  nn::GPT resumed(train_config(), init_c);
  optim::AdamW opt_c(resumed.named_parameters(), adamw_config());
  std::map<std::string, std::string> meta = optim::load_training(path, resumed, opt_c);
  CHECK(meta.at("run") == "resume-test");
  REQUIRE(opt_c.steps() == 3);
  train_until(resumed, opt_c, ds, 6);

  check_same_parameters(uninterrupted, resumed);
}

TEST_CASE("checkpoint: load_training rejects a checkpoint of a different config") {
  TempDir tmp("train_mismatch");
  Rng rng(5);
  nn::GPT model(train_config(), rng);
  optim::AdamW opt(model.named_parameters(), adamw_config());
  const std::string path = tmp.file("train.safetensors");
  optim::save_training(path, model, opt, {});

  nn::GPTConfig other_cfg = train_config();
  other_cfg.n_layer = 3;
  nn::GPT other(other_cfg, rng);
  optim::AdamW other_opt(other.named_parameters(), adamw_config());
  std::string err = error_of([&] { optim::load_training(path, other, other_opt); });
  CHECK(contains(err, path));
  CHECK(contains(err, "config"));
  CHECK(contains(err, "\"n_layer\":2"));
  CHECK(contains(err, "\"n_layer\":3"));
}

TEST_CASE("checkpoint: saving over an existing checkpoint leaves only the checkpoint in the folder") {
  TempDir tmp("atomic");
  Rng rng(5);
  nn::GPT model(train_config(), rng);
  optim::AdamW opt(model.named_parameters(), adamw_config());
  const std::string path = tmp.file("ckpt.safetensors");
  nn::save_model(path, model);
  nn::save_model(path, model);
  optim::save_training(path, model, opt, {});
  CHECK(tmp.entries() == std::vector<std::string>{"ckpt.safetensors"});

  Rng rng2(6);
  nn::GPT again(train_config(), rng2);
  optim::AdamW opt2(again.named_parameters(), adamw_config());
  optim::load_training(path, again, opt2);
  check_same_parameters(model, again);
}
