#include "data/serve_request.h"

#include <algorithm>

namespace lowrank::data {

ApiError::ApiError(int status_, std::string code_, const std::string& message)
    : Error(message), status(status_), code(std::move(code_)) {}

std::string api_error_type(int status) {
  if (status == 404) return "not_found_error";
  if (status == 409) return "conflict_error";
  return status >= 500 ? "server_error" : "invalid_request_error";
}

nlohmann::ordered_json api_error_json(const ApiError& e) {
  return {{"error", {{"message", e.what()}, {"type", api_error_type(e.status)}, {"code", e.code}}}};
}

namespace {

const char* const kCompletionFields[] = {"model", "prompt", "max_tokens", "temperature", "n", "stream", "stop", "beam"};
const char* const kAdapterFields[] = {"name", "path"};

// A name from the request, shortened for a message (a key may be as long as the body).
std::string shown(const std::string& s) { return s.size() <= 64 ? s : s.substr(0, 61) + "..."; }

nlohmann::json parse_object(const std::string& body) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(body);
  } catch (const nlohmann::json::exception& e) {
    throw ApiError(400, "invalid_json", cat("the body is not valid JSON (", e.what(), ")"));
  }
  if (!j.is_object()) throw ApiError(400, "invalid_type", cat("the body is a JSON ", j.type_name(), ", not an object"));
  return j;
}

template <size_t N>
void check_fields(const nlohmann::json& j, const char* const (&known)[N]) {
  for (const auto& kv : j.items()) {
    if (std::find_if(known, known + N, [&](const char* k) { return kv.key() == k; }) != known + N) continue;
    std::string list;
    for (const char* k : known) list += (list.empty() ? "" : ", ") + std::string(k);
    throw ApiError(400, "unknown_field", cat("unknown field '", shown(kv.key()), "' (a request has ", list, ")"));
  }
}

// The field, or nullptr when it is absent or null.
const nlohmann::json* field(const nlohmann::json& j, const char* name) {
  auto it = j.find(name);
  return it == j.end() || it->is_null() ? nullptr : &*it;
}

ApiError wrong_type(const char* name, const nlohmann::json& v, const char* expected) {
  return ApiError(400, "invalid_type", cat("field '", name, "' is ", v.type_name(), ", expected ", expected));
}

std::string required_string(const nlohmann::json& j, const char* name) {
  const nlohmann::json* v = field(j, name);
  if (!v) throw ApiError(400, "missing_field", cat("field '", name, "' is missing"));
  if (!v->is_string()) throw wrong_type(name, *v, "a string");
  std::string s = v->get<std::string>();
  if (s.empty()) throw ApiError(400, "invalid_value", cat("field '", name, "' is empty"));
  return s;
}

int64_t int_field(const nlohmann::json& j, const char* name, int64_t fallback, int64_t lo, int64_t hi) {
  const nlohmann::json* v = field(j, name);
  if (!v) return fallback;
  if (!v->is_number_integer()) throw wrong_type(name, *v, "an integer");
  const bool big = v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(hi);
  const int64_t n = big ? hi : v->get<int64_t>();
  if (big || n < lo || n > hi)
    throw ApiError(400, "invalid_value", cat("field '", name, "' is ", v->dump(), ", must be in [", lo, ", ", hi, "]"));
  return n;
}

// "temperature" 0, "n" 1, "stream" false: what this server decodes; anything else is refused by name.
void check_greedy_only(const nlohmann::json& j) {
  if (const nlohmann::json* t = field(j, "temperature")) {
    if (!t->is_number()) throw wrong_type("temperature", *t, "a number");
    if (t->get<double>() != 0.0)
      throw ApiError(400, "unsupported_value",
                     cat("field 'temperature' is ", t->dump(), ": only greedy decoding ",
                         "(temperature 0) and beam search (\"beam\") are served"));
  }
  if (int_field(j, "n", 1, 1, 1 << 30) != 1)
    throw ApiError(400, "unsupported_value", "field 'n': one completion per request (n = 1)");
  if (const nlohmann::json* s = field(j, "stream")) {
    if (!s->is_boolean()) throw wrong_type("stream", *s, "a boolean");
    if (s->get<bool>()) throw ApiError(400, "unsupported_value", "field 'stream': streaming is not served");
  }
}

std::vector<std::string> stop_field(const nlohmann::json& j, size_t max_stops) {
  const nlohmann::json* v = field(j, "stop");
  if (!v) return {};
  if (!v->is_string() && !v->is_array()) throw wrong_type("stop", *v, "a string or an array of strings");
  const nlohmann::json list = v->is_string() ? nlohmann::json::array({*v}) : *v;
  if (list.size() > max_stops)
    throw ApiError(400, "invalid_value", cat("field 'stop' has ", list.size(), " strings, at most ", max_stops));
  std::vector<std::string> out;
  for (const nlohmann::json& s : list) {
    if (!s.is_string()) throw wrong_type("stop", s, "a string (in the array)");
    out.push_back(s.get<std::string>());
    if (out.back().empty()) throw ApiError(400, "invalid_value", "field 'stop': an empty stop string");
  }
  return out;
}

// The prompt's tokens against the context (prompt + max_tokens) and --max-prompt-tokens.
void check_prompt_length(const CompletionRequest& r, const CompletionLimits& lim) {
  const int64_t n = static_cast<int64_t>(r.tokens.size());
  if (n < 1) throw ApiError(400, "invalid_value", "field 'prompt' encodes to no tokens");
  if (lim.max_prompt_tokens > 0 && n > lim.max_prompt_tokens)
    throw ApiError(400, "prompt_too_long",
                   cat("the prompt is ", n, " tokens, more than this server's limit of ", lim.max_prompt_tokens));
  if (n > lim.context - r.max_tokens)
    throw ApiError(400, "context_length_exceeded",
                   cat("the prompt is ", n, " tokens: with max_tokens ", r.max_tokens,
                       " that is more than the model's context of ", lim.context));
}

}  // namespace

CompletionRequest parse_completion_request(const std::string& body, const Tokenizer& tok, const CompletionLimits& lim) {
  const nlohmann::json j = parse_object(body);
  check_fields(j, kCompletionFields);
  CompletionRequest r;
  r.model = required_string(j, "model");
  r.prompt = required_string(j, "prompt");
  r.max_tokens = int_field(j, "max_tokens", lim.default_max_tokens, 1, lim.max_tokens_limit);
  check_greedy_only(j);
  r.stops = stop_field(j, lim.max_stops);
  r.beam = int_field(j, "beam", 1, 1, lim.max_beam);
  r.tokens = tok.encode(r.prompt);
  check_prompt_length(r, lim);
  return r;
}

void check_adapter_name(const std::string& name, const std::string& base_name) {
  const bool chars_ok = std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '-';
  });
  if (name.empty() || name.size() > 64 || !chars_ok)
    throw ApiError(400, "invalid_value",
                   cat("adapter name '", shown(name), "': 1 to 64 characters of letters, digits, '.', '_' and '-'"));
  if (name == base_name)
    throw ApiError(400, "invalid_value", cat("adapter name '", name, "' is the base model's name"));
}

AdapterRequest parse_adapter_request(const std::string& body, const std::string& base_name) {
  const nlohmann::json j = parse_object(body);
  check_fields(j, kAdapterFields);
  AdapterRequest r{required_string(j, "name"), required_string(j, "path")};
  check_adapter_name(r.name, base_name);
  return r;
}

}  // namespace lowrank::data
