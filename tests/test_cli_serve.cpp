// examples/serve.cpp end to end: the real binary on 127.0.0.1 (--port 0), talked to with httplib's client,
// on a tiny GPT-2-BPE base (C = 32, one layer, 64 positions) and four adapters (ours and peft's, one on
// the token embedding, served merged; serve_test_util.h). Completions of every adapter and the base equal
// `generate`'s with that adapter alone; adapters load, serve and unload at runtime; every bad input is a
// JSON error with its status and the server goes on. Concurrent clients and signals:
// test_cli_serve_load.cpp; the request parser alone: test_serve_request.cpp.
#include <doctest/doctest.h>

#include <cstdio>

#ifdef LOWRANK_HAVE_HTTPLIB
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "data/serve_request.h"
#include "serve_test_util.h"

using namespace lowrank;
using namespace lowrank::testing;
using namespace lowrank::testing::serve;

TEST_CASE("serve: /health, /v1/models, and completions of 3 adapters and the base equal generate's") {
  TempDir tmp("serve_models");
  ServerProcess srv("--threads 1 --init " + fx().base + fx().adapter_args({"qv", "mlp", "attn"}), tmp);
  CAPTURE(srv.err());
  REQUIRE(srv.port() > 0);
  httplib::Client c = client(srv.port());
  const Reply health = request(c, "GET", "/health");
  REQUIRE(health.status == 200);
  CHECK(health.body["status"] == "ok");
  CHECK(health.body["adapters"] == 3);
  const Reply models = request(c, "GET", "/v1/models");
  REQUIRE(models.status == 200);
  CHECK(models.body["object"] == "list");
  REQUIRE(models.body["data"].size() == 4);
  CHECK(models.body["data"][0]["id"] == "base");
  CHECK(models.body["data"][1]["id"] == "qv");
  CHECK(models.body["data"][1]["rank"] == 2);
  CHECK(models.body["data"][1]["targets"] == json({"q", "v"}));
  CHECK(models.body["data"][3]["owned_by"] == "lowrank");
  std::map<std::string, std::string> texts;  // a model's completion of kServePrompts[0], to check they differ
  for (const std::string model : {"base", "qv", "mlp", "attn"}) {
    CAPTURE(model);
    const std::vector<json> want = generate_ref(model == "base" ? "" : fx().adapters.at(model), kServePrompts, 8);
    for (size_t i = 0; i < kServePrompts.size(); ++i) {
      CAPTURE(kServePrompts[i]);
      const Reply r = request(c, "POST", "/v1/completions", completion_body(model, kServePrompts[i], 8).dump());
      REQUIRE(r.status == 200);
      CHECK(r.body["object"] == "text_completion");
      CHECK(r.body["model"] == model);
      const json& choice = r.body["choices"][0];
      CHECK(choice["text"] == want[i]["completion"]);
      CHECK(choice["finish_reason"] == (want[i]["finish_reason"] == "length" ? "length" : "stop"));
      CHECK(r.body["usage"]["prompt_tokens"] == serve_bpe().encode(kServePrompts[i]).size());
      CHECK(r.body["usage"]["completion_tokens"] == want[i]["tokens"]);
      if (i == 0) texts[model] = choice["text"];
    }
  }
  CHECK(texts.size() == 4);
  CHECK(texts["qv"] != texts["base"]);
  CHECK(texts["mlp"] != texts["base"]);
  CHECK(texts["attn"] != texts["base"]);
  // stop strings cut the text as generate's --stop does
  const std::string full = complete(c, "qv", kServePrompts[1], 8);
  size_t at = full.size() / 2;  // an ASCII character from the second half: a whole UTF-8 character
  while (at < full.size() && static_cast<unsigned char>(full[at]) >= 0x80) ++at;
  REQUIRE(at < full.size());
  const std::string stop = full.substr(at, 1);
  json body = completion_body("qv", kServePrompts[1], 8);
  body["stop"] = stop;
  const Reply cut = request(c, "POST", "/v1/completions", body.dump());
  CHECK(cut.body["choices"][0]["text"] == full.substr(0, full.find(stop)));
  CHECK(cut.body["choices"][0]["finish_reason"] == "stop");
}

TEST_CASE("serve: adapters loaded, used and deleted at runtime, and an embedding adapter served merged") {
  TempDir tmp("serve_runtime");
  ServerProcess srv("--threads 1 --init " + fx().base, tmp);
  CAPTURE(srv.err());
  REQUIRE(srv.port() > 0);
  httplib::Client c = client(srv.port());
  const std::vector<json> want_emb = generate_ref(fx().adapters.at("emb"), kServePrompts, 6);
  const std::vector<json> want_qv = generate_ref(fx().adapters.at("qv"), kServePrompts, 6);
  CHECK(request(c, "POST", "/v1/completions", completion_body("emb", kServePrompts[0], 6).dump()).status == 404);
  for (const std::string name : {"emb", "qv"}) {
    const Reply r = request(c, "POST", "/v1/adapters", json{{"name", name}, {"path", fx().adapters.at(name)}}.dump());
    CAPTURE(r.body.dump());
    REQUIRE(r.status == 201);
    CHECK(r.body["id"] == name);
  }
  CHECK(request(c, "GET", "/v1/models").body["data"].size() == 3);
  for (size_t i = 0; i < kServePrompts.size(); ++i) {
    CAPTURE(kServePrompts[i]);
    CHECK(complete(c, "emb", kServePrompts[i], 6) == want_emb[i]["completion"].get<std::string>());
    CHECK(complete(c, "qv", kServePrompts[i], 6) == want_qv[i]["completion"].get<std::string>());
  }
  const Reply del = request(c, "DELETE", "/v1/adapters/emb");
  CHECK(del.status == 200);
  CHECK(del.body["deleted"] == true);
  const Reply gone = request(c, "POST", "/v1/completions", completion_body("emb", kServePrompts[0], 6).dump());
  CHECK(gone.status == 404);
  CHECK(gone.body["error"]["code"] == "model_not_found");
  CHECK(request(c, "DELETE", "/v1/adapters/emb").status == 404);
  CHECK(complete(c, "qv", kServePrompts[0], 6) == want_qv[0]["completion"].get<std::string>());  // its slot untouched
  const Reply again =
      request(c, "POST", "/v1/adapters", json{{"name", "emb"}, {"path", fx().adapters.at("emb")}}.dump());
  CHECK(again.status == 201);  // loaded into the freed slot
  CHECK(complete(c, "emb", kServePrompts[2], 6) == want_emb[2]["completion"].get<std::string>());
}

namespace {

struct BadCase {
  std::string what, method, path, body;
  int status;
  std::string code;
};

// Sends raw bytes on a fresh connection and closes it at once: a client that goes away mid-request.
void send_and_hang_up(int port, const std::string& bytes) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()));
  close(fd);
}

std::string raw_post(const std::string& body, size_t content_length) {
  return "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(content_length) + "\r\n\r\n" + body;
}

std::string prompt_of(size_t tokens) {  // " a" is one GPT-2 token
  std::string s = "a";
  for (size_t i = 1; i < tokens; ++i) s += " a";
  REQUIRE(serve_bpe().encode(s).size() == tokens);
  return s;
}

std::vector<BadCase> bad_cases() {
  const std::string garbage = json{{"name", "junk"}, {"path", fx().tmp.file("junk.safetensors")}}.dump();
  return {
      {"malformed JSON", "POST", "/v1/completions", R"({"model": "qv", "prompt": )", 400, "invalid_json"},
      {"not an object", "POST", "/v1/completions", "[1]", 400, "invalid_type"},
      {"unknown adapter", "POST", "/v1/completions", completion_body("nope", "a", 2).dump(), 404, "model_not_found"},
      {"missing prompt", "POST", "/v1/completions", R"({"model": "qv"})", 400, "missing_field"},
      {"missing model", "POST", "/v1/completions", R"({"prompt": "a"})", 400, "missing_field"},
      {"prompt of a wrong type", "POST", "/v1/completions", R"({"model": "qv", "prompt": 3})", 400, "invalid_type"},
      {"max_tokens of a wrong type", "POST", "/v1/completions", R"({"model": "qv", "prompt": "a", "max_tokens": "2"})",
       400, "invalid_type"},
      {"max_tokens 0", "POST", "/v1/completions", completion_body("qv", "a", 0).dump(), 400, "invalid_value"},
      {"max_tokens over the limit", "POST", "/v1/completions", completion_body("qv", "a", 33).dump(), 400,
       "invalid_value"},
      {"sampling", "POST", "/v1/completions", R"({"model": "qv", "prompt": "a", "temperature": 0.8})", 400,
       "unsupported_value"},
      {"an unknown field", "POST", "/v1/completions", R"({"model": "qv", "prompt": "a", "top_k": 5})", 400,
       "unknown_field"},
      {"prompt + max_tokens over the context", "POST", "/v1/completions",
       completion_body("qv", prompt_of(35), 32).dump(), 400, "context_length_exceeded"},
      {"prompt over --max-prompt-tokens", "POST", "/v1/completions", completion_body("qv", prompt_of(41), 1).dump(),
       400, "prompt_too_long"},
      {"body over --max-body", "POST", "/v1/completions", completion_body("qv", std::string(5000, 'x'), 1).dump(), 413,
       "body_too_large"},
      {"unknown route", "GET", "/v2/nothing", "", 404, "unknown_route"},
      {"adapter: corrupt file", "POST", "/v1/adapters", garbage, 422, "invalid_adapter"},
      {"adapter: truncated file", "POST", "/v1/adapters",
       json{{"name", "cut"}, {"path", fx().tmp.file("cut.safetensors")}}.dump(), 422, "invalid_adapter"},
      {"adapter: no such file", "POST", "/v1/adapters", json{{"name", "x"}, {"path", "/nonexistent/a"}}.dump(), 422,
       "invalid_adapter"},
      {"adapter: another base's", "POST", "/v1/adapters", json{{"name", "f"}, {"path", fx().foreign}}.dump(), 422,
       "invalid_adapter"},
      {"adapter: the name exists", "POST", "/v1/adapters", json{{"name", "qv"}, {"path", fx().foreign}}.dump(), 409,
       "adapter_exists"},
      {"adapter: a bad name", "POST", "/v1/adapters", json{{"name", "a/b"}, {"path", fx().foreign}}.dump(), 400,
       "invalid_value"},
      {"adapter: malformed JSON", "POST", "/v1/adapters", "{", 400, "invalid_json"},
      {"delete: unknown adapter", "DELETE", "/v1/adapters/nope", "", 404, "model_not_found"},
      {"delete: the base", "DELETE", "/v1/adapters/base", "", 400, "invalid_value"},
  };
}

}  // namespace

TEST_CASE("serve: every bad input is a JSON error with its status, and the server keeps serving") {
  TempDir tmp("serve_bad");
  write_bytes(fx().tmp.file("junk.safetensors"), std::string(300, '\x7f'));
  const std::string adapter = read_bytes(fx().adapters.at("qv"));
  write_bytes(fx().tmp.file("cut.safetensors"), adapter.substr(0, adapter.size() / 2));
  ServerProcess srv("--threads 1 --max-prompt-tokens 40 --max-tokens-limit 32 --max-body 4096 --init " + fx().base +
                        fx().adapter_args({"qv"}),
                    tmp);
  CAPTURE(srv.err());
  REQUIRE(srv.port() > 0);
  httplib::Client c = client(srv.port());
  const std::string good = complete(c, "qv", kServePrompts[0], 5);
  for (const BadCase& b : bad_cases()) {
    CAPTURE(b.what);
    const Reply r = request(c, b.method, b.path, b.body);
    CAPTURE(r.error);
    CAPTURE(r.body.dump());
    CHECK(r.status == b.status);
    CHECK(r.body["error"]["code"] == b.code);
    CHECK(r.body["error"]["type"] == data::api_error_type(b.status));
    CHECK(!r.body["error"]["message"].get<std::string>().empty());
    CHECK(complete(c, "qv", kServePrompts[0], 5) == good);
  }
  const Reply unknown = request(c, "POST", "/v1/completions", completion_body("nope", "a", 2).dump());
  CHECK(contains(unknown.body["error"]["message"].get<std::string>(), "known: base, qv"));
  // clients that go away: after sending a whole request (decoded, its answer dropped), and in the middle
  // of its body (never decoded)
  const int64_t served = wait_idle(c)["served"].get<int64_t>();
  const std::string body = completion_body("qv", kServePrompts[3], 32).dump();
  send_and_hang_up(srv.port(), raw_post(body, body.size()));
  send_and_hang_up(srv.port(), raw_post(body.substr(0, 10), body.size()));
  CHECK(complete(c, "qv", kServePrompts[0], 5) == good);
  const json health = wait_idle(c, served + 2);  // the good one and the first hung-up one
  CHECK(health["pending"] == 0);
  CHECK(health["served"] == served + 2);
  CHECK(srv.running());
  CHECK(srv.stop(SIGTERM) == 0);
  CHECK(contains(srv.err(), "SIGTERM"));
}

TEST_CASE("serve: bad options and adapters that do not load are refused before it listens") {
  const std::string base = "--init " + fx().base;
  check_refused("serve", base, "--port is required");
  check_refused("serve", "--port 0", "--init is required");
  check_refused("serve", base + " --port 70000", "--port 70000");
  check_refused("serve", base + " --port 0 --max-batch 0", "--max-batch 0");
  check_refused("serve", base + " --port 0 --adapter qv", "expected NAME=PATH");
  check_refused("serve", base + " --port 0 --adapter base=" + fx().adapters.at("qv"), "the base model's name");
  check_refused("serve", base + " --port 0 --adapter x=/nonexistent/a.safetensors", "no such file");
  check_refused("serve", base + " --port 0 --adapter f=" + fx().foreign, "hash mismatch");
  check_refused("serve", base + " --port 0 --host 256.1.1.1", "cannot listen on 256.1.1.1");
}

#else  // a build without cpp-httplib: no serve binary to test

TEST_CASE("serve: built without cpp-httplib (libcpp-httplib-dev), skipped") {
  std::printf("serve: built without cpp-httplib (libcpp-httplib-dev), skipped\n");
}

#endif
