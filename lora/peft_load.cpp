// Reading Hugging Face peft LoRA directories into a plain GPT (the layout and the c_attn mapping
// are described at the top of peft.cpp).
#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>

#include "lora/internal.h"
#include "nn/checkpoint.h"
#include "tensor/error.h"

namespace lowrank::lora {

using detail::kind_of;
using detail::kPeftPrefix;
using detail::PeftModule;
using nlohmann::json;
using ojson = nlohmann::ordered_json;  // adapter_config.json keeps its key order: peft's patterns match first key first

namespace {

// What a peft directory holds, in lowrank names.
struct PeftFiles {
  std::string cfg_path, st_path;
  ojson cfg;
  SafetensorsFile st;
  std::map<std::string, PeftModule> modules;  // "h.0.attn.c_attn." -> (A, B)
  std::map<std::string, Tensor> biases;       // "h.0.attn.c_attn.bias" -> tensor
  std::map<std::string, Tensor> magnitudes;   // DoRA: "h.0.attn.c_attn." -> lora_magnitude_vector (out)
};

ojson read_json(const std::string& path) {
  std::ifstream is(path);
  LR_CHECK(is.good(), path, ": cannot open");
  try {
    return ojson::parse(is);
  } catch (const json::exception& e) {
    throw Error(cat(path, ": invalid JSON: ", e.what()));
  }
}

// j[key] when present and not null, else def; a value of another JSON type is an error naming the file and field.
template <typename T>
T field(const ojson& j, const char* key, const T& def, const std::string& path) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return def;
  try {
    return it->get<T>();
  } catch (const json::exception&) {
    throw Error(cat(path, ": field '", key, "' is ", it->dump(), ", of the wrong type"));
  }
}

void check_supported(const ojson& j, const std::string& path) {
  LR_CHECK(j.is_object(), path, ": expected a JSON object, got ", j.type_name(), " ", j.dump());
  const std::string type = field(j, "peft_type", std::string(), path);
  LR_CHECK(type == "LORA", path, ": peft_type '", type, "' is not supported (only LORA)");
  LR_CHECK(!field(j, "lora_bias", false, path), path,
           ": lora_bias is true (a bias on every lora_B): not supported, lowrank's LoRA has none");
  const ojson m = j.value("modules_to_save", ojson(nullptr));
  LR_CHECK(m.is_null() || m.empty(), path, ": modules_to_save ", m.dump(), " (full module copies) is not supported");
  LR_CHECK(j.value("layer_replication", ojson(nullptr)).is_null(), path, ": layer_replication is not supported");
  LR_CHECK(j.contains("r") && j.contains("lora_alpha"), path, ": 'r' or 'lora_alpha' missing");
  LR_CHECK(j.at("r").is_number_integer(), path, ": field 'r' is ", j.at("r").dump(), ", not an integer");
  LR_CHECK(j.at("lora_alpha").is_number(), path, ": field 'lora_alpha' is ", j.at("lora_alpha").dump(),
           ", not a number");
  for (const char* name : {"alpha_pattern", "rank_pattern"}) {
    const ojson patterns = j.value(name, ojson::object());
    LR_CHECK(patterns.is_object(), path, ": field '", name, "' is ", patterns.dump(), ", not an object");
    for (const auto& kv : patterns.items())
      LR_CHECK(name[0] == 'a' ? kv.value().is_number() : kv.value().is_number_integer(), path, ": field '", name,
               "' entry '", kv.key(), "' is ", kv.value().dump(), ", not ", name[0] == 'a' ? "a number" : "an integer");
  }
}

// Sorts the file's tensors into modules (A, B) and biases, in lowrank names.
void parse_tensors(PeftFiles& p, nn::GPT& model) {
  std::set<std::string> slots;
  for (const detail::LinearSlot& s : detail::linear_slots(model)) slots.insert(s.prefix);
  const std::string root = "base_model.model.";
  for (const auto& kv : p.st.tensors) {
    LR_CHECK(kv.first.rfind(root, 0) == 0, p.st_path, ": tensor '", kv.first, "' does not start with '", root, "'");
    std::string name = kv.first.substr(root.size());
    if (name.rfind("transformer.", 0) == 0) name = name.substr(12);
    for (const char* ab : {"lora_A.weight", "lora_B.weight"}) {
      if (!ends_with(name, ab)) continue;
      const std::string mod = name.substr(0, name.size() - 13);
      LR_CHECK(slots.count(mod), p.st_path, ": tensor '", kv.first, "' adapts '", mod,
               "': lowrank's LoRA adapts only h.{i}.attn.c_attn, attn.c_proj, mlp.c_fc, mlp.c_proj");
      (ab[5] == 'A' ? p.modules[mod].A : p.modules[mod].B) = kv.second;
      name.clear();
    }
    if (name.empty()) continue;
    for (const char* m : {".lora_magnitude_vector", ".lora_magnitude_vector.weight"})
      if (ends_with(name, m)) p.magnitudes[name.substr(0, name.find(".lora_magnitude_vector") + 1)] = kv.second;
    if (name.find(".lora_magnitude_vector") != std::string::npos) continue;
    LR_CHECK(name.find("lora_embedding_") == std::string::npos, p.st_path, ": tensor '", kv.first,
             "' is a LoRA on an embedding (peft's lora_embedding_A/B): not read, since peft's tied lm_head does not "
             "see it and lowrank's does (lowrank adapter files carry target wte)");
    LR_CHECK(name.find("lora_") == std::string::npos, p.st_path, ": tensor '", kv.first,
             "' is a LoRA bias (peft's lora_bias): not supported, lowrank's LoRA has none");
    LR_CHECK(ends_with(name, "bias"), p.st_path, ": tensor '", kv.first,
             "' is neither a LoRA matrix nor a bias (not supported)");
    if (ends_with(name, "base_layer.bias")) name = name.substr(0, name.size() - 15) + "bias";
    p.biases[name] = kv.second;
  }
  for (const auto& kv : p.modules)
    LR_CHECK(kv.second.A.defined() && kv.second.B.defined(), p.st_path, ": module '", kv.first, "' lacks lora_",
             kv.second.A.defined() ? "B" : "A", ".weight");
}

// peft's rank and scaling of one module: r / lora_alpha, or their rank_pattern / alpha_pattern
// entries (peft_patterns.cpp), alpha over R (sqrt(R) for rsLoRA). The rank must be the file's.
float scale_of(const PeftFiles& p, const std::string& mod, int64_t R) {
  const std::string full = "transformer." + mod.substr(0, mod.size() - 1);
  const ojson* rank = detail::pattern_value(p.cfg, "rank_pattern", full, p.cfg_path);
  const int64_t r = rank ? rank->get<int64_t>() : p.cfg.at("r").get<int64_t>();
  LR_CHECK(r == R, p.cfg_path, ": module ", full, " has rank ", r, " by ", rank ? "its 'rank_pattern' entry" : "'r'",
           " but ", p.st_path, " holds rank ", R);
  const ojson* a = detail::pattern_value(p.cfg, "alpha_pattern", full, p.cfg_path);
  const float alpha = a ? a->get<float>() : p.cfg.at("lora_alpha").get<float>();
  const bool rs = field(p.cfg, "use_rslora", false, p.cfg_path);
  const float denom = rs ? std::sqrt(static_cast<float>(R)) : static_cast<float>(R);
  return alpha / denom;
}

int64_t layer_of(const std::string& prefix) { return std::stoll(prefix.substr(2, prefix.find('.', 2) - 2)); }

// True when B (3C, R) has our per-slice layout for `slices` of rank r: zero outside the blocks.
bool block_layout(const PeftModule& pm, const std::vector<std::string>& slices, int64_t r) {
  // check_shapes ran first; the (3C, R) shape is checked again here, before B is read
  if (pm.A.ndim() != 2 || pm.B.ndim() != 2 || pm.B.size(1) != pm.A.size(0) || pm.B.size(0) % 3 != 0) return false;
  const int64_t R = pm.A.size(0), C = pm.B.size(0) / 3;
  if (slices.empty() || R != r * static_cast<int64_t>(slices.size())) return false;
  const float* b = pm.B.data();
  for (int64_t row = 0; row < 3 * C; ++row)
    for (int64_t col = 0; col < R; ++col)
      if (detail::slice_index(slices[static_cast<size_t>(col / r)]) != row / C && b[row * R + col] != 0.f) return false;
  return true;
}

// Our per-slice config, when the file was written by save_peft and still has that layout.
bool lowrank_slices(const PeftFiles& p, LoRAConfig& meta) {
  auto it = p.st.metadata.find("lowrank.lora.config");
  if (it == p.st.metadata.end()) return false;
  try {
    meta = detail::config_from_json(json::parse(it->second), p.st_path);
  } catch (const std::exception&) {
    return false;  // not ours after all: import the general way
  }
  std::vector<std::string> slices;
  for (const std::string& t : meta.targets)
    if (detail::slice_index(t) >= 0) slices.push_back(t);
  std::sort(slices.begin(), slices.end(),
            [](auto& a, auto& b) { return detail::slice_index(a) < detail::slice_index(b); });
  meta.targets = slices;
  for (const auto& kv : p.modules)
    if (kind_of(kv.first) == "attn.c_attn" && !block_layout(kv.second, slices, meta.r)) return false;
  return true;
}

// The per-slice layout read off the tensors alone, for a file that lost our metadata (peft's
// save_pretrained writes none): every c_attn B made of runs of r columns, each run in the rows of one
// slice, the same slices in every layer. r is the other modules' rank when there are any (their
// rank is lowrank's one r), else the largest number of slices (3, 2, 1) that gives such runs.
bool slices_from_tensors(const PeftFiles& p, LoRAConfig& meta) {
  std::vector<const PeftModule*> qkv;
  int64_t other = 0;
  for (const auto& kv : p.modules)
    if (kind_of(kv.first) == "attn.c_attn")
      qkv.push_back(&kv.second);
    else
      other = kv.second.A.size(0);
  if (qkv.empty()) return false;
  const int64_t R = qkv.front()->A.size(0);
  std::vector<int64_t> ranks;
  if (other > 0)
    ranks.push_back(other);
  else
    for (int64_t n = 3; n >= 1; --n)
      if (R % n == 0) ranks.push_back(R / n);
  for (int64_t r : ranks) {
    const std::vector<std::string> slices = detail::block_slices(*qkv.front(), r);
    bool all = !slices.empty();
    for (const PeftModule* m : qkv) all = all && detail::block_slices(*m, r) == slices;
    if (!all) continue;
    meta.r = r;
    meta.targets = slices;
    return true;
  }
  return false;
}

void check_shapes(const PeftFiles& p, const std::string& mod, const PeftModule& pm, const nn::Linear& m) {
  const bool ok = pm.A.ndim() == 2 && pm.B.ndim() == 2 && pm.A.size(1) == m.in_features() &&
                  pm.B.size(0) == m.out_features() && pm.B.size(1) == pm.A.size(0);
  LR_CHECK(ok, p.st_path, ": tensors '", kPeftPrefix, mod, "lora_A.weight' ", pm.A.shape(), " and 'lora_B.weight' ",
           pm.B.shape(), " do not fit a ", m.in_features(), " -> ", m.out_features(), " module (expected (R, ",
           m.in_features(), ") and (", m.out_features(), ", R))");
}

// One LoRAConfig for the whole adapter: the same modules in every adapted layer, one rank (c_attn's
// per slice) and one scale; decided before the model is touched.
LoRAConfig infer_config(const PeftFiles& p, nn::GPT& model) {
  LR_CHECK(!p.modules.empty(), p.st_path, ": no lora_A / lora_B tensors");
  std::map<std::string, nn::Linear*> slot;
  for (const detail::LinearSlot& s : detail::linear_slots(model)) slot[s.prefix] = s.module->get();
  std::map<int64_t, std::set<std::string>> kinds;
  for (const auto& kv : p.modules) kinds[layer_of(kv.first)].insert(kind_of(kv.first));
  const std::set<std::string>& first = kinds.begin()->second;
  for (const auto& kv : kinds)
    LR_CHECK(kv.second == first, p.st_path, ": h.", kv.first, " and h.", kinds.begin()->first,
             " adapt different modules: not expressible as one LoRAConfig");
  LR_CHECK(first.count("mlp.c_fc") == first.count("mlp.c_proj"), p.st_path,
           ": adapts only one of mlp.c_fc, mlp.c_proj (lowrank's target 'mlp' adapts both)");
  for (const auto& kv : p.modules) check_shapes(p, kv.first, kv.second, *slot.at(kv.first));  // before any read
  for (const auto& kv : p.magnitudes) {
    LR_CHECK(p.modules.count(kv.first), p.st_path, ": a lora_magnitude_vector for '", kv.first, "', which has no LoRA");
    const int64_t out = slot.at(kv.first)->out_features();
    LR_CHECK(kv.second.ndim() == 1 && kv.second.size(0) == out, p.st_path, ": '", kv.first,
             "lora_magnitude_vector' has shape ", kv.second.shape(), ", expected (", out, ",)");
  }
  LoRAConfig meta;
  // pissa's factorisation covers the whole fused c_attn: no per-slice layout; DoRA's magnitude fits one
  // only when the slices without an adapter keep factor 1
  const std::string init = detail::peft_init(p.cfg.value("init_lora_weights", ojson(nullptr)), p.cfg_path);
  const bool pissa = init != "gaussian";
  bool blocks = !pissa && (lowrank_slices(p, meta) || slices_from_tensors(p, meta));
  for (const auto& kv : p.magnitudes)
    if (blocks && kind_of(kv.first) == "attn.c_attn")
      blocks = detail::magnitude_fits_slices(kv.second, *slot.at(kv.first), meta.targets);
  int64_t r = 0;
  float scale = 0.f;
  for (const auto& kv : p.modules) {
    const int64_t R = kv.second.A.size(0);
    const int64_t rank = (blocks && kind_of(kv.first) == "attn.c_attn") ? meta.r : R;
    const float s = scale_of(p, kv.first, R);
    if (r == 0) r = rank, scale = s;
    LR_CHECK(rank == r && std::fabs(s - scale) <= 1e-6f * std::fabs(scale), p.st_path, ": module ", kv.first,
             " has rank ", rank, " and scale ", s, ", others ", r, " and ", scale,
             " (lowrank's LoRAConfig has one r and one alpha)");
  }
  LoRAConfig cfg;
  cfg.targets.clear();
  if (first.count("attn.c_attn")) {
    if (blocks)
      cfg.targets = meta.targets;
    else
      cfg.targets.push_back("c_attn");
  }
  if (first.count("attn.c_proj")) cfg.targets.push_back("o");
  if (first.count("mlp.c_fc")) cfg.targets.push_back("mlp");
  if (static_cast<int64_t>(kinds.size()) != model.config.n_layer)
    for (const auto& kv : kinds) cfg.layers.push_back(kv.first);
  cfg.r = r;
  cfg.use_rslora = field(p.cfg, "use_rslora", false, p.cfg_path);
  cfg.alpha = scale * (cfg.use_rslora ? std::sqrt(static_cast<float>(r)) : static_cast<float>(r));
  cfg.dropout = field(p.cfg, "lora_dropout", 0.f, p.cfg_path);
  cfg.bias = field(p.cfg, "bias", std::string("none"), p.cfg_path);
  cfg.use_dora = field(p.cfg, "use_dora", false, p.cfg_path);
  cfg.init_lora_weights = init;
  for (const auto& kv : p.modules)
    LR_CHECK(p.magnitudes.count(kv.first) == (cfg.use_dora ? 1u : 0u), p.st_path, ": module ", kv.first,
             cfg.use_dora ? " lacks its lora_magnitude_vector (use_dora is true)"
                          : " has a lora_magnitude_vector but use_dora is false");
  return detail::config_from_json(detail::config_to_json(cfg), p.cfg_path);  // validates, naming the file
}

void import_modules(const PeftFiles& p, nn::GPT& model) {
  for (const detail::LinearSlot& s : detail::linear_slots(model)) {
    auto it = p.modules.find(s.prefix);
    if (it == p.modules.end()) continue;
    LoRAModule* l = as_lora(s.module->get());
    LR_CHECK(l != nullptr, "load_peft: ", s.prefix, " has no LoRA module to load into");
    l->from_peft(it->second.A, it->second.B);
    auto mag = p.magnitudes.find(s.prefix);
    if (mag != p.magnitudes.end()) detail::set_peft_magnitude(**s.module, mag->second, p.st_path + ": " + s.prefix);
  }
}

}  // namespace

void load_peft(const std::string& dir, nn::GPT& model) {
  LR_CHECK(!detail::has_lora(model), dir, ": load_peft applies the adapter itself; the model must be a plain GPT");
  PeftFiles p;
  p.cfg_path = dir + "/adapter_config.json";
  p.st_path = dir + "/adapter_model.safetensors";
  p.cfg = read_json(p.cfg_path);
  check_supported(p.cfg, p.cfg_path);  // every field read below has its type checked here
  p.st = load_safetensors(p.st_path);
  parse_tensors(p, model);
  std::map<std::string, Tensor> params = nn::state_dict(model);
  for (const auto& kv : p.biases) {
    LR_CHECK(params.count(kv.first), p.st_path, ": bias '", kv.first, "' is not a parameter of this model");
    LR_CHECK(params.at(kv.first).shape() == kv.second.shape(), p.st_path, ": bias '", kv.first, "' has shape ",
             kv.second.shape(), ", expected ", params.at(kv.first).shape());
  }
  LoRAConfig cfg;
  try {
    cfg = infer_config(p, model);
  } catch (const json::exception& e) {
    throw Error(cat(p.cfg_path, ": unexpected field type: ", e.what()));
  }
  Rng rng(0);  // A's random init is overwritten by the file's
  apply_lora(model, cfg, rng);
  import_modules(p, model);
  for (const auto& kv : p.biases) params.at(kv.first).copy_(kv.second);
}

}  // namespace lowrank::lora
