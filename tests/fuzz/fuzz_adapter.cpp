// Fuzzes our LoRA adapter files (lora/lora.h): lora::read_adapter_config and lora::load_adapter of
// the input into a tiny GPT with LoRA on q and v (the model make_seeds saved the seed adapters from,
// so mutated seeds get past the base-model hash to the tensor checks).
//
// load_adapter promises: a 'lora.config' that is not JSON or disagrees with the model's LoRA (rank,
// alpha, targets, layers, bias), a rank that disagrees with the tensors, a missing or wrong
// 'lora.base_hash', a tensor that is not a LoRA tensor of the model, and a missing or mis-shaped one
// are each a lowrank::Error naming the file; config, hash and every tensor are checked before
// anything is copied, so a failed load leaves the model exactly as it was (compared here).
#include <string>

#include "fuzz_util.h"
#include "lora/lora.h"
#include "nn/gpt.h"

using namespace lowrank;

namespace {

nn::GPT& with_lora(nn::GPT& model) {
  Rng rng(7);
  lora::apply_lora(model, fuzz::adapter_config(), rng);
  return model;
}

struct Target {
  Rng rng{1};
  nn::GPT model{fuzz::tiny_config(), rng};
  nn::GPT& lora_model = with_lora(model);
  fuzz::Snapshot before{model.named_parameters()};
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Target t;
  const std::string path = fuzz::write_file("adapter.safetensors", fuzz::as_view(data, size));
  lora::LoRAConfig cfg;
  if (fuzz::loads([&] { cfg = lora::read_adapter_config(path); }) && cfg.r < 1)
    fuzz::finding("read_adapter_config accepted rank " + std::to_string(cfg.r));
  if (fuzz::loads([&] { lora::load_adapter(path, t.lora_model); })) {
    t.before.restore();
  } else if (const std::string name = t.before.changed(); !name.empty()) {
    fuzz::finding("a failed load_adapter changed parameter '" + name + "'");
  }
  return 0;
}
