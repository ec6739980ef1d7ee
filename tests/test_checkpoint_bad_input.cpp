// Bad model and training checkpoints (docs/reliability.md): a config that asks for more than the file holds is
// refused before anything is allocated, a bad 'opt.step' is a clear error, and a failed load_training
// leaves the caller's model and optimizer exactly as they were.
#include <map>
#include <string>
#include <vector>

#include "nn/checkpoint.h"
#include "nn/gpt.h"
#include "optim/adamw.h"
#include "optim/checkpoint.h"
#include "tensor/safetensors.h"
#include "tensor/storage.h"
#include "test_util.h"

using namespace lowrank;
using namespace lowrank::testing;

namespace {

nn::GPTConfig small_config() {
  nn::GPTConfig c;
  c.name = "bad-input";
  c.vocab_size = 31;
  c.n_positions = 8;
  c.n_embd = 16;
  c.n_layer = 2;
  c.n_head = 2;
  return c;
}

// Rewrites one metadata entry of a safetensors file, keeping its tensors.
void set_meta(const std::string& path, const std::string& key, const std::string& value) {
  SafetensorsFile f = load_safetensors(path);
  f.metadata[key] = value;
  save_safetensors(path, f.tensors, f.metadata);
}

// A training checkpoint one AdamW step in (moments non-zero).
void write_training(const std::string& path) {
  Rng rng(3);
  nn::GPT model(small_config(), rng);
  optim::AdamW opt(model.named_parameters(), {});
  for (nn::NamedTensor& p : model.named_parameters()) p.tensor.set_grad(Tensor::full(p.tensor.shape(), 0.5f));
  opt.step(1e-2f);
  optim::save_training(path, model, opt, {});
}

std::vector<std::vector<float>> values(const std::map<std::string, Tensor>& ts) {
  std::vector<std::vector<float>> out;
  for (const auto& kv : ts) out.push_back(kv.second.to_vector());
  return out;
}

}  // namespace

TEST_CASE("bad input: load_model checks lowrank.config against the file's tensors before allocating") {
  TempDir tmp("cfg_shapes");
  const std::string path = tmp.file("model.safetensors");
  Rng rng(1);
  nn::GPT model(small_config(), rng);
  nn::save_model(path, model);
  nn::GPTConfig wide = small_config();
  wide.n_embd = 2048;  // ~130 MB of parameters if built, for a file of a few KB
  set_meta(path, "lowrank.config", nn::config_to_json(wide).dump());
  tensor::reset_cpu_bytes_peak();
  const size_t before = tensor::cpu_bytes_in_use();
  const std::string err = error_of([&] { nn::load_model(path, rng); });
  CHECK(contains(err, path));
  CHECK(contains(err, "lowrank.config"));
  CHECK(contains(err, "'wte.weight' of shape (31, 2048)"));
  CHECK(contains(err, "the file has (31, 16)"));
  CHECK(tensor::cpu_bytes_peak() - before < (size_t{4} << 20));  // nothing but the file's own tensors

  wide.n_embd = 1 << 17;  // past the upper bound: refused by validate, naming the file and field
  set_meta(path, "lowrank.config", nn::config_to_json(wide).dump());
  const std::string big = error_of([&] { nn::load_model(path, rng); });
  CHECK(contains(big, path));
  CHECK(contains(big, "n_embd 131072 outside [0, 65536]"));
}

TEST_CASE("bad input: lowrank.config sizes must be JSON integers, not floats cast to int64") {
  TempDir tmp("cfg_types");
  const std::string path = tmp.file("model.safetensors");
  Rng rng(1);
  nn::GPT model(small_config(), rng);
  nn::save_model(path, model);
  // A float used to go through json's cast to int64: 16.5 loaded as 16, 1e300 was undefined behaviour.
  nlohmann::json cfg = nn::config_to_json(small_config());
  for (const std::string bad : {"1e300", "16.5", "\"16\"", "18446744073709551615"}) {
    CAPTURE(bad);
    cfg["n_embd"] = nlohmann::json::parse(bad);
    set_meta(path, "lowrank.config", cfg.dump());
    const std::string err = error_of([&] { nn::load_model(path, rng); });
    CHECK(contains(err, path));
    CHECK(contains(err, "field 'n_embd' is " + cfg["n_embd"].dump() + ", not an integer"));
  }
  set_meta(path, "lowrank.config", "[16]");
  CHECK(contains(error_of([&] { nn::load_model(path, rng); }), "is not a JSON object"));
  set_meta(path, "lowrank.config", nn::config_to_json(small_config()).dump());
  CHECK_NOTHROW(nn::load_model(path, rng));
}

TEST_CASE("bad input: GPTConfig::validate has upper bounds far above every preset") {
  for (const std::string& name : nn::config_names()) CHECK_NOTHROW(nn::config_by_name(name).validate());
  nn::GPTConfig c = small_config();
  c.n_layer = 1 << 20;
  CHECK(contains(error_of([&] { c.validate(); }), "n_layer 1048576 outside"));
  c = small_config();
  c.vocab_size = int64_t{1} << 40;
  CHECK(contains(error_of([&] { c.validate(); }), "vocab_size"));
  c = small_config();
  c.n_inner = -4;
  CHECK(contains(error_of([&] { c.validate(); }), "n_inner -4"));
}

TEST_CASE("bad input: a training checkpoint's opt.step must be a whole non-negative integer") {
  TempDir tmp("opt_step");
  const std::string path = tmp.file("train.safetensors");
  write_training(path);
  for (const std::string bad : {"abc", "99999999999999999999", "-5", "2junk", "", " 3", "+3"}) {
    CAPTURE(bad);
    set_meta(path, "opt.step", bad);
    Rng rng(9);
    nn::GPT model(small_config(), rng);
    optim::AdamW opt(model.named_parameters(), {});
    const std::string err = error_of([&] { optim::load_training(path, model, opt); });
    CHECK(contains(err, path));
    CHECK(contains(err, "'opt.step' is '" + bad + "'"));
  }
  set_meta(path, "opt.step", "7");
  Rng rng(9);
  nn::GPT model(small_config(), rng);
  optim::AdamW opt(model.named_parameters(), {});
  optim::load_training(path, model, opt);
  CHECK(opt.steps() == 7);
}

TEST_CASE("bad input: a failed load_training leaves the model and the optimizer untouched") {
  TempDir tmp("untouched");
  const std::string good = tmp.file("good.safetensors");
  write_training(good);
  const SafetensorsFile f = load_safetensors(good);
  Rng rng(9);
  nn::GPT model(small_config(), rng);
  optim::AdamW opt(model.named_parameters(), {});
  const std::string last = model.named_parameters().back().name;
  struct Case {
    const char* what;
    std::string drop, reshape, step;
  };
  const std::vector<Case> cases = {{"a missing moment", "opt.v." + last, "", "1"},
                                   {"a mis-shaped moment", "", "opt.m." + last, "1"},
                                   {"a mis-shaped last parameter", "", last, "1"},
                                   {"a bad step", "", "", "-5"}};
  const auto params = values(nn::state_dict(model));
  const auto state = values(opt.state_dict());
  for (const Case& c : cases) {
    CAPTURE(c.what);
    std::map<std::string, Tensor> ts = f.tensors;
    if (!c.drop.empty()) ts.erase(c.drop);
    if (!c.reshape.empty()) ts[c.reshape] = Tensor::zeros({3});
    std::map<std::string, std::string> meta = f.metadata;
    meta["opt.step"] = c.step;
    const std::string path = tmp.file("bad.safetensors");
    save_safetensors(path, ts, meta);
    CHECK(contains(error_of([&] { optim::load_training(path, model, opt); }), path));
    CHECK(values(nn::state_dict(model)) == params);
    CHECK(values(opt.state_dict()) == state);
    CHECK(opt.steps() == 0);
  }
  optim::load_training(good, model, opt);  // the good file still loads into the same objects
  CHECK(opt.steps() == 1);
  CHECK(values(nn::state_dict(model)) != params);
}
