#include "data/generate_requests.h"

#include "tensor/error.h"

namespace lowrank::data {

namespace {
GenerateRequest parse_request(const JsonlRecord& r, size_t index, const Tokenizer& tok, const RequestLimits& limits) {
  for (const auto& kv : r.value.items())
    LR_CHECK(kv.key() == "prompt" || kv.key() == "id" || kv.key() == "max_new_tokens", jsonl_where(r),
             "unknown field '", kv.key(), "' (a request has \"prompt\", optional \"id\" and \"max_new_tokens\")");
  GenerateRequest q;
  q.where = jsonl_where(r);
  q.prompt = jsonl_string(r, "prompt");
  LR_CHECK(!q.prompt.empty(), q.where, "field 'prompt' is empty");
  q.tokens = tok.encode(q.prompt);
  const int64_t n = static_cast<int64_t>(q.tokens.size());
  LR_CHECK(n >= 1, q.where, "field 'prompt' encodes to no tokens");
  LR_CHECK(n <= limits.max_prompt_tokens, q.where, "field 'prompt' is ", n, " tokens, more than the model's context of ",
           limits.max_prompt_tokens);
  q.max_new_tokens = jsonl_int_or(r, "max_new_tokens", limits.default_max_new_tokens, 1, limits.max_new_tokens_cap);
  auto id = r.value.find("id");
  q.id = id == r.value.end() ? nlohmann::json(index) : *id;
  return q;
}
}  // namespace

std::vector<GenerateRequest> parse_requests(const std::vector<JsonlRecord>& records, const Tokenizer& tok,
                                            const RequestLimits& limits, const std::string& path) {
  LR_CHECK(!records.empty(), path, ": no requests (expected one JSON object per line, e.g. {\"prompt\": \"...\"})");
  std::vector<GenerateRequest> out;
  out.reserve(records.size());
  for (size_t i = 0; i < records.size(); ++i) out.push_back(parse_request(records[i], i, tok, limits));
  return out;
}

std::vector<GenerateRequest> read_requests(const std::string& path, const Tokenizer& tok, const RequestLimits& limits) {
  return parse_requests(read_jsonl(path), tok, limits, path);
}

}  // namespace lowrank::data
