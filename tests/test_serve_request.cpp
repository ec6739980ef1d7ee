// data/serve_request.h: the request bodies of serve (examples/serve.cpp) parsed and checked without HTTP:
// what a good request gives, and every refusal's status, code and message. The server itself, end to
// end: test_cli_serve.cpp.
#include <doctest/doctest.h>

#include <functional>
#include <string>

#include "data/serve_request.h"
#include "test_util.h"

using namespace lowrank;
using namespace lowrank::testing;

namespace {

data::CompletionLimits limits() {
  data::CompletionLimits lim;
  lim.context = 32;
  lim.max_tokens_limit = 20;
  lim.default_max_tokens = 16;
  lim.max_beam = 4;
  return lim;
}

data::CompletionRequest parse(const std::string& body, const data::CompletionLimits& lim = limits()) {
  return data::parse_completion_request(body, ByteTokenizer(), lim);
}

// The ApiError f throws: status, code, message.
struct Refusal {
  int status = 0;
  std::string code, message;
};
Refusal refusal(const std::function<void()>& f) {
  try {
    f();
  } catch (const data::ApiError& e) {
    return {e.status, e.code, e.what()};
  }
  return {};
}

void check_refused(const std::string& body, int status, const std::string& code, const std::string& says,
                   const data::CompletionLimits& lim = limits()) {
  CAPTURE(body);
  const Refusal r = refusal([&] { parse(body, lim); });
  CAPTURE(r.message);
  CHECK(r.status == status);
  CHECK(r.code == code);
  CHECK(contains(r.message, says));
}

}  // namespace

TEST_CASE("serve request: a completion request's fields, defaults, nulls and stop forms") {
  data::CompletionRequest r = parse(R"({"model": "sql", "prompt": "hello"})");
  CHECK(r.model == "sql");
  CHECK(r.prompt == "hello");
  CHECK(r.tokens == ByteTokenizer().encode("hello"));
  CHECK(r.max_tokens == 16);
  CHECK(r.beam == 1);
  CHECK(r.stops.empty());
  r = parse(R"({"model": "base", "prompt": "a", "max_tokens": 20, "temperature": 0, "n": 1, "stream": false,
                "stop": ["\n", "."], "beam": 4})");
  CHECK(r.max_tokens == 20);
  CHECK(r.beam == 4);
  CHECK(r.stops == std::vector<std::string>{"\n", "."});
  r = parse(R"({"model": "m", "prompt": "a", "stop": "END", "temperature": 0.0, "max_tokens": null, "beam": null})");
  CHECK(r.stops == std::vector<std::string>{"END"});
  CHECK(r.max_tokens == 16);
  // the context bound is exact: prompt tokens + max_tokens == context is accepted
  CHECK(parse(R"({"model": "m", "prompt": ")" + std::string(12, 'x') + R"(", "max_tokens": 20})").tokens.size() == 12);
}

TEST_CASE("serve request: malformed JSON, missing fields, wrong types and unknown fields are 400s naming the field") {
  check_refused(R"({"model": "m", "prompt": )", 400, "invalid_json", "not valid JSON");
  check_refused("", 400, "invalid_json", "not valid JSON");
  check_refused("[1, 2]", 400, "invalid_type", "not an object");
  check_refused("{\"model\": \"m\", \"prompt\": \"\xff\"}", 400, "invalid_json", "not valid JSON");  // not UTF-8
  check_refused(R"({"prompt": "a"})", 400, "missing_field", "field 'model' is missing");
  check_refused(R"({"model": "m"})", 400, "missing_field", "field 'prompt' is missing");
  check_refused(R"({"model": "m", "prompt": null})", 400, "missing_field", "field 'prompt' is missing");
  check_refused(R"({"model": "m", "prompt": ""})", 400, "invalid_value", "field 'prompt' is empty");
  check_refused(R"({"model": 3, "prompt": "a"})", 400, "invalid_type", "field 'model' is number, expected a string");
  check_refused(R"({"model": "m", "prompt": ["a"]})", 400, "invalid_type", "field 'prompt' is array");
  check_refused(R"({"model": "m", "prompt": "a", "max_tokens": "5"})", 400, "invalid_type", "expected an integer");
  check_refused(R"({"model": "m", "prompt": "a", "max_tokens": 5.5})", 400, "invalid_type", "expected an integer");
  check_refused(R"({"model": "m", "prompt": "a", "stop": 1})", 400, "invalid_type", "field 'stop'");
  check_refused(R"({"model": "m", "prompt": "a", "stop": ["x", 2]})", 400, "invalid_type", "field 'stop'");
  check_refused(R"({"model": "m", "prompt": "a", "stream": "no"})", 400, "invalid_type", "field 'stream'");
  check_refused(R"({"model": "m", "prompt": "a", "temperature": "0"})", 400, "invalid_type", "field 'temperature'");
  check_refused(R"({"model": "m", "prompt": "a", "max_new_tokens": 5})", 400, "unknown_field",
                "unknown field 'max_new_tokens'");
}

TEST_CASE("serve request: values out of range, sampling, n > 1, streaming and over-long prompts are refused") {
  check_refused(R"({"model": "m", "prompt": "a", "max_tokens": 0})", 400, "invalid_value", "must be in [1, 20]");
  check_refused(R"({"model": "m", "prompt": "a", "max_tokens": 21})", 400, "invalid_value", "must be in [1, 20]");
  check_refused(R"({"model": "m", "prompt": "a", "max_tokens": 18446744073709551615})", 400, "invalid_value",
                "max_tokens");
  check_refused(R"({"model": "m", "prompt": "a", "max_tokens": -9223372036854775808})", 400, "invalid_value",
                "max_tokens");
  check_refused(R"({"model": "m", "prompt": "a", "beam": 5})", 400, "invalid_value", "field 'beam'");
  check_refused(R"({"model": "m", "prompt": "a", "temperature": 0.7})", 400, "unsupported_value", "greedy");
  check_refused(R"({"model": "m", "prompt": "a", "n": 2})", 400, "unsupported_value", "field 'n'");
  check_refused(R"({"model": "m", "prompt": "a", "stream": true})", 400, "unsupported_value", "streaming");
  check_refused(R"({"model": "m", "prompt": "a", "stop": ["a", "b", "c", "d", "e"]})", 400, "invalid_value",
                "at most 4");
  check_refused(R"({"model": "m", "prompt": "a", "stop": ""})", 400, "invalid_value", "empty stop");
  // 13 tokens + 20 > 32
  check_refused(R"({"model": "m", "prompt": ")" + std::string(13, 'x') + R"(", "max_tokens": 20})", 400,
                "context_length_exceeded", "the prompt is 13 tokens: with max_tokens 20");
  data::CompletionLimits lim = limits();
  lim.max_prompt_tokens = 4;
  check_refused(R"({"model": "m", "prompt": "abcde", "max_tokens": 1})", 400, "prompt_too_long", "limit of 4", lim);
  CHECK(parse(R"({"model": "m", "prompt": "abcd", "max_tokens": 1})", lim).tokens.size() == 4);
}

TEST_CASE("serve request: adapter requests and names, the error JSON and its types") {
  const data::AdapterRequest a = data::parse_adapter_request(R"({"name": "sql-v2.1_x", "path": "/a b/c"})", "base");
  CHECK(a.name == "sql-v2.1_x");
  CHECK(a.path == "/a b/c");
  auto code = [](const std::string& body) { return refusal([&] { data::parse_adapter_request(body, "base"); }); };
  CHECK(code(R"({"name": "x"})").code == "missing_field");
  CHECK(code(R"({"name": "x", "path": 1})").code == "invalid_type");
  CHECK(code(R"({"name": "x", "path": "p", "rank": 2})").code == "unknown_field");
  CHECK(code(R"({"name": "base", "path": "p"})").message.find("base model's name") != std::string::npos);
  for (const std::string& bad :
       {std::string("a/b"), std::string("a b"), std::string(65, 'a'), std::string("caf\xc3\xa9")}) {
    CAPTURE(bad);
    const Refusal r = refusal([&] { data::check_adapter_name(bad, "base"); });
    CHECK(r.status == 400);
    CHECK(r.code == "invalid_value");
  }
  const nlohmann::json j = data::api_error_json(data::ApiError(404, "model_not_found", "unknown model 'x'"));
  CHECK(j["error"]["message"] == "unknown model 'x'");
  CHECK(j["error"]["type"] == "not_found_error");
  CHECK(j["error"]["code"] == "model_not_found");
  CHECK(data::api_error_type(400) == "invalid_request_error");
  CHECK(data::api_error_type(409) == "conflict_error");
  CHECK(data::api_error_type(503) == "server_error");
  CHECK(!error_of([] { throw data::ApiError(400, "x", "a lowrank::Error too"); }).empty());
}
