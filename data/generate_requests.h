#pragma once
// The requests of `generate --input`: a JSON Lines file (data/jsonl.h), one request per line,
//
//   {"prompt": "name : The Vaults | Type : pub<|endoftext|>", "id": 7, "max_new_tokens": 40}
//
// "prompt" (a non-empty string) is required, or instead "messages" (a chat as finetune reads it,
// data/sft.h: the prompt is data::chat_prompt of them, ending in "Assistant:"; a last message of the
// assistant is the expected completion, so finetune's chat files are requests as they are); "id" (any JSON value,
// echoed into the output; default: the request's 0-based index), "max_new_tokens" (an integer >= 1;
// default: the command line's), "adapter" (the name of one of generate's --adapter NAME=PATH; null or
// absent: the base) and "completion" (the expected completion: finetune's prompt-completion
// files are requests as they are, and generate reports how many it reproduced) are optional; any other
// field is refused, so that a misspelt option ("max_tokens") is not silently ignored. Every request is checked and tokenized here, before any decoding starts: a request whose
// prompt has more tokens than the model's context is an error too. Errors (lowrank::Error) name the
// file, the 1-based line and the field.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/jsonl.h"
#include "data/tokenizer.h"

namespace lowrank::data {

struct GenerateRequest {
  nlohmann::json id;     // as given, or the 0-based index
  std::string prompt;    // the text as given (or the chat rendered)
  std::string expected;  // "completion", or "" when the request has none
  bool has_expected = false;
  std::vector<int32_t> tokens;  // the prompt encoded, 1 to max_prompt_tokens ids
  int64_t max_new_tokens = 0;   // >= 1
  std::string adapter;          // "adapter": a name given to generate --adapter NAME=PATH; "" is the base
  std::string where;            // "file:line: ", for later messages about this request
};

struct RequestLimits {
  int64_t max_prompt_tokens = 1024;  // the model's context (n_positions)
  int64_t default_max_new_tokens = 64;
  int64_t max_new_tokens_cap = 1 << 20;  // the largest "max_new_tokens" accepted
};

// The requests of already-parsed records, in file order; at least one (an empty file is an error).
std::vector<GenerateRequest> parse_requests(const std::vector<JsonlRecord>& records, const Tokenizer& tok,
                                            const RequestLimits& limits, const std::string& path);
// read_jsonl(path), then parse_requests.
std::vector<GenerateRequest> read_requests(const std::string& path, const Tokenizer& tok, const RequestLimits& limits);

}  // namespace lowrank::data
