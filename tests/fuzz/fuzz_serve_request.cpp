// Fuzzes serve's request bodies (data/serve_request.h): the input as the body of POST /v1/completions,
// parsed and checked with the real GPT-2 BPE against a context of 4 to 67 tokens (and, for some inputs,
// a prompt limit), and as the body of POST /v1/adapters.
//
// parse_completion_request promises: any bad body (not JSON, not an object, an unknown field, a
// missing, empty or mistyped field, a value out of range, sampling, n > 1, streaming, a prompt that
// does not fit) is a data::ApiError with a 4xx status and a code, whose JSON error can be written;
// otherwise a request with non-empty model and prompt, the prompt's own tokens, 1 to
// min(context - max_tokens, max_prompt_tokens) of them, max_tokens and beam within their limits, at
// most max_stops stop strings, none empty. parse_adapter_request: a name of 1 to 64 [A-Za-z0-9._-]
// that is not the base's, and a non-empty path. The harness checks all of that on what they return.
#include <cctype>
#include <string>

#include "data/bpe.h"
#include "data/serve_request.h"
#include "fuzz_util.h"

using namespace lowrank;

namespace {

// f() returns, or throws an ApiError whose status and JSON are sound; anything else escapes.
template <typename F>
bool accepts(F&& f) {
  try {
    f();
    return true;
  } catch (const data::ApiError& e) {
    if (e.status < 400 || e.status > 499 || e.code.empty() || std::string(e.what()).empty())
      fuzz::finding("a refusal without a 4xx status, a code and a message");
    (void)data::api_error_json(e).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    return false;
  }
}

void check_completion(const std::string& body, size_t size) {
  static const data::Gpt2Bpe bpe = data::Gpt2Bpe::from_dir(std::string(LOWRANK_SOURCE_DIR) + "/data/assets/gpt2-bpe");
  data::CompletionLimits lim;
  lim.context = 4 + static_cast<int64_t>(size % 64);
  lim.max_prompt_tokens = size % 3 == 0 ? 3 : 0;
  lim.max_tokens_limit = 3;
  lim.default_max_tokens = 2;
  data::CompletionRequest r;
  if (!accepts([&] { r = data::parse_completion_request(body, bpe, lim); })) return;
  const int64_t n = static_cast<int64_t>(r.tokens.size());
  if (r.model.empty() || r.prompt.empty()) fuzz::finding("an empty model or prompt accepted");
  if (r.tokens != bpe.encode(r.prompt)) fuzz::finding("the tokens are not the prompt's encoding");
  if (n < 1 || n > lim.context - r.max_tokens) fuzz::finding("a prompt that does not fit the context accepted");
  if (lim.max_prompt_tokens > 0 && n > lim.max_prompt_tokens) fuzz::finding("a prompt over the limit accepted");
  if (r.max_tokens < 1 || r.max_tokens > lim.max_tokens_limit) fuzz::finding("max_tokens out of range");
  if (r.beam < 1 || r.beam > lim.max_beam) fuzz::finding("beam out of range");
  if (r.stops.size() > lim.max_stops) fuzz::finding("too many stop strings");
  for (const std::string& s : r.stops)
    if (s.empty()) fuzz::finding("an empty stop string accepted");
}

void check_adapter(const std::string& body) {
  data::AdapterRequest a;
  if (!accepts([&] { a = data::parse_adapter_request(body, "base"); })) return;
  if (a.path.empty() || a.name.empty() || a.name.size() > 64 || a.name == "base") fuzz::finding("a bad adapter");
  for (char c : a.name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-')
      fuzz::finding("an adapter name with a character outside [A-Za-z0-9._-]");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string body(fuzz::as_view(data, size));
  check_completion(body, size);
  check_adapter(body);
  return 0;
}
