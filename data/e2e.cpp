#include "data/e2e.h"
#include "data/batches.h"

#include <algorithm>
#include <numeric>
#include <sstream>
#include <unordered_map>

#include "data/text.h"
#include "tensor/error.h"

namespace lowrank::data {

namespace {
// Python's str.strip() whitespace (ASCII only: the files are UTF-8 but these are all single bytes).
std::string strip(const std::string& s) {
  const char* ws = " \t\r\n\f\v";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

E2EExample parse_line(const std::string& raw, const std::string& path, size_t lineno) {
  const std::string line = strip(raw);
  const size_t sep = line.find("||");
  LR_CHECK(sep != std::string::npos, path, ":", lineno, ": no \"||\" between MR and reference");
  LR_CHECK(line.find("||", sep + 2) == std::string::npos, path, ":", lineno, ": more than one \"||\"");
  E2EExample ex{line.substr(0, sep), line.substr(sep + 2)};
  LR_CHECK(!ex.mr.empty(), path, ":", lineno, ": empty MR");
  LR_CHECK(!ex.ref.empty(), path, ":", lineno, ": empty reference");
  return ex;
}
}  // namespace

std::vector<E2EExample> load_e2e(const std::string& path) {
  std::istringstream in(read_file(path));
  std::vector<E2EExample> out;
  std::string line;
  for (size_t lineno = 1; std::getline(in, line); ++lineno) out.push_back(parse_line(line, path, lineno));
  return out;
}

std::vector<E2EGroup> group_by_mr(const std::vector<E2EExample>& examples) {
  std::vector<E2EGroup> groups;
  std::unordered_map<std::string, size_t> index;  // mr -> position in groups
  for (const E2EExample& ex : examples) {
    auto [it, fresh] = index.emplace(ex.mr, groups.size());
    if (fresh) groups.push_back({ex.mr, {}});
    groups[it->second].refs.push_back(ex.ref);
  }
  return groups;
}

std::vector<E2EGroup> pick_test_mrs(const std::vector<E2EGroup>& groups, int64_t n, int64_t stride) {
  LR_CHECK(stride >= 1, "pick_test_mrs: stride must be >= 1, got ", stride);
  std::vector<E2EGroup> out;
  for (size_t i = 0; i < groups.size() && (n <= 0 || static_cast<int64_t>(out.size()) < n);
       i += static_cast<size_t>(stride))
    out.push_back(groups[i]);
  return out;
}

std::vector<int32_t> e2e_prompt(const Tokenizer& tok, const std::string& mr, int32_t eos_id) {
  std::vector<int32_t> ids = tok.encode(mr);
  ids.push_back(eos_id);
  return ids;
}

E2EEncoded encode_e2e(const Tokenizer& tok, const std::string& mr, const std::string& ref, int32_t eos_id) {
  E2EEncoded e{e2e_prompt(tok, mr, eos_id), tok.encode(" " + ref)};
  e.completion.push_back(eos_id);
  return e;
}

E2EDataset::E2EDataset(const std::vector<E2EExample>& examples, const Tokenizer& tok, int64_t max_len,
                       int32_t eos_id)
    : max_len_(max_len), eos_id_(eos_id) {
  LR_CHECK(max_len >= 1, "E2EDataset: max_len ", max_len, " < 1");
  data_.reserve(examples.size());
  for (size_t i = 0; i < examples.size(); ++i) {
    E2EEncoded e = encode_e2e(tok, examples[i].mr, examples[i].ref, eos_id);
    const int64_t n = static_cast<int64_t>(e.context.size() + e.completion.size());
    // The first completion target sits at input position |context| - 1, which must be < max_len.
    LR_CHECK(static_cast<int64_t>(e.context.size()) <= max_len, "E2EDataset: example ", i, " has a context of ",
             e.context.size(), " tokens, no completion token fits in max_len ", max_len);
    if (n - 1 > max_len) ++truncated_;
    data_.push_back(std::move(e));
  }
}

std::vector<std::vector<int64_t>> E2EDataset::epoch_batches(int64_t B, tensor::Rng& rng, bool drop_last) const {
  return shuffled_batches(size(), B, rng, drop_last, "E2EDataset");
}

E2EBatch E2EDataset::batch(const std::vector<int64_t>& indices) const {
  LR_CHECK(!indices.empty(), "E2EDataset: empty batch");
  E2EBatch b;
  b.B = static_cast<int64_t>(indices.size());
  for (int64_t i : indices) {
    const E2EEncoded& e = example(i);
    b.T = std::max<int64_t>(b.T, static_cast<int64_t>(e.context.size() + e.completion.size()) - 1);
  }
  b.T = std::min(b.T, max_len_);
  const size_t N = static_cast<size_t>(b.B * b.T);
  b.inputs.assign(N, eos_id_);
  b.targets.assign(N, eos_id_);
  b.mask.assign(N, 0.f);
  for (int64_t r = 0; r < b.B; ++r) {
    const E2EEncoded& e = example(indices[static_cast<size_t>(r)]);
    std::vector<int32_t> s = e.context;
    s.insert(s.end(), e.completion.begin(), e.completion.end());
    const int64_t n_in = std::min<int64_t>(static_cast<int64_t>(s.size()) - 1, b.T);  // right truncation
    const int64_t first = static_cast<int64_t>(e.context.size()) - 1;  // input whose target is completion[0]
    for (int64_t t = 0; t < n_in; ++t) {
      const size_t k = static_cast<size_t>(r * b.T + t);
      b.inputs[k] = s[static_cast<size_t>(t)];
      b.targets[k] = s[static_cast<size_t>(t + 1)];
      if (t >= first) {
        b.mask[k] = 1.f;
        ++b.tokens;
      }
    }
  }
  return b;
}

int64_t E2EDataset::num_eval_batches(int64_t B) const {
  return num_batches(size(), B, "E2EDataset::num_eval_batches");
}

E2EBatch E2EDataset::eval_batch(int64_t i, int64_t B) const {
  return batch(eval_batch_indices(size(), i, B, "E2EDataset"));
}

}  // namespace lowrank::data
