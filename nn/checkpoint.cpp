#include "nn/checkpoint.h"

#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <utility>
#include <vector>

#include "nn/hf_gpt2.h"
#include "tensor/error.h"

namespace lowrank::nn {

nlohmann::json config_to_json(const GPTConfig& c) {
  return {{"name", c.name},       {"vocab_size", c.vocab_size}, {"n_positions", c.n_positions},
          {"n_embd", c.n_embd},   {"n_layer", c.n_layer},       {"n_head", c.n_head},
          {"n_inner", c.n_inner}, {"dropout", c.dropout},       {"layer_norm_eps", c.layer_norm_eps},
          {"causal", c.causal},   {"n_classes", c.n_classes}};
}

namespace {
constexpr uint64_t kInt64Max = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
// A size field: missing keeps `def`. json's own conversion would cast a float to int64 (1e300: undefined
// behaviour, 4.5: silently 4), so anything but an integer (or an unsigned one past int64) is refused.
int64_t int_field(const nlohmann::json& j, const char* key, int64_t def) {
  auto it = j.find(key);
  if (it == j.end()) return def;
  LR_CHECK(it->is_number_integer() && (!it->is_number_unsigned() || it->get<uint64_t>() <= kInt64Max), "field '", key,
           "' is ", it->dump(), ", not an integer");
  return it->get<int64_t>();
}
}  // namespace

GPTConfig config_from_json(const nlohmann::json& j) {
  LR_CHECK(j.is_object(), "config ", j.dump(), " is not a JSON object");
  GPTConfig c;
  c.name = j.value("name", c.name);
  c.vocab_size = int_field(j, "vocab_size", c.vocab_size);
  c.n_positions = int_field(j, "n_positions", c.n_positions);
  c.n_embd = int_field(j, "n_embd", c.n_embd);
  c.n_layer = int_field(j, "n_layer", c.n_layer);
  c.n_head = int_field(j, "n_head", c.n_head);
  c.n_inner = int_field(j, "n_inner", c.n_inner);
  c.dropout = j.value("dropout", c.dropout);
  c.layer_norm_eps = j.value("layer_norm_eps", c.layer_norm_eps);
  c.causal = j.value("causal", c.causal);
  c.n_classes = int_field(j, "n_classes", c.n_classes);
  return c;
}

std::map<std::string, Tensor> state_dict(Module& model) {
  std::map<std::string, Tensor> out;
  for (NamedTensor& p : model.named_parameters()) out[p.name] = p.tensor;
  return out;
}

void load_state_dict(Module& model, const std::map<std::string, Tensor>& tensors, const std::string& path,
                     const std::string& prefix, bool allow_extra) {
  std::set<std::string> used;
  tensor::SafetensorsFile view{tensors, {}};
  std::vector<std::pair<Tensor, Tensor>> copies;  // (parameter, source): all checked before any is copied
  for (NamedTensor& p : model.named_parameters()) {
    copies.emplace_back(p.tensor, tensor::take(view, prefix + p.name, p.tensor.shape(), path));
    used.insert(prefix + p.name);
  }
  if (!allow_extra)
    for (const auto& kv : tensors)
      LR_CHECK(used.count(kv.first) || kv.first.rfind(prefix, 0) != 0, path, ": tensor '", kv.first,
               "' is not a parameter of this model");
  for (auto& c : copies) c.first.copy_(c.second);
}

void save_model(const std::string& path, GPT& model, const std::map<std::string, std::string>& extra_meta,
                const std::string& dtype) {
  std::map<std::string, std::string> meta = extra_meta;
  meta["format"] = "lowrank-gpt";
  meta["lowrank.config"] = config_to_json(model.config).dump();
  tensor::save_safetensors(path, state_dict(model), meta, dtype);
}

GPTConfig read_config(const tensor::SafetensorsFile& f, const std::string& path) {
  auto it = f.metadata.find("lowrank.config");
  LR_CHECK(it != f.metadata.end(), path, ": no 'lowrank.config' metadata (not a lowrank checkpoint?)");
  try {
    return config_from_json(nlohmann::json::parse(it->second));
  } catch (const nlohmann::json::exception& e) {
    throw Error(cat(path, ": invalid 'lowrank.config' metadata: ", e.what()));
  } catch (const Error& e) {
    throw Error(cat(path, ": invalid 'lowrank.config' metadata: ", e.what()));
  }
}

namespace {
// The file's tensors against the shapes its own lowrank.config implies, read off a meta-device shell
// (nothing allocated): a config asking for more than the file holds is refused before any allocation.
void check_config_shapes(const tensor::SafetensorsFile& f, const GPTConfig& c, const std::string& path) {
  try {
    c.validate();
  } catch (const Error& e) {
    throw Error(cat(path, ": 'lowrank.config' metadata: ", e.what()));
  }
  Rng unused(0);  // meta-device shells draw nothing
  GPT shell(c, unused, Device::Meta);
  for (NamedTensor& p : shell.named_parameters()) {
    auto it = f.tensors.find(p.name);
    const bool found = it != f.tensors.end();
    const std::string has = found ? it->second.shape().str() : std::string("none");
    LR_CHECK(found && it->second.shape() == p.tensor.shape(), path, ": 'lowrank.config' ", config_to_json(c).dump(),
             " needs tensor '", p.name, "' of shape ", p.tensor.shape(), ", the file has ", has);
  }
}
}  // namespace

Pretrained read_pretrained(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    const std::string st = path + "/model.safetensors";
    Pretrained p;
    p.tensors = hf_tensors(tensor::load_safetensors(st), st);
    std::ifstream in(path + "/config.json");
    LR_CHECK(in.good(), path,
             "/config.json: cannot open (a Hugging Face model directory needs config.json and "
             "model.safetensors)");
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
      throw Error(cat(path, "/config.json: invalid JSON: ", e.what()));
    }
    p.config = hf_config(j, p.tensors, path + "/config.json");
    return p;
  }
  tensor::SafetensorsFile f = tensor::load_safetensors(path);
  Pretrained p{read_config(f, path), {}};
  check_config_shapes(f, p.config, path);
  for (const auto& kv : f.tensors)
    if (kv.first.rfind("opt.", 0) != 0 && kv.first.rfind("lora.", 0) != 0) p.tensors.insert(kv);
  return p;
}

std::unique_ptr<GPT> load_model(const std::string& path, Rng& rng, Device device) {
  Pretrained p = read_pretrained(path);
  auto model = std::make_unique<GPT>(p.config, rng, device);
  load_state_dict(*model, p.tensors, path);
  return model;
}

}  // namespace lowrank::nn
