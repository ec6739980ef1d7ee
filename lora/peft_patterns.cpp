// peft's per-module settings and the per-slice layout of a c_attn LoRA (used by peft_load.cpp).
//
// rank_pattern / alpha_pattern: peft (utils/other.py, get_pattern_key) takes the first key, in the
// file's order, for which the regular expression "(.*\.)?(<key>)$" matches the module's full name in
// the base model ("transformer.h.0.attn.c_attn"); "c_attn", "h\.0\.attn\.c_attn" and "h\.[0-3]\..*"
// are all keys. std::regex's ECMAScript grammar reads these the way Python's re does; a key it
// cannot compile (Python-only syntax such as "(?P<n>...)") is an error naming the key.
#include <regex>

#include "lora/internal.h"
#include "tensor/error.h"

namespace lowrank::lora::detail {

namespace {

bool key_matches(const std::string& key, const std::string& module, const std::string& path, const char* field) {
  try {
    return std::regex_match(module, std::regex("(.*\\.)?(" + key + ")$"));
  } catch (const std::regex_error& e) {
    throw Error(cat(path, ": field '", field, "' key '", key, "' is not a regular expression this reader takes (",
                    e.what(), ")"));
  }
}

}  // namespace

const nlohmann::ordered_json* pattern_value(const nlohmann::ordered_json& cfg, const char* field,
                                            const std::string& module, const std::string& path) {
  auto it = cfg.find(field);
  if (it == cfg.end() || it->is_null()) return nullptr;
  for (auto kv = it->begin(); kv != it->end(); ++kv)
    if (key_matches(kv.key(), module, path, field)) return &kv.value();
  return nullptr;
}

// Per slice of c_attn's B (3C, R): the runs of r columns each touch the rows of one slice, in q, k, v
// order. Returns those slices, or {} when B does not have that structure (a general c_attn LoRA).
std::vector<std::string> block_slices(const PeftModule& pm, int64_t r) {
  if (pm.B.ndim() != 2 || pm.B.size(0) % 3 != 0 || r <= 0 || pm.B.size(1) % r != 0) return {};
  const int64_t R = pm.B.size(1), C = pm.B.size(0) / 3, n = R / r;
  if (n > 3) return {};
  const float* b = pm.B.data();
  std::vector<std::string> slices;
  int last = -1;
  for (int64_t run = 0; run < n; ++run) {
    int slice = -1;
    for (int64_t row = 0; row < 3 * C; ++row)
      for (int64_t col = run * r; col < (run + 1) * r; ++col) {
        if (b[row * R + col] == 0.f) continue;
        const int s = static_cast<int>(row / C);
        if (slice >= 0 && s != slice) return {};  // this run reaches two slices
        slice = s;
      }
    if (slice <= last) return {};  // an all-zero run, or out of q, k, v order
    last = slice;
    slices.push_back(std::string(1, "qkv"[slice]));
  }
  return slices;
}

}  // namespace lowrank::lora::detail
