// bench_serve: a bounded loopback load test of `serve`. C client threads each send R completions, one
// after the other, spread over the given adapters, and the run reports the latency percentiles, the
// throughput and the failed requests (tools/bench_serve.sh starts the server and runs this):
//   ./build/bench_serve --port 8080 --models a0,a1,a2,a3 --prompts mrs.txt --clients 8 --requests 200
// --make-adapters DIR --init BASE writes N adapters (random, as after training) for such a run.
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <mutex>
#include <thread>

#include "examples/common/adapter_bench.h"
#include "examples/common/cli.h"
#include "examples/common/format.h"

using namespace lowrank;
namespace ex = lowrank::examples;

namespace {

cxxopts::Options make_options() {
  cxxopts::Options o("bench_serve", "A bounded load test of serve: latency percentiles and throughput");
  // clang-format off
  o.add_options()
    ("host", "the server's address", cxxopts::value<std::string>()->default_value("127.0.0.1"))
    ("port", "the server's port", cxxopts::value<int>()->default_value("0"))
    ("models", "the adapters to spread the requests over (comma-separated)", cxxopts::value<std::string>()->default_value(""))
    ("prompts", "prompts, one per line", cxxopts::value<std::string>()->default_value(""))
    ("clients", "concurrent clients", cxxopts::value<int>()->default_value("8"))
    ("requests", "requests per client", cxxopts::value<int>()->default_value("200"))
    ("max-tokens", "max_tokens of every request", cxxopts::value<int>()->default_value("16"))
    ("json", "write the figures here", cxxopts::value<std::string>()->default_value(""))
    ("make-adapters", "write --count adapters for --init into this folder, then exit", cxxopts::value<std::string>()->default_value(""))
    ("init", "with --make-adapters: the base", cxxopts::value<std::string>()->default_value(""))
    ("count", "with --make-adapters: how many (r = 4 on Wq, Wv)", cxxopts::value<int>()->default_value("4"))
    ("h,help", "show help");
  // clang-format on
  return o;
}

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  LR_CHECK(in, "--prompts ", path, ": cannot open");
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(line);
  LR_CHECK(!out.empty(), "--prompts ", path, ": no prompts");
  return out;
}

struct Load {
  std::vector<double> latency_ms;
  int64_t failures = 0, tokens = 0;
  std::string first_error;
};

// Client t sends its requests one after another: request k asks model (t + k) % M, prompt (t·R + k) % P.
void client(const cxxopts::ParseResult& a, int t, const std::vector<std::string>& models,
            const std::vector<std::string>& prompts, Load& load, std::mutex& mu) {
  httplib::Client c(a["host"].as<std::string>(), a["port"].as<int>());
  c.set_read_timeout(600, 0);
  const int R = a["requests"].as<int>();
  for (int k = 0; k < R; ++k) {
    const nlohmann::json body = {{"model", models[static_cast<size_t>(t + k) % models.size()]},
                                 {"prompt", prompts[static_cast<size_t>(t * R + k) % prompts.size()]},
                                 {"max_tokens", a["max-tokens"].as<int>()}};
    ex::Timer timer;
    const httplib::Result r = c.Post("/v1/completions", body.dump(), "application/json");
    const double ms = 1e3 * timer.seconds();
    std::lock_guard<std::mutex> lock(mu);
    if (!r || r->status != 200) {
      if (load.failures++ == 0)
        load.first_error = r ? std::to_string(r->status) + " " + r->body : httplib::to_string(r.error());
      continue;
    }
    load.latency_ms.push_back(ms);
    load.tokens += nlohmann::json::parse(r->body)["usage"]["completion_tokens"].get<int64_t>();
  }
}

int make_adapters(const cxxopts::ParseResult& a) {
  const std::string dir = a["make-adapters"].as<std::string>(), base = a["init"].as<std::string>();
  LR_CHECK(!base.empty(), "--make-adapters needs --init (the base the adapters are for)");
  std::filesystem::create_directories(dir);
  for (int i = 0; i < a["count"].as<int>(); ++i)
    ex::write_adapter(base, ex::lora_cfg(4, {"q", "v"}), 100 + static_cast<uint64_t>(i),
                      dir + "/a" + std::to_string(i) + ".safetensors");
  return 0;
}

int bench_main(int argc, char** argv) {
  cxxopts::Options options = make_options();
  auto a = ex::parse_args(options, argc, argv);
  if (!a["make-adapters"].as<std::string>().empty()) return make_adapters(a);
  LR_CHECK(a["port"].as<int>() > 0, "--port: the server's port is required");
  const std::vector<std::string> models = ex::split_list(a["models"].as<std::string>());
  LR_CHECK(!models.empty(), "--models: at least one adapter name");
  const std::vector<std::string> prompts = read_lines(a["prompts"].as<std::string>());
  Load load;
  std::mutex mu;
  ex::Timer wall;
  std::vector<std::thread> threads;
  for (int t = 0; t < a["clients"].as<int>(); ++t)
    threads.emplace_back([&, t] { client(a, t, models, prompts, load, mu); });
  for (std::thread& th : threads) th.join();
  const double seconds = wall.seconds();
  const int64_t ok = static_cast<int64_t>(load.latency_ms.size());
  const nlohmann::json j = {{"clients", a["clients"].as<int>()},
                            {"requests", ok + load.failures},
                            {"failed", load.failures},
                            {"first_error", load.first_error},
                            {"models", models},
                            {"seconds", seconds},
                            {"p50_ms", ok ? ex::quantile(load.latency_ms, 0.5) : 0.0},
                            {"p99_ms", ok ? ex::quantile(load.latency_ms, 0.99) : 0.0},
                            {"requests_per_s", ok / seconds},
                            {"tokens_per_s", static_cast<double>(load.tokens) / seconds}};
  ex::print_table({"bench_serve", "value"}, {{"requests (failed)", std::to_string(ok + load.failures) + " (" +
                                                                       std::to_string(load.failures) + ")"},
                                             {"p50 latency", ex::fixed(j["p50_ms"].get<double>(), 1) + " ms"},
                                             {"p99 latency", ex::fixed(j["p99_ms"].get<double>(), 1) + " ms"},
                                             {"requests/s", ex::fixed(j["requests_per_s"].get<double>(), 2)},
                                             {"tokens/s", ex::fixed(j["tokens_per_s"].get<double>(), 1)}});
  if (!a["json"].as<std::string>().empty()) ex::write_json(a["json"].as<std::string>(), j);
  return load.failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) { return ex::run_main(argc, argv, bench_main); }
