#include "lora/adapter_set.h"

#include <filesystem>

#include "autograd/ops.h"
#include "autograd/tape.h"
#include "lora/internal.h"
#include "lora/segmented.h"
#include "tensor/error.h"

namespace lowrank::lora {

namespace {

void share(nn::Linear& dst, const nn::Linear& src) {
  dst.weight = src.weight;
  dst.bias = src.bias;
}
void share(nn::LayerNorm& dst, const nn::LayerNorm& src) {
  dst.weight = src.weight;
  dst.bias = src.bias;
}

// dst (a GPT of src's config on the meta device) takes src's parameter tensors: the same storage, so
// an adapter applied to dst reads the base's W0 without a copy of it.
void share_parameters(nn::GPT& dst, const nn::GPT& src) {
  dst.wte.weight = src.wte.weight;
  dst.wpe.weight = src.wpe.weight;
  share(dst.ln_f, src.ln_f);
  for (size_t i = 0; i < src.h.size(); ++i) {
    nn::Block& d = *dst.h[i];
    const nn::Block& s = *src.h[i];
    share(d.ln_1, s.ln_1);
    share(d.ln_2, s.ln_2);
    share(*d.attn.c_attn, *s.attn.c_attn);
    share(*d.attn.c_proj, *s.attn.c_proj);
    share(*d.mlp.c_fc, *s.mlp.c_fc);
    share(*d.mlp.c_proj, *s.mlp.c_proj);
  }
}

ModuleDelta delta_of(const LoRAModule& m, Device device) {
  std::pair<Tensor, Tensor> ab = m.to_peft();  // A (R, in), B (out, R) with ΔW = scale · B A
  return {ab.first.contiguous().to(device), ab.second.contiguous().to(device), m.lora_scale()};
}

void check_plain(nn::GPT& model) {
  LR_CHECK(!detail::has_lora(model) && !model.wte.delta,
           "AdapterSet: the model already has LoRA modules (give the set the plain base)");
  LR_CHECK(!model.prefix_embed.defined(), "AdapterSet: the model has a learned prefix (give the set the plain base)");
  for (const auto& b : model.h)
    LR_CHECK(!b->adapter_attn && !b->adapter_mlp && !b->attn.prefix_k.defined(),
             "AdapterSet: the model has adapter layers or prefixes (give the set the plain base)");
}

}  // namespace

AdapterSet::AdapterSet(nn::GPT& model) : model_(model), status_(std::make_shared<SetStatus>()) {
  check_plain(model);
  hash_ = lora::base_hash(model);
  for (const detail::LinearSlot& s : detail::linear_slots(model)) {
    slots_.push_back(std::make_shared<SlotTable>());
    *s.module = std::make_unique<SegmentedLinear>(**s.module, slots_.back(), status_);
  }
}

AdapterSet::~AdapterSet() {
  try {
    activate("");
  } catch (...) {  // a destructor must not throw; W then keeps the merged adapter
  }
  for (const detail::LinearSlot& s : detail::linear_slots(model_)) *s.module = shared_linear(**s.module);
}

AdapterSet::Entry AdapterSet::read_entry(const std::string& name, const std::string& path) const {
  std::error_code ec;
  LR_CHECK(std::filesystem::exists(path, ec), "adapter '", name, "': ", path, ": no such file or directory");
  Rng rng(0);  // A's random init, overwritten by the file's
  nn::GPT probe(model_.config, rng, Device::Meta);
  share_parameters(probe, model_);
  if (std::filesystem::is_directory(path, ec)) {
    load_peft(path, probe);
  } else {
    apply_lora(probe, read_adapter_config(path), rng);
    load_adapter(path, probe, hash_);  // W0's hash from before any switch moved it
  }
  Entry e;
  e.info.name = name;
  e.info.path = path;
  e.info.config = lora_config_of(probe);
  LR_CHECK(e.info.config.bias == "none", "adapter '", name, "': ", path, " trains biases (bias=", e.info.config.bias,
           "): a set holds low-rank deltas only");
  LR_CHECK(!e.info.config.use_dora, "adapter '", name, "': ", path,
           " is DoRA (use_dora), which rescales W0's rows: a set holds low-rank deltas only (serve a merged export)");
  const Device device = model_.wte.weight.device();
  const std::vector<detail::LinearSlot> slots = detail::linear_slots(probe);
  for (size_t i = 0; i < slots.size(); ++i) {
    const LoRAModule* m = as_lora(slots[i].module->get());
    if (!m) continue;
    e.modules.emplace_back(i, delta_of(*m, device));
    e.info.params += e.modules.back().second.A.numel() + e.modules.back().second.B.numel();
  }
  if (const LoRAModule* m = embedding_lora(probe)) {
    e.wte = delta_of(*m, device);
    e.info.params += e.wte.A.numel() + e.wte.B.numel();
    e.info.embedding = true;
  }
  return e;
}

int32_t AdapterSet::load(const std::string& name, const std::string& path) {
  LR_CHECK(!name.empty(), "AdapterSet::load: an adapter needs a name (\"\" is the base)");
  LR_CHECK(!has(name), "AdapterSet::load: an adapter named '", name, "' is already loaded");
  auto e = std::make_unique<Entry>(read_entry(name, path));  // every check before the set changes
  size_t s = 0;
  while (s < entries_.size() && entries_[s]) ++s;
  if (s == entries_.size()) {
    entries_.emplace_back();
    status_->loaded.push_back(0);
    status_->embedding.push_back(0);
    for (auto& t : slots_) t->deltas.emplace_back();
  }
  for (const auto& [i, d] : e->modules) slots_[i]->deltas[s] = d;
  status_->embedding[s] = e->info.embedding;
  entries_[s] = std::move(e);
  status_->loaded[s] = 1;
  return static_cast<int32_t>(s);
}

void AdapterSet::unload(const std::string& name) {
  const auto s = static_cast<size_t>(slot(name));
  if (status_->active == name) activate("");
  for (auto& t : slots_) t->deltas[s] = ModuleDelta{};
  entries_[s].reset();
  status_->loaded[s] = 0;
}

// W += sign · scale · B A for every module the adapter adapts (E += sign · scale · Aᵀ Bᵀ for wte).
void AdapterSet::merge_entry(const Entry& e, float sign) {
  autograd::NoGradGuard no_grad;
  const std::vector<detail::LinearSlot> slots = detail::linear_slots(model_);
  for (const auto& [i, d] : e.modules) (*slots[i].module)->weight.add_(autograd::matmul(d.B, d.A), sign * d.scale);
  if (e.wte.A.defined()) model_.wte.weight.add_(autograd::matmul(e.wte.A, e.wte.B, true, true), sign * e.wte.scale);
}

void AdapterSet::activate(const std::string& name) {
  if (name == status_->active) return;
  const Entry* next = name.empty() ? nullptr : entries_[static_cast<size_t>(slot(name))].get();
  if (!status_->active.empty()) merge_entry(*entries_[static_cast<size_t>(slot(status_->active))], -1.f);
  status_->active.clear();
  if (next) merge_entry(*next, 1.f);
  status_->active = name;
}

const std::string& AdapterSet::active() const { return status_->active; }

int32_t AdapterSet::slot(const std::string& name) const {
  for (size_t s = 0; s < entries_.size(); ++s)
    if (entries_[s] && entries_[s]->info.name == name) return static_cast<int32_t>(s);
  std::string known;
  for (const auto& e : entries_)
    if (e) known += (known.empty() ? "" : ", ") + e->info.name;
  throw Error("unknown adapter '" + name + "' (loaded: " + (known.empty() ? "none" : known) + ")");
}

bool AdapterSet::has(const std::string& name) const {
  for (const auto& e : entries_)
    if (e && e->info.name == name) return true;
  return false;
}

std::vector<AdapterInfo> AdapterSet::adapters() const {
  std::vector<AdapterInfo> out;
  for (const auto& e : entries_)
    if (e) out.push_back(e->info);
  return out;
}

int64_t AdapterSet::adapter_params() const {
  int64_t n = 0;
  for (const auto& e : entries_)
    if (e) n += e->info.params;
  return n;
}

}  // namespace lowrank::lora
