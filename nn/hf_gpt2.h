#pragma once
// Hugging Face GPT-2 model directories (`config.json` + `model.safetensors`, as GPT2LMHeadModel /
// GPT2Model.save_pretrained write them) in and out:
//   read:  config.json gives n_layer, n_head, n_embd, n_positions, n_inner, vocab_size, layer_norm_epsilon
//          and the activation; every field is checked against the tensors (a disagreement is an error
//          naming the field), and a setting this GPT cannot honour (another activation, unscaled or
//          layer-scaled attention, cross-attention, an untied head) is refused naming the field.
//   write: the same layout, Conv1D weights (in, out), so transformers' from_pretrained loads it.
// HF's Conv1D stores W as (in, out) (y = x W + b); lowrank's Linear stores (out, in): transposed both ways.
// Dropout: HF's resid/embd/attn_pdrop are pretraining settings; a model read here has dropout 0 and
// the fine-tuning sets its own (nn::GPTConfig::dropout), as with lowrank's own checkpoints.
#include <map>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "nn/gpt.h"
#include "tensor/safetensors.h"

namespace lowrank::nn {

// config.json -> GPTConfig; `tensors` (our names, after hf_tensors) are checked against every field.
GPTConfig hf_config(const nlohmann::json& j, const std::map<std::string, Tensor>& tensors, const std::string& path);
nlohmann::json hf_config_json(const GPTConfig& c);  // GPT2LMHeadModel's config.json for c

// The tensors of an HF GPT-2 model.safetensors in lowrank names: "transformer." dropped, Conv1D
// weights transposed to (out, in), mask buffers and a tied lm_head.weight skipped (an lm_head that
// differs from wte is an error: lowrank's head is tied).
std::map<std::string, Tensor> hf_tensors(const tensor::SafetensorsFile& f, const std::string& path);

// A model from an HF directory: built from its config.json, every weight checked and copied.
std::unique_ptr<GPT> load_hf_dir(const std::string& dir, Rng& rng, Device device = Device::CPU);

// Writes dir/config.json and dir/model.safetensors (F32, GPT2LMHeadModel names, "format": "pt"), each
// through a temp file renamed into place. The model must be a plain causal GPT (merge adapters first).
void save_hf_dir(const std::string& dir, GPT& model);

// An HF GPT-2 model.safetensors into an existing model of the right shape (no config.json needed).
void load_hf_gpt2(const std::string& path, GPT& model);

}  // namespace lowrank::nn
