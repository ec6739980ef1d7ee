// Fuzzes training checkpoints (optim/checkpoint.h): optim::load_training of the input into a tiny
// GPT and its AdamW, the resume path of every training run.
//
// load_training promises: a config other than the run's, a missing or mis-shaped parameter or
// moment ("opt.m.<name>", "opt.v.<name>"), an extra tensor, and an 'opt.step' that is not a whole
// non-negative decimal ("abc", "-5", "2junk") are each a lowrank::Error naming the file; everything is
// checked before anything is copied, so after an error the model's parameters, the optimizer's
// moments and its step are exactly what they were. The harness compares all three after every
// failed load, and restores them after a successful one.
#include <string>

#include "fuzz_util.h"
#include "nn/gpt.h"
#include "optim/adamw.h"
#include "optim/checkpoint.h"

using namespace lowrank;

namespace {

std::vector<nn::NamedTensor> moments(const optim::AdamW& opt) {
  std::vector<nn::NamedTensor> out;
  for (const auto& kv : opt.state_dict()) out.push_back({"opt." + kv.first, kv.second});
  return out;
}

int64_t one_step(nn::GPT& model, optim::AdamW& opt) {
  for (nn::NamedTensor& p : model.named_parameters()) p.tensor.set_grad(Tensor::full(p.tensor.shape(), 0.25f));
  opt.step(1e-2f);
  return opt.steps();
}

// A model and optimizer one AdamW step in (moments and step non-zero, as in a real resume). Members
// are initialised in this order, so the snapshots are taken after the step.
struct Target {
  Rng rng{1};
  nn::GPT model{fuzz::tiny_config(), rng};
  optim::AdamW opt{model.named_parameters(), optim::AdamWConfig{}};
  int64_t step = one_step(model, opt);
  fuzz::Snapshot params{model.named_parameters()};
  fuzz::Snapshot state{moments(opt)};
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Target t;
  const std::string path = fuzz::write_file("train.safetensors", fuzz::as_view(data, size));
  if (fuzz::loads([&] { optim::load_training(path, t.model, t.opt); })) {
    // Accepted: put the run back where it was (the optimizer's step included) for the next input.
    t.params.restore();
    t.state.restore();
    t.opt.load_state_dict(t.opt.state_dict(), t.step);
    return 0;
  }
  if (const std::string name = t.params.changed(); !name.empty())
    fuzz::finding("a failed load_training changed parameter '" + name + "'");
  if (const std::string name = t.state.changed(); !name.empty())
    fuzz::finding("a failed load_training changed optimizer state '" + name + "'");
  if (t.opt.steps() != t.step) fuzz::finding("a failed load_training changed the optimizer's step");
  return 0;
}
