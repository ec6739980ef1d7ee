// Hugging Face GPT-2 directories in and out (see nn/hf_gpt2.h).
#include "nn/hf_gpt2.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include "nn/checkpoint.h"
#include "tensor/error.h"
#include "tensor/file_io.h"
#include "tensor/strings.h"

namespace lowrank::nn {

using nlohmann::json;

namespace {

// HF Conv1D layers, stored (in, out).
bool is_conv1d_weight(const std::string& name) {
  for (const char* s : {"attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight"})
    if (ends_with(name, s)) return true;
  return false;
}

// An integer field: required unless `def` is given; null means `def` (n_inner).
int64_t int_field(const json& j, const char* key, const std::string& path, const int64_t* def = nullptr) {
  auto it = j.find(key);
  if ((it == j.end() || it->is_null()) && def) return *def;
  LR_CHECK(it != j.end(), path, ": field '", key, "' is missing");
  LR_CHECK(it->is_number_integer() && it->get<int64_t>() >= 0, path, ": field '", key, "' is ", it->dump(),
           ", not a non-negative integer");
  return it->get<int64_t>();
}

// A setting that must have one value (or be absent, when its HF default is that value).
template <typename T>
void require(const json& j, const char* key, const T& want, const std::string& path, const char* why) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return;
  bool ok = false;
  try {
    ok = it->get<T>() == want;
  } catch (const json::exception&) {}
  LR_CHECK(ok, path, ": field '", key, "' is ", it->dump(), ": ", why);
}

// The shape a tensor of the file has, "none" when it is missing.
std::string shape_of(const std::map<std::string, Tensor>& t, const std::string& name) {
  auto it = t.find(name);
  return it == t.end() ? std::string("none") : it->second.shape().str();
}

// One config field against one tensor dimension.
void agree(const std::map<std::string, Tensor>& t, const std::string& tensor, int64_t dim, int64_t value,
           const char* field, const std::string& path) {
  auto it = t.find(tensor);
  const bool ok = it != t.end() && it->second.ndim() > dim && it->second.size(dim) == value;
  LR_CHECK(ok, path, ": field '", field, "' is ", value, " but tensor '", tensor, "' has shape ", shape_of(t, tensor));
}

}  // namespace

GPTConfig hf_config(const json& j, const std::map<std::string, Tensor>& t, const std::string& path) {
  LR_CHECK(j.is_object(), path, ": expected a JSON object, got ", j.type_name());
  require(j, "model_type", std::string("gpt2"), path, "only GPT-2 models are read");
  GPTConfig c;
  c.name = std::filesystem::path(path).parent_path().filename().string();
  c.vocab_size = int_field(j, "vocab_size", path);
  c.n_positions = j.contains("n_positions") ? int_field(j, "n_positions", path) : int_field(j, "n_ctx", path);
  c.n_embd = int_field(j, "n_embd", path);
  c.n_layer = int_field(j, "n_layer", path);
  c.n_head = int_field(j, "n_head", path);
  const int64_t zero = 0;
  c.n_inner = int_field(j, "n_inner", path, &zero);
  const double eps = j.value("layer_norm_epsilon", 1e-5);
  c.layer_norm_eps = static_cast<float>(eps);
  c.dropout = 0.f;
  c.causal = true;
  const std::string act = j.value("activation_function", std::string("gelu_new"));
  LR_CHECK(act == "gelu_new" || act == "gelu_pytorch_tanh", path, ": field 'activation_function' is '", act,
           "': this GPT computes GPT-2's tanh GELU only (gelu_new, gelu_pytorch_tanh)");
  require(j, "scale_attn_weights", true, path, "attention without the 1/sqrt(head size) scale is not supported");
  require(j, "scale_attn_by_inverse_layer_idx", false, path, "per-layer attention scaling is not supported");
  require(j, "add_cross_attention", false, path, "cross-attention is not supported");
  require(j, "tie_word_embeddings", true, path, "this GPT's head is tied to wte");
  const struct {
    const char* field;
    int64_t value;
  } sizes[] = {{"vocab_size", c.vocab_size},
               {"n_positions", c.n_positions},
               {"n_embd", c.n_embd},
               {"n_layer", c.n_layer},
               {"n_head", c.n_head}};
  for (const auto& s : sizes) LR_CHECK(s.value > 0, path, ": field '", s.field, "' must be positive, got ", s.value);
  LR_CHECK(c.n_embd % c.n_head == 0, path, ": field 'n_head' is ", c.n_head, ", which does not divide n_embd ",
           c.n_embd);
  agree(t, "wte.weight", 0, c.vocab_size, "vocab_size", path);
  agree(t, "wte.weight", 1, c.n_embd, "n_embd", path);
  agree(t, "wpe.weight", 0, c.n_positions, "n_positions", path);
  agree(t, "h.0.mlp.c_fc.weight", 0, c.mlp_width(), c.n_inner > 0 ? "n_inner" : "n_inner (null: 4 n_embd)", path);
  int64_t layers = 0;
  while (t.count("h." + std::to_string(layers) + ".ln_1.weight")) ++layers;
  LR_CHECK(layers == c.n_layer, path, ": field 'n_layer' is ", c.n_layer, " but the weights have ", layers,
           " blocks (h.0 .. h.", layers - 1, ")");
  try {
    c.validate();
  } catch (const Error& e) {
    throw Error(cat(path, ": ", e.what()));
  }
  return c;
}

json hf_config_json(const GPTConfig& c) {
  const int64_t eos = c.vocab_size - 1;  // GPT-2 BPE's <|endoftext|> is its last id, 50256
  return {{"activation_function", "gelu_new"},
          {"architectures", {"GPT2LMHeadModel"}},
          {"attn_pdrop", c.dropout},
          {"bos_token_id", eos},
          {"embd_pdrop", c.dropout},
          {"eos_token_id", eos},
          {"layer_norm_epsilon", c.layer_norm_eps},
          {"model_type", "gpt2"},
          {"n_embd", c.n_embd},
          {"n_head", c.n_head},
          {"n_inner", c.n_inner > 0 ? json(c.n_inner) : json(nullptr)},
          {"n_layer", c.n_layer},
          {"n_positions", c.n_positions},
          {"resid_pdrop", c.dropout},
          {"scale_attn_by_inverse_layer_idx", false},
          {"scale_attn_weights", true},
          {"tie_word_embeddings", true},
          {"vocab_size", c.vocab_size}};
}

std::map<std::string, Tensor> hf_tensors(const tensor::SafetensorsFile& f, const std::string& path) {
  const std::string prefix = f.tensors.count("transformer.wte.weight") ? "transformer." : "";
  std::map<std::string, Tensor> ours;
  for (const auto& kv : f.tensors) {
    std::string name = kv.first;
    if (name == "lm_head.weight") continue;                                               // checked against wte below
    if (ends_with(name, ".attn.bias") || ends_with(name, ".attn.masked_bias")) continue;  // old mask buffers
    LR_CHECK(name.rfind(prefix, 0) == 0, path, ": tensor '", name, "' is not part of a GPT-2 model");
    name = name.substr(prefix.size());
    ours[name] = is_conv1d_weight(name) && kv.second.ndim() == 2 ? kv.second.transpose(0, 1).contiguous() : kv.second;
  }
  auto head = f.tensors.find("lm_head.weight");
  if (head != f.tensors.end() && ours.count("wte.weight")) {
    const Tensor& w = ours.at("wte.weight");
    bool same = head->second.shape() == w.shape();
    for (int64_t i = 0; same && i < w.numel(); ++i) same = head->second.data()[i] == w.data()[i];
    LR_CHECK(same, path, ": tensor 'lm_head.weight' differs from the token embedding: this GPT's head is tied to wte");
  }
  return ours;
}

std::unique_ptr<GPT> load_hf_dir(const std::string& dir, Rng& rng, Device device) {
  return load_model(dir, rng, device);  // read_pretrained tells a directory from a checkpoint file
}

void save_hf_dir(const std::string& dir, GPT& model) {
  const GPTConfig& c = model.config;
  LR_CHECK(c.causal && c.n_classes == 0, "save_hf_dir ", dir, ": only a causal language model has the GPT-2 layout");
  LR_CHECK(!model.prefix_embed.defined(), "save_hf_dir ", dir, ": a prefix-embedding model has no GPT-2 layout");
  std::map<std::string, Tensor> out;
  for (NamedTensor& p : model.named_parameters()) {
    const bool base = p.name.rfind("wte.", 0) == 0 || p.name.rfind("wpe.", 0) == 0 || p.name.rfind("ln_f.", 0) == 0 ||
                      p.name.rfind("h.", 0) == 0;
    LR_CHECK(base && p.name.find("lora_") == std::string::npos && p.name.find("adapter") == std::string::npos &&
                 p.name.find("prefix") == std::string::npos,
             "save_hf_dir ", dir, ": parameter '", p.name,
             "' is not part of GPT-2 (merge or remove the adapters first)");
    const Tensor t = p.tensor.to(Device::CPU);
    out["transformer." + p.name] = is_conv1d_weight(p.name) ? t.transpose(0, 1).contiguous() : t.contiguous();
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  LR_CHECK(!ec, "save_hf_dir: cannot create directory ", dir, ": ", ec.message());
  tensor::save_safetensors(dir + "/model.safetensors", out, {{"format", "pt"}});
  write_file_atomic(dir + "/config.json", hf_config_json(c).dump(2) + "\n");
}

void load_hf_gpt2(const std::string& path, GPT& model) {
  load_state_dict(model, hf_tensors(tensor::load_safetensors(path), path), path);
}

}  // namespace lowrank::nn
