// Fuzzes Hugging Face peft adapter directories (lora/lora.h): lora::load_peft of a directory whose
// adapter_config.json is the input before fuzz::kSplit and adapter_model.safetensors the rest, into
// a fresh plain GPT shaped as the tests/fixtures/tiny_gpt2 base (load_peft applies the LoRA itself,
// so each input needs its own model).
//
// load_peft promises: a config that is not JSON, has a field of the wrong type, asks for something we
// do not support (non-LORA or DoRA adapters, lora_bias, modules_to_save, other target modules,
// ranks or scales that differ per layer), and a tensor of the wrong shape (a q,v lora_B of (24, 1))
// are each a lowrank::Error naming the file (and the tensor), raised before anything is applied or
// copied. So after an error the model is still a plain GPT with its parameters unchanged, and after
// a success it has LoRA and runs; the harness checks both.
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "lora/lora.h"
#include "nn/gpt.h"

using namespace lowrank;

namespace {

void check_runs(nn::GPT& model) {
  if (!fuzz::loads([&] { lora::lora_config_of(model); })) fuzz::finding("load_peft succeeded but applied no LoRA");
  const std::vector<int32_t> ids = {1, 2};
  try {
    Tensor logits = model.forward(ids, 1, 2, nn::Context{});
    if (logits.numel() != 2 * model.config.vocab_size) fuzz::finding("logits of the wrong size");
  } catch (const Error& e) {
    fuzz::finding(std::string("a model with the adapter load_peft accepted does not run: ") + e.what());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto [config, tensors] = fuzz::split(fuzz::as_view(data, size));
  fuzz::write_file("adapter_config.json", config);
  fuzz::write_file("adapter_model.safetensors", tensors);

  Rng rng(1);
  nn::GPT model(fuzz::peft_base_config(), rng);
  const fuzz::Snapshot before(model.named_parameters());
  if (fuzz::loads([&] { lora::load_peft(fuzz::scratch_dir(), model); })) {
    check_runs(model);
    return 0;
  }
  if (fuzz::loads([&] { lora::lora_config_of(model); }))
    fuzz::finding("a failed load_peft left LoRA modules in the model");
  if (const std::string name = before.changed(); !name.empty())
    fuzz::finding("a failed load_peft changed parameter '" + name + "'");
  return 0;
}
