#pragma once
// Running the real example binaries from tests (test_cli.cpp, test_e2e_score.cpp, test_hf_cli.cpp):
// their exit status, stdout and stderr.
#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/bpe.h"
#include "nn/hf_gpt2.h"
#include "test_util.h"

namespace lowrank::testing {

// GPT-2's BPE (data/assets/gpt2-bpe), loaded once: the tokenizer of the GPT-2-vocabulary CLI tests.
inline const data::Gpt2Bpe& gpt2_bpe() {
  static const data::Gpt2Bpe tok = data::Gpt2Bpe::from_dir(std::string(LOWRANK_SOURCE_DIR) + "/data/assets/gpt2-bpe");
  return tok;
}

// A JSON Lines file (generate's --output), one value per line.
inline std::vector<nlohmann::json> read_json_lines(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::istringstream in(read_bytes(path));
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

// A JSON file, parsed.
inline nlohmann::json read_json_file(const std::string& path) { return nlohmann::json::parse(read_bytes(path)); }

// A one-layer GPT (2 heads, random weights from seed 3) with GPT-2 BPE's vocabulary, saved as a Hugging
// Face directory at dir: the --init of the CLI tests. Width 32 puts every frozen product above the thin
// GEMMs' size of 16 (the bf16 tests need that); 16 is the smallest and fastest.
inline std::string write_tiny_hf_base(const std::string& dir, int64_t n_embd = 16, int64_t n_positions = 64) {
  nn::GPTConfig c;
  c.vocab_size = 50257;
  c.n_positions = n_positions;
  c.n_embd = n_embd;
  c.n_layer = 1;
  c.n_head = 2;
  Rng rng(3);
  nn::GPT base(c, rng);
  nn::save_hf_dir(dir, base);
  return dir;
}

struct Run {
  int rc = -1;
  std::string out, err;
};

// Runs a shell command line, returning its exit status and output.
inline Run run_command(const std::string& command, const TempDir& tmp) {
  const std::string out_path = tmp.file("stdout.txt"), err_path = tmp.file("stderr.txt");
  const std::string cmd = command + " >" + out_path + " 2>" + err_path;
  const int status = std::system(cmd.c_str());
  Run r;
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = read_bytes(out_path);
  r.err = read_bytes(err_path);
  std::remove(out_path.c_str());
  std::remove(err_path.c_str());
  return r;
}

// The path of build/<binary>.
inline std::string example_path(const std::string& binary) { return std::string(LOWRANK_BINARY_DIR) + "/" + binary; }

// Runs build/<binary> with args (a shell command line fragment), returning its exit status and output.
inline Run run_example(const std::string& binary, const std::string& args, const TempDir& tmp) {
  return run_command(example_path(binary) + " " + args, tmp);
}

// Exit status 1, one line "error: ... <expect> ...", and nothing left in tmp.
inline void check_refused(const std::string& binary, const std::string& args, const std::string& expect) {
  TempDir tmp("cli");
  CAPTURE(binary + " " + args);
  const Run r = run_example(binary, args, tmp);
  CAPTURE(r.err);
  CHECK(r.rc == 1);
  CHECK(r.err.rfind("error: ", 0) == 0);
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  CHECK(contains(r.err, expect));
  CHECK(tmp.entries().empty());
}

}  // namespace lowrank::testing
