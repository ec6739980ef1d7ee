// lowrank adapter files: the few MB a LoRA task costs (Section 4.2: "store and load only the small
// LoRA matrices per task"), tied to the base model by a hash, plus a merged plain-GPT export.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <iomanip>
#include <sstream>

#include "lora/internal.h"
#include "nn/checkpoint.h"
#include "nn/hf_gpt2.h"
#include "tensor/error.h"

namespace lowrank::lora {

using nlohmann::json;

namespace detail {

std::map<std::string, Tensor> adapter_tensors(nn::GPT& model) {
  std::map<std::string, Tensor> out;
  if (!has_lora(model)) return out;
  for (nn::NamedTensor& p : model.named_parameters())
    if (is_lora_name(p.name) || (ends_with(p.name, "bias") && p.tensor.requires_grad())) out[p.name] = p.tensor;
  return out;
}

double clean(float v) {
  for (int prec = 6; prec < 10; ++prec) {
    std::ostringstream os;
    os << std::setprecision(prec) << v;
    const double d = std::stod(os.str());
    if (static_cast<float>(d) == v) return d;
  }
  return v;
}

json config_to_json(const LoRAConfig& c) {
  json j = {{"r", c.r},           {"alpha", clean(c.alpha)}, {"dropout", clean(c.dropout)},  {"targets", c.targets},
            {"layers", c.layers}, {"bias", c.bias},          {"init_std", clean(c.init_std)}};
  if (c.use_rslora) j["use_rslora"] = true;  // absent: false, so files without it read as they always did
  if (c.init_lora_weights != "gaussian") j["init_lora_weights"] = c.init_lora_weights;  // absent: gaussian
  if (c.use_dora) j["use_dora"] = true;
  return j;
}

LoRAConfig config_from_json(const json& j, const std::string& path) {
  LoRAConfig c;
  try {
    // json's conversion would cast a float rank or layer to int64 (1e300: undefined behaviour, 2.5: 2).
    const auto integer = [](const json& v) { return v.is_number_integer(); };
    LR_CHECK(integer(j.at("r")), "field 'r' is ", j.at("r").dump(), ", not an integer");
    const bool layers_ok =
        !j.contains("layers") ||
        (j.at("layers").is_array() && std::all_of(j.at("layers").begin(), j.at("layers").end(), integer));
    LR_CHECK(layers_ok, "field 'layers' is ", j.at("layers").dump(), ", not an array of integers");
    c.r = j.at("r").get<int64_t>();
    c.alpha = j.at("alpha").get<float>();
    c.targets = j.at("targets").get<std::vector<std::string>>();
    c.dropout = j.value("dropout", c.dropout);
    c.layers = j.value("layers", c.layers);
    c.bias = j.value("bias", c.bias);
    c.init_std = j.value("init_std", c.init_std);
    LR_CHECK(!j.contains("use_rslora") || j.at("use_rslora").is_boolean(), "field 'use_rslora' is ",
             j.value("use_rslora", json()).dump(), ", not a boolean");
    c.use_rslora = j.value("use_rslora", false);
    LR_CHECK(!j.contains("use_dora") || j.at("use_dora").is_boolean(), "field 'use_dora' is ",
             j.value("use_dora", json()).dump(), ", not a boolean");
    c.use_dora = j.value("use_dora", false);
    LR_CHECK(!j.contains("init_lora_weights") || j.at("init_lora_weights").is_string(), "field 'init_lora_weights' is ",
             j.value("init_lora_weights", json()).dump(), ", not a string");
    c.init_lora_weights = j.value("init_lora_weights", c.init_lora_weights);
    c.validate();
  } catch (const json::exception& e) {
    throw Error(cat(path, ": invalid LoRA config ", j.dump(), ": ", e.what()));
  } catch (const Error& e) {
    throw Error(cat(path, ": invalid LoRA config: ", e.what()));
  }
  return c;
}

std::string describe(const LoRAConfig& c) {
  std::string t, l;
  for (const std::string& s : c.targets) t += (t.empty() ? "" : ",") + s;
  for (int64_t i : c.layers) l += (l.empty() ? "" : ",") + std::to_string(i);
  return cat("r=", c.r, " alpha=", c.alpha, " dropout=", c.dropout, " targets=", t, " layers=", l.empty() ? "all" : l,
             " bias=", c.bias, c.use_rslora ? " rslora" : "", c.use_dora ? " dora" : "",
             c.init_lora_weights != "gaussian" ? " init=" + c.init_lora_weights : "");
}

namespace {
template <typename T>
std::vector<T> sorted(std::vector<T> v) {
  std::sort(v.begin(), v.end());
  return v;
}
bool close(float a, float b) { return std::fabs(a - b) <= 1e-6f * std::max(std::fabs(a), std::fabs(b)); }
}  // namespace

std::string config_diff(const LoRAConfig& a, const LoRAConfig& b, int64_t n_layer) {
  auto layers = [n_layer](const LoRAConfig& c) {
    std::vector<int64_t> l = c.layers;
    if (l.empty())
      for (int64_t i = 0; i < n_layer; ++i) l.push_back(i);
    return sorted(l);
  };
  // dropout and layers concern the blocks' modules only: an adapter on wte alone has neither
  auto blocks = [](const LoRAConfig& c) { return !(c.targets.size() == 1 && c.targets[0] == "wte"); };
  if (a.r != b.r) return cat("r ", a.r, " vs ", b.r);
  if (a.use_rslora != b.use_rslora) return cat("use_rslora ", a.use_rslora, " vs ", b.use_rslora);
  if (a.use_dora != b.use_dora) return cat("use_dora ", a.use_dora, " vs ", b.use_dora);
  if (a.init_lora_weights != b.init_lora_weights)
    return cat("init_lora_weights ", a.init_lora_weights, " vs ", b.init_lora_weights);
  // alpha is read back from the modules as scale·r (scale·√r): compare the scale, with float slack
  if (!close(lora_scale_of(a.r, a.alpha, a.use_rslora), lora_scale_of(b.r, b.alpha, b.use_rslora)))
    return cat("alpha ", a.alpha, " vs ", b.alpha);
  if (blocks(a) && !close(a.dropout, b.dropout)) return cat("dropout ", a.dropout, " vs ", b.dropout);
  if (sorted(a.targets) != sorted(b.targets)) return cat("targets ", describe(a), " vs ", describe(b));
  if (blocks(a) && layers(a) != layers(b)) return "layers differ";
  if (a.bias != b.bias) return cat("bias ", a.bias, " vs ", b.bias);
  return "";
}

void check_matches(const LoRAConfig& cfg, nn::GPT& model, const std::string& what) {
  cfg.validate();
  const LoRAConfig have = lora_config_of(model);
  const std::string diff = config_diff(cfg, have, model.config.n_layer);
  LR_CHECK(diff.empty(), what, ": cfg (", describe(cfg), ") does not match the model's LoRA modules (", describe(have),
           "): ", diff);
}

}  // namespace detail

namespace {

std::string hex(uint64_t h) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

void fnv1a(uint64_t& h, const void* data, size_t n) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
}

void check_unmerged(nn::GPT& model, const std::string& what) {
  for (const detail::LinearSlot& s : detail::linear_slots(model)) {
    const LoRAModule* l = as_lora(s.module->get());
    LR_CHECK(!(l && l->merged()), what, ": ", s.prefix, " is merged (W holds W0 + ΔW); unmerge() first");
  }
  const LoRAModule* e = embedding_lora(model);
  LR_CHECK(!(e && e->merged()), what, ": wte is merged (E holds E0 + ΔE); unmerge() first");
}

}  // namespace

// Hashes what an adapter does not carry (everything but A, B and the trained biases), so a plain
// model and the same model with LoRA applied hash alike as long as those biases are untouched.
uint64_t base_hash(nn::GPT& model) {
  check_unmerged(model, "base_hash");
  const std::map<std::string, Tensor> skip = detail::adapter_tensors(model);
  uint64_t h = 14695981039346656037ull;
  for (nn::NamedTensor& p : model.named_parameters()) {
    if (skip.count(p.name)) continue;
    fnv1a(h, p.name.c_str(), p.name.size() + 1);
    Tensor c = p.tensor.device() == Device::CPU ? p.tensor.contiguous() : p.tensor.to(Device::CPU);
    fnv1a(h, c.data(), static_cast<size_t>(c.numel()) * sizeof(float));
  }
  return h;
}

void save_adapter(const std::string& path, nn::GPT& model, const LoRAConfig& cfg) {
  detail::check_matches(cfg, model, "save_adapter " + path);
  const std::map<std::string, std::string> meta = {{"format", "lowrank-lora"},
                                                   {"lora.config", detail::config_to_json(cfg).dump()},
                                                   {"lora.base_hash", hex(base_hash(model))}};
  save_safetensors(path, detail::adapter_tensors(model), meta);  // atomic: temp file + rename
}

namespace {
LoRAConfig file_config(const SafetensorsFile& f, const std::string& path) {
  auto it = f.metadata.find("lora.config");
  LR_CHECK(it != f.metadata.end(), path, ": no 'lora.config' metadata (not a lowrank LoRA adapter?)");
  json j;
  try {
    j = json::parse(it->second);
  } catch (const json::exception& e) {
    throw Error(cat(path, ": 'lora.config' metadata is not JSON: ", e.what()));
  }
  const LoRAConfig c = detail::config_from_json(j, path);
  // The rank against the file's own tensors (A: (r, in), B: (out, r)), before anyone allocates r rows.
  for (const auto& kv : f.tensors) {
    const bool a = kv.first.find("lora_A") != std::string::npos, b = kv.first.find("lora_B") != std::string::npos;
    if (!a && !b) continue;
    const Tensor& t = kv.second;
    LR_CHECK(t.ndim() == 2 && t.size(a ? 0 : 1) == c.r, path, ": tensor '", kv.first, "' has shape ", t.shape(),
             " but 'lora.config' says r=", c.r, " (expected ", a ? "(r, in)" : "(out, r)", ")");
  }
  return c;
}
}  // namespace

LoRAConfig read_adapter_config(const std::string& path) { return file_config(load_safetensors(path), path); }

namespace {
// base: the hash to check the file's against, or nullptr for the model's own (computed after the config checks)
void load_adapter_checked(const std::string& path, nn::GPT& model, const uint64_t* base) {
  SafetensorsFile f = load_safetensors(path);
  const LoRAConfig want = file_config(f, path);
  LR_CHECK(detail::has_lora(model), path, ": the model has no LoRA modules; apply_lora(", detail::describe(want),
           ") first");
  const LoRAConfig have = lora_config_of(model);
  const std::string diff = detail::config_diff(want, have, model.config.n_layer);
  LR_CHECK(diff.empty(), path, ": LoRA config mismatch (", diff, "): file has ", detail::describe(want), ", model has ",
           detail::describe(have));
  auto it = f.metadata.find("lora.base_hash");
  LR_CHECK(it != f.metadata.end(), path, ": no 'lora.base_hash' metadata");
  const std::string mine = hex(base ? *base : base_hash(model));
  LR_CHECK(it->second == mine, path, ": base model hash mismatch: the adapter was trained on base ", it->second,
           ", this model is ", mine);
  std::map<std::string, Tensor> params = detail::adapter_tensors(model);
  for (const auto& kv : f.tensors)
    LR_CHECK(params.count(kv.first), path, ": tensor '", kv.first, "' ", kv.second.shape(),
             " is not a LoRA tensor of this model");
  std::map<std::string, Tensor> src;  // every tensor checked before anything is copied
  for (const auto& kv : params) src[kv.first] = tensor::take(f, kv.first, kv.second.shape(), path);
  for (auto& kv : params) kv.second.copy_(src[kv.first]);
}
}  // namespace

void load_adapter(const std::string& path, nn::GPT& model) { load_adapter_checked(path, model, nullptr); }
void load_adapter(const std::string& path, nn::GPT& model, uint64_t base) { load_adapter_checked(path, model, &base); }

namespace {
// Runs write(model) with every LoRA module swapped for a plain Linear holding a fresh merged copy
// W0 + ΔW, then puts the LoRA modules back: the model itself is never modified (merge + unmerge
// would move W0 by float rounding and change base_hash).
void with_merged_copies(nn::GPT& model, const std::function<void()>& write) {
  std::vector<std::pair<std::unique_ptr<nn::Linear>*, std::unique_ptr<nn::Linear>>> stash;
  struct Restore {
    decltype(stash)& s;
    nn::Embedding& wte;
    Tensor wte_weight;                          // E0, while wte holds a merged copy
    std::unique_ptr<nn::EmbeddingDelta> delta;  // wte's LoRA, while it is out
    ~Restore() {
      for (auto& kv : s) *kv.first = std::move(kv.second);
      if (delta) wte.weight = wte_weight, wte.delta = std::move(delta);
    }
  } restore{stash, model.wte, Tensor(), nullptr};
  Rng unused(0);  // meta-device shells draw nothing
  for (const detail::LinearSlot& slot : detail::linear_slots(model)) {
    nn::Linear* m = slot.module->get();
    const LoRAModule* l = as_lora(m);
    if (l == nullptr) continue;
    auto plain =
        std::make_unique<nn::Linear>(m->in_features(), m->out_features(), false, nn::Init{unused, Device::Meta});
    plain->weight = m->weight.clone();
    plain->bias = m->bias;
    if (!l->merged()) l->merge_into(plain->weight);
    stash.emplace_back(slot.module, std::move(*slot.module));
    *slot.module = std::move(plain);
  }
  if (const LoRAModule* e = embedding_lora(model)) {
    Tensor merged = model.wte.weight.clone();
    if (!e->merged()) e->add_delta(merged, 1.f);
    restore.wte_weight = model.wte.weight;
    restore.delta = std::move(model.wte.delta);
    model.wte.weight = merged;
  }
  write();
}
}  // namespace

// Writes W0 + ΔW for every adapted matrix under a plain GPT's names.
void export_merged(const std::string& path, nn::GPT& model) {
  const LoRAConfig cfg = lora_config_of(model);
  with_merged_copies(model, [&] {
    nn::save_model(path, model, {{"lora.merged", detail::config_to_json(cfg).dump()}});
  });
}

// The same, as a Hugging Face GPT-2 directory (nn::save_hf_dir): transformers loads the merged model.
void export_merged_hf(const std::string& dir, nn::GPT& model) {
  with_merged_copies(model, [&] { nn::save_hf_dir(dir, model); });
}

}  // namespace lowrank::lora
