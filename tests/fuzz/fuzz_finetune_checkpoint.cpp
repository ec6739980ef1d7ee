// Fuzzes finetune's training checkpoints (optim/finetune_checkpoint.h): optim::load_finetune of the
// input into a tiny GPT with LoRA and its AdamW, the --resume path of finetune and finetune_e2e.
//
// load_finetune promises: a wrong format or fingerprint, a missing, extra or mis-shaped tensor, a
// step or batch count that is not a whole non-negative decimal (or a step beyond the run), a malformed
// RNG state and a log that is not a JSON object (or that the caller's check refuses) are each a
// lowrank::Error naming the file; everything is checked before anything is copied, so after an error
// the trainable tensors, the optimizer's moments and its step are exactly what they were.
#include <string>

#include "fuzz_util.h"
#include "nn/gpt.h"
#include "optim/adamw.h"
#include "optim/finetune_checkpoint.h"

using namespace lowrank;

namespace {

std::vector<nn::NamedTensor> trainable(nn::GPT& model) {
  std::vector<nn::NamedTensor> out;
  for (nn::NamedTensor& p : model.named_parameters())
    if (p.tensor.requires_grad()) out.push_back(p);
  return out;
}

std::vector<nn::NamedTensor> moments(const optim::AdamW& opt) {
  std::vector<nn::NamedTensor> out;
  for (const auto& kv : opt.state_dict()) out.push_back({"opt." + kv.first, kv.second});
  return out;
}

// The caller's check of the log: make_seeds writes {"ok": true}.
void check_log(const std::string& log) {
  if (log.find("\"ok\"") == std::string::npos) throw Error("the log has no 'ok'");
}

struct Target {
  Rng rng{1};
  nn::GPT model{fuzz::tiny_config(), rng};
  int64_t lora_params = lora::apply_lora(model, fuzz::adapter_config(), rng);
  optim::AdamW opt{trainable(model), optim::AdamWConfig{}};
  fuzz::Snapshot params{trainable(model)};
  fuzz::Snapshot state{moments(opt)};
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Target t;
  const std::string path = fuzz::write_file("finetune.safetensors", fuzz::as_view(data, size));
  std::vector<Tensor> best;
  if (fuzz::loads([&] { optim::load_finetune(path, trainable(t.model), t.opt, "fuzz", 100, best, check_log); })) {
    t.params.restore();  // accepted: put the run back for the next input
    t.state.restore();
    t.opt.load_state_dict(t.opt.state_dict(), 0);
    return 0;
  }
  if (const std::string name = t.params.changed(); !name.empty())
    fuzz::finding("a failed load_finetune changed trainable tensor '" + name + "'");
  if (const std::string name = t.state.changed(); !name.empty())
    fuzz::finding("a failed load_finetune changed optimizer state '" + name + "'");
  if (t.opt.steps() != 0) fuzz::finding("a failed load_finetune changed the optimizer's step");
  return 0;
}
