#include "data/e2e.h"

#include <algorithm>
#include <numeric>
#include <sstream>
#include <unordered_map>

#include "data/text.h"
#include "tensor/error.h"
#include "tensor/strings.h"

namespace lowrank::data {

namespace {
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

std::vector<SftExample> e2e_sft_examples(const std::vector<E2EExample>& examples) {
  std::vector<SftExample> out;
  out.reserve(examples.size());
  for (const E2EExample& ex : examples) out.push_back({{{ex.mr, false, true}, {" " + ex.ref, true, false}}, ""});
  return out;
}

nlohmann::json e2e_jsonl_record(const E2EExample& example) {
  return {{"prompt", example.mr + "<|endoftext|>"}, {"completion", " " + example.ref}};
}

}  // namespace lowrank::data
