#include "optim/finetune_checkpoint.h"

#include <charconv>
#include <map>
#include <nlohmann/json.hpp>

#include "tensor/error.h"
#include "tensor/random.h"
#include "tensor/safetensors.h"

namespace lowrank::optim {

void save_finetune(const std::string& path, const std::vector<nn::NamedTensor>& trainable,
                   const std::vector<Tensor>& best, const AdamW& opt, const FinetuneState& s) {
  LR_CHECK(best.empty() || best.size() == trainable.size(), "save_finetune: ", best.size(), " best tensors for ",
           trainable.size(), " trainable ones");
  std::map<std::string, Tensor> t;
  for (size_t i = 0; i < trainable.size(); ++i) {
    t["param." + trainable[i].name] = trainable[i].tensor;
    if (!best.empty()) t["best." + trainable[i].name] = best[i];
  }
  for (const auto& kv : opt.state_dict()) t["opt." + kv.first] = kv.second;
  tensor::save_safetensors(path, t,
                           {{"format", "lowrank-finetune"},
                            {"fingerprint", s.fingerprint},
                            {"step", std::to_string(s.step)},
                            {"batches_drawn", std::to_string(s.batches_drawn)},
                            {"dropout_rng", s.dropout_rng},
                            {"log", s.log}});
}

namespace {
const std::string& meta(const tensor::SafetensorsFile& f, const std::string& path, const char* key) {
  auto it = f.metadata.find(key);
  LR_CHECK(it != f.metadata.end(), path, ": no '", key, "' metadata (not a finetune checkpoint)");
  return it->second;
}

// A whole non-negative decimal, nothing before or after it.
int64_t count(const tensor::SafetensorsFile& f, const std::string& path, const char* key) {
  const std::string& s = meta(f, path, key);
  int64_t v = -1;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  LR_CHECK(!s.empty() && ec == std::errc() && end == s.data() + s.size() && v >= 0, path, ": metadata '", key, "' is '",
           s, "', expected a non-negative integer");
  return v;
}

const Tensor& tensor_for(const tensor::SafetensorsFile& f, const std::string& path, const std::string& name,
                         const Tensor& like) {
  auto it = f.tensors.find(name);
  LR_CHECK(it != f.tensors.end(), path, ": no tensor '", name, "'");
  LR_CHECK(it->second.shape() == like.shape(), path, ": '", name, "' has shape ", it->second.shape(),
           ", this run's is ", like.shape());
  return it->second;
}
}  // namespace

FinetuneState load_finetune(const std::string& path, const std::vector<nn::NamedTensor>& trainable, AdamW& opt,
                            const std::string& fingerprint, int64_t max_step, std::vector<Tensor>& best,
                            const std::function<void(const std::string&)>& check_log) {
  const tensor::SafetensorsFile f = tensor::load_safetensors(path);
  LR_CHECK(meta(f, path, "format") == "lowrank-finetune", path, ": format '", meta(f, path, "format"),
           "', expected lowrank-finetune");
  FinetuneState s{meta(f, path, "fingerprint"), count(f, path, "step"), count(f, path, "batches_drawn"),
                  meta(f, path, "dropout_rng"), meta(f, path, "log")};
  LR_CHECK(s.fingerprint == fingerprint, path, ": written by another run (", s.fingerprint,
           "); resume with the same data, model, method and training options (", fingerprint, ")");
  LR_CHECK(s.step <= max_step, path, ": step ", s.step, " is beyond this run's ", max_step, " steps");
  tensor::Rng probe;
  try {
    probe.set_state(s.dropout_rng);
  } catch (const Error& e) {
    throw Error(cat(path, ": ", e.what()));
  }
  LR_CHECK(nlohmann::json::accept(s.log) && nlohmann::json::parse(s.log).is_object(), path,
           ": metadata 'log' is not a JSON object");
  try {
    check_log(s.log);
  } catch (const Error& e) {
    throw Error(cat(path, ": metadata 'log': ", e.what()));
  }
  std::map<std::string, Tensor> state;
  size_t known = 0;
  for (const auto& kv : f.tensors)
    if (kv.first.rfind("opt.", 0) == 0) state[kv.first.substr(4)] = kv.second;
  const bool has_best = !trainable.empty() && f.tensors.count("best." + trainable.front().name);
  for (const nn::NamedTensor& p : trainable) {
    tensor_for(f, path, "param." + p.name, p.tensor);
    if (has_best) tensor_for(f, path, "best." + p.name, p.tensor);
    known += has_best ? 2 : 1;
  }
  LR_CHECK(known + state.size() == f.tensors.size(), path, ": ", f.tensors.size() - known - state.size(),
           " tensors that are neither this run's trainable tensors nor optimizer state");
  try {
    opt.check_state_dict(state, s.step);
  } catch (const Error& e) {
    throw Error(cat(path, ": ", e.what()));
  }
  // Everything checked: now copy.
  best.clear();
  for (const nn::NamedTensor& p : trainable) {
    Tensor dst = p.tensor;
    dst.copy_(f.tensors.at("param." + p.name));
    if (has_best) best.push_back(f.tensors.at("best." + p.name).to(p.tensor.device()));
  }
  opt.load_state_dict(state, s.step);
  return s;
}

}  // namespace lowrank::optim
