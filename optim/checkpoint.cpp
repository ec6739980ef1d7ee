#include "optim/checkpoint.h"

#include <charconv>

#include "nn/checkpoint.h"
#include "tensor/error.h"

namespace lowrank::optim {

void save_training(const std::string& path, nn::GPT& model, const AdamW& opt,
                   const std::map<std::string, std::string>& meta_in) {
  std::map<std::string, Tensor> tensors = nn::state_dict(model);
  for (const auto& kv : opt.state_dict()) tensors["opt." + kv.first] = kv.second;
  std::map<std::string, std::string> meta = meta_in;
  meta["format"] = "lowrank-gpt";
  meta["lowrank.config"] = nn::config_to_json(model.config).dump();
  meta["opt.step"] = std::to_string(opt.steps());
  tensor::save_safetensors(path, tensors, meta);
}

namespace {
// The "opt.step" metadata: a whole non-negative decimal integer, nothing before or after it.
int64_t read_step(const tensor::SafetensorsFile& f, const std::string& path) {
  auto it = f.metadata.find("opt.step");
  LR_CHECK(it != f.metadata.end(), path, ": no 'opt.step' metadata (not a training checkpoint)");
  const std::string& s = it->second;
  int64_t step = -1;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), step);
  const bool whole = !s.empty() && ec == std::errc() && end == s.data() + s.size();
  LR_CHECK(whole && step >= 0, path, ": metadata 'opt.step' is '", s, "', expected a non-negative integer below 2^63");
  return step;
}
}  // namespace

// Everything (config, parameters, optimizer state, step) is checked before anything is copied:
// on an error the model and the optimizer are as they were.
std::map<std::string, std::string> load_training(const std::string& path, nn::GPT& model, AdamW& opt) {
  tensor::SafetensorsFile f = tensor::load_safetensors(path);
  nn::GPTConfig saved = nn::read_config(f, path);
  LR_CHECK(nn::config_to_json(saved) == nn::config_to_json(model.config), path, ": checkpoint config ",
           nn::config_to_json(saved).dump(), " differs from this run's ", nn::config_to_json(model.config).dump());
  std::map<std::string, Tensor> params, state;
  for (const auto& kv : f.tensors) {
    if (kv.first.rfind("opt.", 0) == 0)
      state[kv.first.substr(4)] = kv.second;
    else
      params[kv.first] = kv.second;
  }
  const int64_t step = read_step(f, path);
  try {
    opt.check_state_dict(state, step);
  } catch (const Error& e) {
    throw Error(cat(path, ": ", e.what()));
  }
  nn::load_state_dict(model, params, path);  // checks every tensor, then copies
  opt.load_state_dict(state, step);
  return f.metadata;
}

}  // namespace lowrank::optim
