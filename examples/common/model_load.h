#pragma once
// A base model with an optional LoRA adapter on top, as the examples that start from trained weights
// (generate, finetune_e2e --adapter) load them:
//
//   Rng rng(seed);
//   std::unique_ptr<nn::GPT> model = ex::load_model_with_adapter(init, adapter, device, rng);
//
// init: a lowrank checkpoint (.safetensors) or a Hugging Face GPT-2 directory (nn::load_model).
// adapter: "" (none), lowrank's adapter file (.safetensors: its own config is applied, and its base
// hash must match the loaded base, so an adapter never lands silently on the wrong model), or a peft
// directory (adapter_config.json + adapter_model.safetensors; lora::load_peft).
#include <filesystem>
#include <memory>
#include <string>

#include "lora/lora.h"
#include "nn/checkpoint.h"
#include "nn/gpt.h"
#include "tensor/error.h"

namespace lowrank::examples {

// Applies the adapter at `path` (as above) to model; returns the number of trainable parameters
// (the adapter's tensors, and biases it trains).
inline int64_t load_adapter_into(nn::GPT& model, const std::string& path) {
  std::error_code ec;
  LR_CHECK(std::filesystem::exists(path, ec), "--adapter ", path, ": no such file or directory");
  if (std::filesystem::is_directory(path, ec)) {
    lora::load_peft(path, model);
  } else {
    Rng unused(0);  // A's random init is overwritten by the file's
    lora::apply_lora(model, lora::read_adapter_config(path), unused);
    lora::load_adapter(path, model);
  }
  int64_t trainable = 0;
  for (nn::NamedTensor& p : model.named_parameters())
    if (p.tensor.requires_grad()) trainable += p.tensor.numel();
  return trainable;
}

// The base at `init` on `device`, with the adapter at `adapter` applied (unmerged) when not "".
// rng draws what the files do not hold (none for a complete checkpoint).
inline std::unique_ptr<nn::GPT> load_model_with_adapter(const std::string& init, const std::string& adapter,
                                                        tensor::Device device, Rng& rng) {
  std::error_code ec;
  LR_CHECK(std::filesystem::exists(init, ec), "--init ", init, ": no such file or directory");
  std::unique_ptr<nn::GPT> model = nn::load_model(init, rng, device);
  if (!adapter.empty()) load_adapter_into(*model, adapter);
  return model;
}

}  // namespace lowrank::examples
