#pragma once
// Many LoRA adapters on one frozen base (Hu et al., 2021). Section 4.1: a deployed LoRA model switches
// tasks "by subtracting BA and then adding B'A'", so many customised models share one copy of W0.
// Section 4.2: with BA merged into W, inputs of different tasks cannot share a forward pass, "though
// it is possible to not merge the weights and dynamically choose the LoRA modules to use for samples
// in a batch". AdapterSet does both:
//
//   lora::AdapterSet set(model);                   // model: a plain GPT, no LoRA applied
//   set.load("sql", "adapters/sql.safetensors");    // lowrank's file (base hash checked) or a peft dir
//   set.load("chat", "adapters/chat-peft");         // each adapter its own rank, alpha and targets
//   set.activate("sql");     // merged: W = W0 + ΔW_sql in place, then forwards cost what the base costs
//   set.activate("");        // back to W0
//   std::vector<int32_t> rows = {set.slot("sql"), -1, set.slot("chat")};  // per batch row; -1: the base
//   ctx.row_adapters = &rows;  // nn::Context: unmerged, every row gets its own adapter
//
// Merged mode (activate): W -= ΔW_old, W += ΔW_new, computed from the adapter's (A, B) in peft's
// layout (ΔW = scale · B A; the embedding's ΔE = scale · Aᵀ Bᵀ). After k switches W0 differs from the
// original by float rounding only, a few ulps per switch (tests/test_adapter_set.cpp states the bound).
// Unmerged mode (row_adapters, no adapter active): each adapted linear computes x W0ᵀ + b once for the
// whole batch, then for every adapter present adds scale · (x_rows Aᵀ) Bᵀ on that adapter's rows: two
// thin GEMMs per adapter over its gathered rows (lora/segmented.cpp), the segmented GEMM of Punica and
// S-LoRA (on a GPU: two cuBLAS GEMMs per run of rows that share an adapter). Inference only (under
// autograd::NoGradGuard); adapters on the token embedding ("wte") are served merged only.
//
// The set replaces the base's linears by modules that share W0 and b (no copy) and read the set's
// tables; ~AdapterSet puts plain linears back, after unmerging the active adapter.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "lora/lora.h"
#include "nn/gpt.h"

namespace lowrank::lora {

struct SetStatus;  // lora/segmented.h

// One adapter's update of one module in peft's layout: ΔW = scale · B A.
struct ModuleDelta {
  Tensor A;  // (R, in)
  Tensor B;  // (out, R)
  float scale = 1.f;
};

struct AdapterInfo {
  std::string name, path;
  LoRAConfig config;       // r, alpha, targets as the file gives them
  int64_t params = 0;      // floats of its A and B
  bool embedding = false;  // adapts wte: served merged only
};

// The per-module table the set's linears read: deltas[slot] is that adapter's update, or A undefined.
struct SlotTable {
  std::vector<ModuleDelta> deltas;
};

class AdapterSet {
 public:
  explicit AdapterSet(nn::GPT& model);  // a plain GPT (no LoRA modules, no wte delta)
  ~AdapterSet();
  AdapterSet(const AdapterSet&) = delete;
  AdapterSet& operator=(const AdapterSet&) = delete;

  // Reads the adapter at path (lowrank's .safetensors or a peft directory) under `name`. Checks its
  // base (lowrank's files carry the hash of W0, computed here once, before any switch), its shapes and
  // its config; on any error the set and the model are left as they were. Returns its slot.
  int32_t load(const std::string& name, const std::string& path);
  void unload(const std::string& name);  // unmerges it first when active; its slot is reused later
  // Merged mode: "" is the base. Throws for an unknown name, leaving the active adapter as it was.
  void activate(const std::string& name);
  const std::string& active() const;

  int32_t slot(const std::string& name) const;  // throws naming the adapter when unknown
  bool has(const std::string& name) const;
  std::vector<AdapterInfo> adapters() const;    // loaded adapters, by name
  int64_t adapter_params() const;               // floats of every loaded A and B
  uint64_t base_hash() const { return hash_; }  // W0's, as lora::base_hash computed it at construction

 private:
  struct Entry {
    AdapterInfo info;
    std::vector<std::pair<size_t, ModuleDelta>> modules;  // (index into slots_, delta)
    ModuleDelta wte;                                      // A (r, V), B (C, r), or A undefined
  };
  void merge_entry(const Entry& e, float sign);
  Entry read_entry(const std::string& name, const std::string& path) const;

  nn::GPT& model_;
  uint64_t hash_;
  std::vector<std::shared_ptr<SlotTable>> slots_;  // one per linear_slots(model) entry
  std::vector<std::unique_ptr<Entry>> entries_;    // by slot; null where unloaded
  std::shared_ptr<SetStatus> status_;              // loaded slots and the merged adapter, shared with the linears
};

}  // namespace lowrank::lora
