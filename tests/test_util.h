#pragma once
// Helpers shared by the tests.
#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "data/tokenizer.h"
#include "nn/config.h"
#include "tensor/error.h"
#include "tensor/parallel.h"
#include "tensor/tensor.h"

namespace lowrank::testing {

// The tests' small GPT, defined once: vocabulary V, context T, width C, NH heads, L blocks; every other
// field GPTConfig's default (no dropout, n_inner 4·C, eps 1e-5). A test that needs more sets it after.
inline nn::GPTConfig tiny_config(int64_t V = 23, int64_t T = 8, int64_t C = 8, int64_t NH = 2, int64_t L = 2) {
  nn::GPTConfig c;
  c.name = "tiny";
  c.vocab_size = V;
  c.n_positions = T;
  c.n_embd = C;
  c.n_head = NH;
  c.n_layer = L;
  return c;
}

using autograd::GradCheckOptions;
using autograd::GradCheckResult;

// A leaf parameter with seeded N(0, std) values that requires grad.
inline Tensor param(const Shape& s, uint64_t seed, float std = 1.f) {
  Rng rng(seed);
  Tensor t = Tensor::randn(s, rng, std);
  t.requires_grad_(true);
  return t;
}

// Runs the gradient checker and fails the test with the worst element when it disagrees.
inline void check_grad(const std::function<Tensor()>& f, const std::vector<Tensor>& inputs,
                       const GradCheckOptions& opt = GradCheckOptions()) {
  GradCheckResult r = autograd::gradcheck(f, inputs, opt);
  INFO("gradcheck worst: " << r.worst << " (checked " << r.checked << ", max abs err " << r.max_abs_err << ")");
  CHECK(r.checked > 0);
  CHECK(r.ok);
}

// Values of t equal `expect` within tol (element by element).
inline void check_values(const Tensor& t, const std::vector<float>& expect, float tol = 1e-5f) {
  std::vector<float> v = t.to_vector();
  REQUIRE(v.size() == expect.size());
  for (size_t i = 0; i < v.size(); ++i) {
    INFO("element " << i);
    CHECK(v[i] == doctest::Approx(expect[i]).epsilon(tol).scale(1.0));
  }
}

// Forward output and every input gradient of f (backward from one fixed random seed), flattened into
// one vector; an input that f's graph does not reach adds nothing.
inline std::vector<float> run_and_grads(const std::function<Tensor()>& f, std::vector<Tensor> inputs) {
  for (Tensor& t : inputs) t.zero_grad();
  Tensor out = f();
  std::vector<float> all = out.to_vector();
  Rng rng(3);
  autograd::backward(out, Tensor::randn(out.shape(), rng));
  for (Tensor& t : inputs) {
    if (!t.grad().defined()) continue;  // not an input of this op
    std::vector<float> g = t.grad().to_vector();
    all.insert(all.end(), g.begin(), g.end());
  }
  return all;
}

// f's output and input gradients are bit-identical with 1 and 2 threads: an op's sums must not depend
// on the schedule. Restores the default thread count.
inline void check_same_with_1_and_2_threads(const std::function<Tensor()>& f, const std::vector<Tensor>& inputs) {
  tensor::set_num_threads(1);
  std::vector<float> one = run_and_grads(f, inputs);
  tensor::set_num_threads(2);
  std::vector<float> two = run_and_grads(f, inputs);
  tensor::set_num_threads(0);
  CHECK(one == two);
}

// Whether `part` occurs in s (error messages are checked by the pieces they must name).
inline bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// The message of the lowrank::Error thrown by f ("" if none was thrown).
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// One id per byte, EOS (and GLUE padding) 255: lengths are visible at a glance in data tests.
struct ByteTokenizer : data::Tokenizer {
  std::vector<int32_t> encode(const std::string& s) const override {
    std::vector<int32_t> ids;
    for (unsigned char c : s) ids.push_back(c);
    return ids;
  }
  std::string decode(const std::vector<int32_t>& ids) const override { return std::string(ids.begin(), ids.end()); }
  int32_t vocab_size() const override { return 256; }
  int32_t eos_id() const override { return 255; }
  std::string name() const override { return "bytes"; }
};

// A whole file as bytes ("" when it cannot be opened), and bytes written as a whole file.
inline std::string read_bytes(const std::string& path) {
  std::ifstream is(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(is), std::istreambuf_iterator<char>());
}
inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream os(path, std::ios::binary | std::ios::trunc);
  os.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(os.good());
}

// A fresh folder under the system temp dir, unique to this process, test and tag; removed afterwards.
struct TempDir {
  std::filesystem::path dir;
  explicit TempDir(const std::string& tag) {
    static int counter = 0;
    dir = std::filesystem::temp_directory_path() /
          ("lowrank_test_" + std::to_string(::getpid()) + "_" + tag + "_" + std::to_string(counter++));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return (dir / name).string(); }
  std::vector<std::string> entries() const {  // names of what the folder holds
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(dir)) out.push_back(e.path().filename().string());
    return out;
  }
};

}  // namespace lowrank::testing
