#pragma once
// Shared by the libFuzzer harnesses of tests/fuzz/ (and by make_seeds, which writes their seed corpora).
//
// The loaders take paths, so each input is written to a file in a scratch directory of this process
// ($TMPDIR or /tmp, "lowrank_fuzz.<pid>", removed at exit) and the loader reads it back. A loader may
// fail only with lowrank::Error: `loads` catches exactly that type, so any other exception escapes the
// harness, std::terminate aborts, and libFuzzer reports the input as a crash, as it does for an ASan or
// UBSan finding. Broken invariants call `finding`, which aborts the same way with a message.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lora/lora.h"
#include "nn/checkpoint.h"
#include "nn/config.h"
#include "nn/module.h"
#include "tensor/error.h"

namespace lowrank::fuzz {

// The scratch directory, made on first use and removed when the process exits normally. The string is
// never destroyed: the exit handler runs after the destructors of statics made before it was registered.
inline const std::string& scratch_dir() {
  static const std::string* dir = [] {
    const char* tmp = std::getenv("TMPDIR");
    auto* d = new std::string(std::string(tmp && *tmp ? tmp : "/tmp") + "/lowrank_fuzz." + std::to_string(getpid()));
    std::filesystem::create_directories(*d);
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(scratch_dir(), ec);
    });
    return d;
  }();
  return *dir;
}

// Writes bytes to scratch_dir()/name (replacing it) and returns the path.
inline std::string write_file(const std::string& name, std::string_view bytes) {
  const std::string path = scratch_dir() + "/" + name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) std::abort();  // a full /tmp is the harness's problem, not the loader's
  return path;
}

// Runs f; true when it returned, false when it threw lowrank::Error (the promised failure).
template <typename F>
bool loads(F&& f) {
  try {
    f();
    return true;
  } catch (const Error&) {
    return false;
  }
}

// A broken promise that no sanitizer would see: print it and abort, so libFuzzer saves the input.
[[noreturn]] inline void finding(const std::string& what) {
  std::fprintf(stderr, "lowrank fuzz finding: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

// Inputs made of two files: the bytes before the first kSplit and the bytes after it (all of the
// input and "" when there is none). A fixed separator, not a length prefix, so that mutations of
// one part leave the other where it was.
inline constexpr std::string_view kSplit = "\n--lowrank-fuzz-split--\n";
inline std::pair<std::string_view, std::string_view> split(std::string_view in) {
  const size_t at = in.find(kSplit);
  if (at == std::string_view::npos) return {in, std::string_view()};
  return {in.substr(0, at), in.substr(at + kSplit.size())};
}

inline std::string_view as_view(const uint8_t* data, size_t size) {
  return std::string_view(reinterpret_cast<const char*>(data), size);
}

// The model the checkpoint and adapter harnesses load into, and make_seeds saves from: tiny, so an
// input of a few KB covers every tensor, and one iteration costs microseconds.
inline nn::GPTConfig tiny_config() {
  nn::GPTConfig c;
  c.name = "fuzz";
  c.vocab_size = 11;
  c.n_positions = 4;
  c.n_embd = 4;
  c.n_layer = 1;
  c.n_head = 2;
  return c;
}

// The base of the peft harness and seeds: the Hugging Face GPT-2 fixture the committed peft adapters
// (tests/fixtures/peft_tiny) were made on, so those load and mutations of them reach the deep checks.
inline const nn::GPTConfig& peft_base_config() {
  static const nn::GPTConfig c =
      nn::read_pretrained(std::string(LOWRANK_SOURCE_DIR) + "/tests/fixtures/tiny_gpt2").config;
  return c;
}

// The LoRA of the adapter harness and of its seeds: rank 2 on q and v.
inline lora::LoRAConfig adapter_config() {
  lora::LoRAConfig c;
  c.targets = {"q", "v"};
  c.r = 2;
  c.alpha = 8.f;
  return c;
}

// The values of some tensors (a model's parameters, an optimizer's moments), to check that a failed
// load left them exactly as they were and to put them back after a successful one, so that every
// input starts from the same state (libFuzzer wants each run of an input to behave the same).
class Snapshot {
 public:
  explicit Snapshot(std::vector<nn::NamedTensor> tensors) : tensors_(std::move(tensors)) {
    for (const nn::NamedTensor& t : tensors_) values_.push_back(t.tensor.to_vector());
  }
  // The name of the first tensor whose values (bits, so NaN compares equal to itself) changed; "" if none.
  std::string changed() const {
    for (size_t i = 0; i < tensors_.size(); ++i) {
      const std::vector<float> now = tensors_[i].tensor.to_vector();
      if (now.size() != values_[i].size() ||
          (!now.empty() && std::memcmp(now.data(), values_[i].data(), now.size() * sizeof(float)) != 0))
        return tensors_[i].name;
    }
    return "";
  }
  void restore() const {
    for (size_t i = 0; i < tensors_.size(); ++i)
      std::memcpy(tensors_[i].tensor.data(), values_[i].data(), values_[i].size() * sizeof(float));
  }

 private:
  std::vector<nn::NamedTensor> tensors_;
  std::vector<std::vector<float>> values_;
};

}  // namespace lowrank::fuzz
