// Fuzzes model checkpoints (nn/checkpoint.h): nn::load_model on the input as a lowrank checkpoint
// file, and nn::load_state_dict of its tensors into an existing tiny model.
//
// load_model promises: a file that is not a lowrank checkpoint, a 'lowrank.config' that is not
// JSON, has a field of the wrong type or out of its range, or asks for tensors the file does not hold
// (checked before the model is allocated: a few-KB file cannot make it build gigabytes), and a
// missing, extra or mis-shaped tensor are each a lowrank::Error naming the file (and the tensor);
// a model it returns runs. load_state_dict checks every tensor before it copies any, so a failed
// load leaves the caller's model exactly as it was: the harness compares every parameter.
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "nn/checkpoint.h"
#include "nn/gpt.h"

using namespace lowrank;

namespace {

struct Target {
  Rng rng{1};
  nn::GPT model{fuzz::tiny_config(), rng};
  fuzz::Snapshot before{model.named_parameters()};
};

// Two tokens through the loaded model: its tensors and config agree, so nothing reads out of bounds.
void run(nn::GPT& model) {
  const int64_t T = std::min<int64_t>(2, model.config.n_positions);
  if (T < 1 || model.config.vocab_size < 1) return;
  const std::vector<int32_t> ids(T, static_cast<int32_t>(model.config.vocab_size - 1));
  Tensor logits = model.forward(ids, 1, T, nn::Context{});
  if (logits.numel() != T * model.config.vocab_size) fuzz::finding("logits of the wrong size");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Target target;
  const std::string path = fuzz::write_file("model.safetensors", fuzz::as_view(data, size));

  Rng rng(2);
  std::unique_ptr<nn::GPT> model;
  if (fuzz::loads([&] { model = nn::load_model(path, rng); })) {
    try {
      run(*model);
    } catch (const Error& e) {
      fuzz::finding(std::string("a model load_model accepted does not run: ") + e.what());
    }
  }

  SafetensorsFile f;
  if (!fuzz::loads([&] { f = load_safetensors(path); })) return 0;
  if (fuzz::loads([&] { nn::load_state_dict(target.model, f.tensors, path); })) {
    target.before.restore();
  } else if (const std::string name = target.before.changed(); !name.empty()) {
    fuzz::finding("a failed load_state_dict changed parameter '" + name + "'");
  }
  return 0;
}
