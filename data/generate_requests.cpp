#include "data/generate_requests.h"

#include "data/sft.h"

#include "tensor/error.h"

namespace lowrank::data {

namespace {
// The "messages" of a chat request: objects with string "role" and "content" (the roles are checked
// by chat_prompt).
std::vector<ChatMessage> chat_messages(const JsonlRecord& r) {
  const nlohmann::json& m = r.value.at("messages");
  LR_CHECK(m.is_array() && !m.empty(), jsonl_where(r), "field 'messages' is ", m.type_name(),
           ", expected a non-empty array of {\"role\", \"content\"} objects");
  std::vector<ChatMessage> out;
  for (size_t i = 0; i < m.size(); ++i) {
    LR_CHECK(m[i].is_object() && m[i].contains("role") && m[i].contains("content") && m[i]["role"].is_string() &&
                 m[i]["content"].is_string(),
             jsonl_where(r), "field 'messages[", i, "]' must be {\"role\": string, \"content\": string}");
    out.push_back({m[i]["role"].get<std::string>(), m[i]["content"].get<std::string>()});
  }
  return out;
}

GenerateRequest parse_request(const JsonlRecord& r, size_t index, const Tokenizer& tok, const RequestLimits& limits) {
  for (const auto& kv : r.value.items())
    LR_CHECK(kv.key() == "prompt" || kv.key() == "messages" || kv.key() == "id" || kv.key() == "max_new_tokens" ||
                 kv.key() == "completion" || kv.key() == "adapter",
             jsonl_where(r), "unknown field '", kv.key(),
             "' (a request has \"prompt\" or \"messages\", optional \"id\", \"max_new_tokens\", \"adapter\" and "
             "\"completion\")");
  GenerateRequest q;
  q.where = jsonl_where(r);
  LR_CHECK(r.value.contains("prompt") || r.value.contains("messages"), q.where,
           "field 'prompt' is missing (a request has \"prompt\" or \"messages\")");
  LR_CHECK(!(r.value.contains("prompt") && r.value.contains("messages")), q.where,
           "a request has field 'prompt' or field 'messages', not both");
  q.has_expected = r.value.contains("completion");
  if (q.has_expected) q.expected = jsonl_string(r, "completion");
  if (r.value.contains("prompt")) {
    q.prompt = jsonl_string(r, "prompt");
  } else {  // a chat that ends with the assistant's turn (finetune's records): that turn is the expected one
    std::vector<ChatMessage> chat = chat_messages(r);
    if (chat.back().role == "assistant" && !q.has_expected) {
      q.expected = chat.back().content;
      q.has_expected = true;
      chat.pop_back();
    }
    LR_CHECK(!chat.empty(), q.where, "field 'messages' holds only the assistant's turn: nothing to prompt with");
    q.prompt = chat_prompt(chat, cat(r.path, ":", r.line));
  }
  LR_CHECK(!q.prompt.empty(), q.where, "field 'prompt' is empty");
  q.tokens = tok.encode(q.prompt);
  const int64_t n = static_cast<int64_t>(q.tokens.size());
  LR_CHECK(n >= 1, q.where, "field 'prompt' encodes to no tokens");
  LR_CHECK(n <= limits.max_prompt_tokens, q.where, "field 'prompt' is ", n,
           " tokens, more than the model's context of ", limits.max_prompt_tokens);
  q.max_new_tokens = jsonl_int_or(r, "max_new_tokens", limits.default_max_new_tokens, 1, limits.max_new_tokens_cap);
  auto ad = r.value.find("adapter");  // null or absent: the base
  if (ad != r.value.end() && !ad->is_null()) {
    q.adapter = jsonl_string(r, "adapter");
    LR_CHECK(!q.adapter.empty(), q.where, "field 'adapter' is empty (null or no field: the base)");
  }
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
