#pragma once
// The request bodies of `serve` (examples/serve.cpp, docs/serve.md), an OpenAI-style completions server:
// parsed and checked here, with no HTTP types, so that they are unit-tested (tests/test_serve_request.cpp)
// and fuzzed (tests/fuzz/fuzz_serve_request.cpp) like the file loaders.
//
//   POST /v1/completions  {"model": "sql", "prompt": "...", "max_tokens": 16, "stop": ["\n"], "beam": 1}
//   POST /v1/adapters     {"name": "sql", "path": "adapters/sql.safetensors"}
//
//   data::CompletionRequest r = data::parse_completion_request(body, tok, limits);  // or throws ApiError
//
// Every refusal is an ApiError: the HTTP status and the "code" of the JSON error the server answers
// with, and a message that names the field. A completion request takes "model" and "prompt" (non-empty
// strings), "max_tokens" (an integer in [1, limit], default 16), "temperature" (0 or absent: greedy
// only), "n" (1), "stream" (false), "stop" (a string or a list of at most 4 non-empty strings) and
// "beam" (an integer in [1, max_beam]); null is the same as absent; any other field is refused, so a
// misspelt option is never silently ignored. The prompt's tokens plus max_tokens must fit the model's
// context, and the prompt must not be longer than max_prompt_tokens. Whether "model" names a loaded
// adapter is the caller's check: the set changes while the server runs.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/tokenizer.h"
#include "tensor/error.h"

namespace lowrank::data {

// A refused request: HTTP status, error code, message. A lowrank::Error, so callers that only know
// lowrank::Error still catch it.
struct ApiError : Error {
  ApiError(int status, std::string code, const std::string& message);
  int status;
  std::string code;
};

// The error "type" of a status: invalid_request_error (400, 413, 422), not_found_error (404),
// conflict_error (409), server_error (5xx).
std::string api_error_type(int status);
// {"error": {"message", "type", "code"}}, keys in that order
nlohmann::ordered_json api_error_json(const ApiError& e);

struct CompletionLimits {
  int64_t context = 1024;          // the model's n_positions: prompt tokens + max_tokens must fit
  int64_t max_prompt_tokens = 0;   // 0: only the context bounds the prompt
  int64_t max_tokens_limit = 256;  // the largest "max_tokens"
  int64_t default_max_tokens = 16;
  int64_t max_beam = 8;
  size_t max_stops = 4;
};

struct CompletionRequest {
  std::string model;  // an adapter's name or the base's
  std::string prompt;
  std::vector<int32_t> tokens;  // the prompt encoded: 1 to min(context - max_tokens, max_prompt_tokens) ids
  int64_t max_tokens = 16;
  int64_t beam = 1;  // 1: greedy
  std::vector<std::string> stops;
};

struct AdapterRequest {
  std::string name, path;
};

CompletionRequest parse_completion_request(const std::string& body, const Tokenizer& tok, const CompletionLimits& lim);
// {"name", "path"}: both non-empty strings; the name checked by check_adapter_name.
AdapterRequest parse_adapter_request(const std::string& body, const std::string& base_name);
// 1 to 64 characters of [A-Za-z0-9._-], not the base's name (400 otherwise): a name that fits in a URL
// path as it is (DELETE /v1/adapters/NAME).
void check_adapter_name(const std::string& name, const std::string& base_name);

}  // namespace lowrank::data
