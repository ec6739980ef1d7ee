#pragma once
// The measurements of examples/bench_adapters.cpp: a task switch against a checkpoint load, the memory
// of N adapters on one base against N models, and decoding throughput of mixed-adapter batches.
// Random weights throughout (timing and memory do not depend on them).
#include <stdlib.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "examples/common/cli.h"
#include "lora/adapter_set.h"
#include "nn/checkpoint.h"
#include "nn/generate.h"

namespace lowrank::examples {

// A fresh folder under the system's temp directory, removed with everything in it at the end.
struct ScratchDir {
  std::string path;
  explicit ScratchDir(const std::string& tag) {
    std::string t = (std::filesystem::temp_directory_path() / (tag + ".XXXXXX")).string();
    LR_CHECK(mkdtemp(t.data()) != nullptr, "cannot make a folder ", t);
    path = t;
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
};

// Resident set size now (not the peak), from /proc/self/statm, in MB (1e6 bytes).
inline double rss_mb() {
  long pages = 0, resident = 0;
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f) {
    if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) / 1e6;
}

// A base of `shape` with random weights, written to dir/base-SHAPE.safetensors (fp32).
inline std::string write_base(const std::string& shape, const std::string& dir) {
  Rng rng(1);
  nn::GPT model(nn::config_by_name(shape), rng);
  const std::string path = dir + "/base-" + shape + ".safetensors";
  nn::save_model(path, model);
  return path;
}

// An adapter of the base at `base` (LoRA r on targets, B random as after training), written to path.
inline void write_adapter(const std::string& base, const lora::LoRAConfig& cfg, uint64_t seed,
                          const std::string& path) {
  Rng rng(seed);
  std::unique_ptr<nn::GPT> m = nn::load_model(base, rng);
  lora::apply_lora(*m, cfg, rng);
  for (nn::NamedTensor& p : m->named_parameters())
    if (p.tensor.requires_grad()) p.tensor.copy_(Tensor::randn(p.tensor.shape(), rng, 0.02f));
  lora::save_adapter(path, *m, cfg);
}

inline lora::LoRAConfig lora_cfg(int64_t r, std::vector<std::string> targets) {
  lora::LoRAConfig c;
  c.r = r;
  c.alpha = 2.f * static_cast<float>(r);
  c.targets = std::move(targets);
  return c;
}

// One task switch (unmerge the active adapter, merge the next) against loading the whole checkpoint,
// medians over `repeats`.
inline nlohmann::json switch_row(const std::string& shape, const std::string& dir, int repeats) {
  const std::string base = write_base(shape, dir), a = dir + "/a.safetensors", b = dir + "/b.safetensors";
  write_adapter(base, lora_cfg(4, {"q", "v"}), 2, a);
  write_adapter(base, lora_cfg(4, {"q", "v"}), 3, b);
  std::vector<double> load, adapter_load, sw;
  for (int i = 0; i < repeats; ++i) {
    Rng rng(1);
    Timer t;
    std::unique_ptr<nn::GPT> m = nn::load_model(base, rng);
    load.push_back(t.seconds());
  }
  Rng rng(1);
  std::unique_ptr<nn::GPT> model = nn::load_model(base, rng);
  lora::AdapterSet set(*model);
  for (int i = 0; i < repeats; ++i) {
    Timer t;
    set.load("x" + std::to_string(i), a);
    adapter_load.push_back(t.seconds());
  }
  set.load("a", a);
  set.load("b", b);
  set.activate("a");
  for (int i = 0; i < 2 * repeats; ++i) {
    Timer t;
    set.activate(i % 2 ? "a" : "b");
    sw.push_back(t.seconds());
  }
  return {{"shape", shape},
          {"params", model->num_parameters()},
          {"checkpoint_load_s", median(load)},
          {"adapter_load_s", median(adapter_load)},
          {"switch_s", median(sw)},
          {"checkpoint_bytes", std::filesystem::file_size(base)},
          {"adapter_bytes", std::filesystem::file_size(a)}};
}

// What one process holds (RSS growth in MB) after loading the base at `base` and n copies of the
// adapter at `adapter` into one set ("adapters"), or n whole models ("models"). Each count is measured
// in a fresh process (bench_adapters --rss-child): freed blocks stay in the allocator's cache
// (tensor/storage.cpp), so one process could not measure both from a clean start.
inline double rss_child(const std::string& kind, const std::string& base, const std::string& adapter, int64_t n) {
  const double rss0 = rss_mb();
  Rng rng(1);
  std::vector<std::unique_ptr<nn::GPT>> models;
  models.push_back(nn::load_model(base, rng));
  if (kind == "models") {
    while (static_cast<int64_t>(models.size()) < n) models.push_back(nn::load_model(base, rng));
    return rss_mb() - rss0;
  }
  lora::AdapterSet set(*models.front());
  for (int64_t i = 0; i < n; ++i) set.load("a" + std::to_string(i), adapter);
  return rss_mb() - rss0;
}

}  // namespace lowrank::examples
