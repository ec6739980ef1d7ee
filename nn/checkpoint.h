#pragma once
// Model checkpoints as safetensors: parameters under their HF GPT-2 names, the config as JSON
// in the "__metadata__" entry ("lowrank.config"). Loading checks every tensor: a missing, extra or
// mis-shaped tensor is an error naming the file and the tensor.
#include <map>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "nn/gpt.h"
#include "tensor/safetensors.h"

namespace lowrank::nn {

nlohmann::json config_to_json(const GPTConfig& c);
GPTConfig config_from_json(const nlohmann::json& j);  // missing fields keep their defaults; a non-integer size throws

// The model's tensors by name (handles, no copies).
std::map<std::string, Tensor> state_dict(Module& model);
// Copies every tensor of `tensors` into the model's parameters; names and shapes must match
// exactly (prefix is prepended to the model's names when looking them up).
void load_state_dict(Module& model, const std::map<std::string, Tensor>& tensors, const std::string& path_for_errors,
                     const std::string& prefix = "", bool allow_extra = false);

// dtype "F32" or "BF16" (half the bytes: the checkpoints shipped in data/assets are BF16).
void save_model(const std::string& path, GPT& model, const std::map<std::string, std::string>& extra_meta = {},
                const std::string& dtype = "F32");
GPTConfig read_config(const tensor::SafetensorsFile& f, const std::string& path);
// The model is built on `device` and the checkpoint's tensors are copied there. `path` is a lowrank
// checkpoint file, or a Hugging Face GPT-2 model directory (nn/hf_gpt2.h: config.json + model.safetensors).
std::unique_ptr<GPT> load_model(const std::string& path, Rng& rng, Device device = Device::CPU);
// The config and weights a base model file or HF directory holds (lowrank names; optimizer state and
// adapters left out), checked against each other: what load_model and classifier_from_gpt build from.
struct Pretrained {
  GPTConfig config;
  std::map<std::string, Tensor> tensors;
};
Pretrained read_pretrained(const std::string& path);

}  // namespace lowrank::nn
