#pragma once
// Option values that make no sense (a zero batch, a negative learning rate, an output folder that does
// not exist), refused in one line by parse_args before any work starts: a run never trains for an hour
// and then fails to save, and never runs on silently with nonsense. Each rule applies to every example
// that has an option of that name; what depends on a file (a rank against the model's width, --steps
// against a checkpoint's step) is checked where the file is read, still before training.
#include <cmath>
#include <cxxopts.hpp>
#include <filesystem>
#include <limits>
#include <optional>
#include <string>
#include <typeinfo>
#include <vector>

#include "tensor/error.h"

namespace lowrank::examples {

// A numeric option's value; nullopt when this example has no such option, or it is not numeric.
inline std::optional<double> numeric_option(const cxxopts::ParseResult& a, const std::string& name) {
  try {
    const cxxopts::OptionValue& v = a[name];
    try {
      return static_cast<double>(v.as<int64_t>());
    } catch (const std::bad_cast&) {}
    try {
      return static_cast<double>(v.as<int>());
    } catch (const std::bad_cast&) {}
    try {
      return static_cast<double>(v.as<float>());
    } catch (const std::bad_cast&) {}
  } catch (const cxxopts::exceptions::exception&) {  // not an option of this example, or no value
  }
  return std::nullopt;
}

// A string option's value; nullopt when this example has no such option or it has no value.
inline std::optional<std::string> string_option(const cxxopts::ParseResult& a, const std::string& name) {
  try {
    return a[name].as<std::string>();
  } catch (const cxxopts::exceptions::exception&) {
  } catch (const std::bad_cast&) {}
  return std::nullopt;
}

// --name must lie in [lo, hi) (lo excluded when lo_open); `what` says what the option means.
struct OptionRule {
  const char* name;
  double lo, hi;
  bool lo_open;
  const char* what;
};

inline const std::vector<OptionRule>& option_rules() {
  constexpr double inf = std::numeric_limits<double>::infinity();
  static const std::vector<OptionRule> rules = {
      {"batch-size", 1, inf, false, "examples per step"},
      {"accum", 1, inf, false, "micro-batches per step"},
      {"steps", 0, inf, false, "optimizer steps"},
      {"epochs", 0, inf, false, "passes over the train set"},
      {"lr", 0, inf, false, "learning rate"},
      {"min-lr", 0, inf, false, "final learning rate"},
      {"head-lr", 0, inf, false, "learning rate; 0: --lr"},
      {"warmup", 0, inf, false, "warmup steps"},
      {"weight-decay", 0, inf, false, "AdamW decay"},
      {"clip", 0, inf, false, "max gradient norm; 0: off"},
      {"dropout", 0, 1, false, "a probability"},
      {"label-smoothing", 0, 1, false, "a probability"},
      {"threads", 0, inf, false, "CPU threads; 0: all cores"},
      {"rank", 1, inf, false, "LoRA rank r"},
      {"small-rank", 1, inf, false, "LoRA rank r"},
      {"large-rank", 1, inf, false, "LoRA rank r"},
      {"table-rank", 1, inf, false, "LoRA rank r"},
      {"alpha", 0, inf, true, "LoRA alpha"},
      {"n-layer", 0, inf, false, "layers; 0: the preset's"},
      {"n-embd", 0, inf, false, "width; 0: the preset's"},
      {"n-head", 0, inf, false, "heads; 0: the preset's"},
      {"block-size", 1, inf, false, "sequence length"},
      {"eval-every", 0, inf, false, "steps; 0: only at the end"},
      {"eval-batches", 0, inf, false, "batches; 0: all"},
      {"save-every", 0, inf, false, "steps; 0: only at the end"},
      {"beam", 1, inf, false, "beam size"},
      {"decode-batch", 1, inf, false, "MRs per beam search"},
      {"max-new-tokens", 1, inf, false, "tokens"},
      {"test-mrs", 0, inf, false, "MRs; 0: all"},
      {"test-stride", 1, inf, false, "MRs"},
      {"max-len", 0, inf, false, "tokens per example"},
      {"adapter-dim", 1, inf, false, "adapter bottleneck"},
      {"prefix-len", 1, inf, false, "prefix length"},
      {"eval-batch", 1, inf, false, "examples per batch"},
      {"seq", 1, inf, false, "sequence length"},
      {"batch", 0, inf, false, "batch size"},
      {"repeats", 1, inf, false, "timed repeats"},
      {"temperature", 0, inf, true, "sampling temperature"},
      {"top-k", 0, inf, false, "tokens; 0: all"},
      {"sample", 0, inf, false, "tokens to generate"},
      {"train-examples", 0, inf, false, "examples; 0: all"},
      {"show", 0, inf, false, "texts to print"},
  };
  return rules;
}

// An output file's folder must exist now, not when the file is written at the end of the run.
inline void check_output_path(const std::string& option, const std::string& path) {
  if (path.empty()) return;
  namespace fs = std::filesystem;
  const fs::path p(path);
  const fs::path dir = p.parent_path().empty() ? fs::path(".") : p.parent_path();
  std::error_code ec;
  LR_CHECK(fs::is_directory(dir, ec), "--", option, " ", path, ": folder '", dir.string(), "' does not exist");
  LR_CHECK(!fs::is_directory(p, ec), "--", option, " ", path, ": is a folder, expected a file name");
}

// An output folder (a peft adapter, a Hugging Face model directory): its parent must exist now, and the
// name must not be a file.
inline void check_output_dir(const std::string& option, const std::string& path) {
  if (path.empty()) return;
  namespace fs = std::filesystem;
  const fs::path p = fs::path(path).lexically_normal();
  const fs::path parent = p.has_filename() ? p.parent_path() : p.parent_path().parent_path();
  std::error_code ec;
  LR_CHECK(fs::is_directory(parent.empty() ? fs::path(".") : parent, ec), "--", option, " ", path, ": folder '",
           parent.string(), "' does not exist");
  LR_CHECK(!fs::exists(p, ec) || fs::is_directory(p, ec), "--", option, " ", path, ": is a file, expected a folder");
}

// --save-adapter: lowrank's adapter file when the name ends in ".safetensors", else a peft directory.
inline bool is_peft_dir_name(const std::string& path) {
  const std::string ext = ".safetensors";
  return path.size() < ext.size() || path.compare(path.size() - ext.size(), ext.size(), ext) != 0;
}

// Every rule above for the options this example has, and the folders of its output files.
inline void check_options(const cxxopts::ParseResult& a) {
  for (const OptionRule& r : option_rules()) {
    const std::optional<double> v = numeric_option(a, r.name);
    if (!v) continue;
    const bool ok = std::isfinite(*v) && (r.lo_open ? *v > r.lo : *v >= r.lo) && *v < r.hi;
    const std::string range =
        std::isinf(r.hi) ? cat(r.lo_open ? "above " : "at least ", r.lo) : cat("in [", r.lo, ", ", r.hi, ")");
    LR_CHECK(ok, "--", r.name, " ", *v, ": must be ", range, " (", r.what, ")");
  }
  for (const char* name : {"json", "results", "save", "export", "svg", "markdown"})
    if (const std::optional<std::string> s = string_option(a, name)) check_output_path(name, *s);
  if (const std::optional<std::string> s = string_option(a, "save-adapter"))
    is_peft_dir_name(*s) ? check_output_dir("save-adapter", *s) : check_output_path("save-adapter", *s);
  if (const std::optional<std::string> s = string_option(a, "export-merged")) check_output_dir("export-merged", *s);
}

}  // namespace lowrank::examples
