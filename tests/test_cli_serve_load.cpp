// serve under load (serve_test_util.h's base and adapters): 8 concurrent clients get exactly the
// single-request answers, with requests of 4 adapters batched together; SIGINT finishes the requests
// taken and exits 0. Built with cpp-httplib only (test_cli_serve.cpp says so in a build without it).
#include <doctest/doctest.h>

#ifdef LOWRANK_HAVE_HTTPLIB
#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include "serve_test_util.h"

using namespace lowrank;
using namespace lowrank::testing;
using namespace lowrank::testing::serve;

TEST_CASE("serve: 8 concurrent clients x 25 requests over 4 adapters get the single-request answers") {
  TempDir tmp("serve_load");
  ServerProcess srv("--threads 1 --max-batch 16 --init " + fx().base + fx().adapter_args({"qv", "mlp", "attn", "emb"}),
                    tmp);
  CAPTURE(srv.err());
  REQUIRE(srv.port() > 0);
  struct Ask {
    std::string model, prompt;
    int64_t max_tokens;
  };
  std::vector<Ask> asks;
  for (const std::string model : {"qv", "mlp", "attn", "emb"})
    for (const std::string& prompt : kServePrompts)
      for (int64_t n : {3, 6}) asks.push_back({model, prompt, n});
  std::vector<std::string> single;  // each ask alone, one after another
  httplib::Client c = client(srv.port());
  for (const Ask& a : asks) single.push_back(complete(c, a.model, a.prompt, a.max_tokens));
  std::atomic<int> failures{0};
  std::mutex mu;
  std::vector<std::string> wrong;
  std::vector<std::thread> clients;
  for (size_t t = 0; t < 8; ++t)
    clients.emplace_back([&, t] {
      httplib::Client cc = client(srv.port());
      for (size_t k = 0; k < 25; ++k) {
        const size_t i = (t * 7 + k * 3) % asks.size();
        const Reply r = request(cc, "POST", "/v1/completions",
                                completion_body(asks[i].model, asks[i].prompt, asks[i].max_tokens).dump());
        if (r.status != 200) {
          ++failures;
          std::lock_guard<std::mutex> lock(mu);
          wrong.push_back(std::to_string(r.status) + " " + r.error + " " + r.body.dump());
        } else if (r.body["choices"][0]["text"] != single[i]) {
          std::lock_guard<std::mutex> lock(mu);
          wrong.push_back(asks[i].model + " / " + asks[i].prompt + ": " + r.body.dump() + " vs " + single[i]);
        }
      }
    });
  for (std::thread& th : clients) th.join();
  CAPTURE(wrong.size() > 0 ? wrong.front() : std::string());
  CHECK(failures == 0);
  CHECK(wrong.empty());
  const json health = wait_idle(c);
  CHECK(health["pending"] == 0);
  CHECK(health["served"] == asks.size() + 200);
  CHECK(health["batches"].get<int64_t>() < health["served"].get<int64_t>());  // some were batched
  CHECK(srv.stop(SIGTERM) == 0);
}

TEST_CASE("serve: SIGINT while requests are queued and decoding answers them all, then exits 0") {
  TempDir tmp("serve_sigint");
  ServerProcess srv("--threads 1 --max-beam 64 --init " + fx().base + fx().adapter_args({"qv"}), tmp);
  CAPTURE(srv.err());
  REQUIRE(srv.port() > 0);
  httplib::Client c = client(srv.port());
  auto pending = [&] {
    const Reply h = request(c, "GET", "/health");
    return h.status == 200 ? h.body["pending"].get<int64_t>() : -1;
  };
  std::atomic<int> ok{0};
  std::mutex mu;
  std::string first_error;  // the first failed request's error, shown by the failing checks
  auto error_now = [&] {
    std::lock_guard<std::mutex> lock(mu);
    return first_error;
  };
  std::vector<std::thread> clients;
  auto ask = [&](json body) {
    clients.emplace_back([&, body] {
      httplib::Client cc = client(srv.port());
      const Reply r = request(cc, "POST", "/v1/completions", body.dump());
      if (r.status == 200) {
        ++ok;
        return;
      }
      std::lock_guard<std::mutex> lock(mu);
      if (first_error.empty()) first_error = std::to_string(r.status) + " " + r.error + " " + r.body.dump();
    });
  };
  json slow = completion_body("qv", kServePrompts[1], 50);
  slow["beam"] = 64;  // seconds of decoding: the worker is busy while the others queue
  ask(slow);
  for (int i = 0; i < 1000 && pending() < 1; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  for (size_t t = 0; t < 5; ++t) ask(completion_body(t % 2 ? "qv" : "base", kServePrompts[t % 4], 4));
  int64_t seen = 0;
  for (int i = 0; i < 1000 && seen < 6; ++i) seen = std::max(seen, pending());
  {
    const std::string error = error_now();
    CAPTURE(error);
    CHECK(seen == 6);  // all six taken before the signal
    CHECK(ok == 0);    // and none answered yet
  }
  const int rc = srv.stop(SIGINT);
  for (std::thread& th : clients) th.join();
  CAPTURE(first_error);
  CHECK(rc == 0);
  CHECK(ok == 6);
  CHECK(contains(srv.err(), "SIGINT"));
}

#endif
