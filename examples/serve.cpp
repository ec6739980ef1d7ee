// serve: an OpenAI-style HTTP completions server over one GPT-2 base and many LoRA adapters
// (lora::AdapterSet), decoded in mixed-adapter batches by one worker thread. docs/serve.md.
/*   ./build/serve --init data/assets/gpt-e2e-base5/gpt-e2e-base5.safetensors \
         --adapter e2e=out/e2e/adapter.safetensors --adapter sst2=out/sst2/adapter.safetensors --port 8080
     curl -s localhost:8080/v1/completions -d '{"model": "e2e", "prompt": "name : The Vaults<|endoftext|>"}' */
// Prints "serve: listening on http://HOST:PORT" on stdout once it accepts requests (--port 0 picks a free
// port). Ctrl-C or SIGTERM: stop accepting, finish the requests already taken, exit 0. Errors before that
// (bad options, a base or adapter that does not load, a port in use) are one line, exit 1.
#define CXXOPTS_VECTOR_DELIMITER '\0'  // --adapter NAME=PATH taken whole: a path may hold commas
#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <thread>

#include "data/bpe.h"
#include "examples/common/cli.h"
#include "examples/common/model_load.h"
#include "examples/common/serve_http.h"
#include "examples/common/serve_worker.h"
#include "lora/adapter_set.h"

using namespace lowrank;
namespace ex = lowrank::examples;

namespace {

const std::string kSrc = LOWRANK_SOURCE_DIR;
const std::string kBaseName = "base";  // the base model's "model" name in requests

cxxopts::Options make_options() {
  cxxopts::Options o("serve", "An OpenAI-style completions server: a GPT-2 base and LoRA adapters (docs/serve.md)");
  // clang-format off
  o.add_options()
    ("init", "the base: a lowrank checkpoint (.safetensors) or a Hugging Face GPT-2 directory (required)",
     cxxopts::value<std::string>())
    ("adapter", "NAME=PATH: an adapter served as model NAME (lowrank's .safetensors or a peft directory; repeatable)",
     cxxopts::value<std::vector<std::string>>())
    ("host", "the address to listen on", cxxopts::value<std::string>()->default_value("127.0.0.1"))
    ("port", "the port (0: a free one, printed) (required)", cxxopts::value<int>())
    ("threads", "CPU threads of the decoding (0: all)", cxxopts::value<int>()->default_value("0"))
    ("http-threads", "threads that take connections (each waits while its request decodes)",
     cxxopts::value<int>()->default_value("16"))
    ("max-batch", "completions decoded together at most", cxxopts::value<int64_t>()->default_value("16"))
    ("max-prompt-tokens", "longest prompt accepted, in tokens (0: the model's context less max_tokens)",
     cxxopts::value<int64_t>()->default_value("0"))
    ("max-tokens-limit", "largest \"max_tokens\" accepted", cxxopts::value<int64_t>()->default_value("256"))
    ("max-beam", "largest \"beam\" accepted", cxxopts::value<int64_t>()->default_value("8"))
    ("max-body", "largest request body, in bytes", cxxopts::value<int64_t>()->default_value("1048576"))
    ("help", "print this help");
  // clang-format on
  return o;
}

struct ServeConfig {
  std::string host;
  int port = 0, http_threads = 16;
  int64_t max_body = 0;
  ex::WorkerOptions worker;
  data::CompletionLimits limits;
};

ServeConfig read_config(const cxxopts::ParseResult& a) {
  LR_CHECK(a.count("init"), "--init is required (a lowrank checkpoint or a Hugging Face GPT-2 directory)");
  LR_CHECK(a.count("port"), "--port is required (0: pick a free port)");
  ServeConfig c;
  c.host = a["host"].as<std::string>();
  c.port = a["port"].as<int>();
  LR_CHECK(c.port >= 0 && c.port <= 65535, "--port ", c.port, ": expected 0 to 65535");
  c.http_threads = a["http-threads"].as<int>();
  LR_CHECK(c.http_threads >= 1, "--http-threads ", c.http_threads, ": must be at least 1");
  c.max_body = a["max-body"].as<int64_t>();
  LR_CHECK(c.max_body >= 1024, "--max-body ", c.max_body, ": must be at least 1024 bytes");
  c.worker = {a["max-batch"].as<int64_t>(), a["threads"].as<int>(), kBaseName};
  LR_CHECK(c.worker.max_batch >= 1, "--max-batch ", c.worker.max_batch, ": must be at least 1");
  c.limits.max_prompt_tokens = a["max-prompt-tokens"].as<int64_t>();
  LR_CHECK(c.limits.max_prompt_tokens >= 0, "--max-prompt-tokens ", c.limits.max_prompt_tokens, ": must be >= 0");
  c.limits.max_tokens_limit = a["max-tokens-limit"].as<int64_t>();
  LR_CHECK(c.limits.max_tokens_limit >= 1, "--max-tokens-limit ", c.limits.max_tokens_limit, ": must be >= 1");
  c.limits.default_max_tokens = std::min<int64_t>(16, c.limits.max_tokens_limit);
  c.limits.max_beam = a["max-beam"].as<int64_t>();
  LR_CHECK(c.limits.max_beam >= 1, "--max-beam ", c.limits.max_beam, ": must be at least 1");
  return c;
}

// --adapter NAME=PATH, each loaded into the set (any error names the adapter and stops the start).
void load_adapters(const cxxopts::ParseResult& a, lora::AdapterSet& set) {
  if (!a.count("adapter")) return;
  for (const std::string& spec : a["adapter"].as<std::vector<std::string>>()) {
    const size_t eq = spec.find('=');
    LR_CHECK(eq != std::string::npos && eq > 0 && eq + 1 < spec.size(), "--adapter ", spec, ": expected NAME=PATH");
    const std::string name = spec.substr(0, eq);
    try {
      data::check_adapter_name(name, kBaseName);
    } catch (const data::ApiError& e) {
      throw Error(cat("--adapter ", spec, ": ", e.what()));
    }
    set.load(name, spec.substr(eq + 1));
  }
}

// Binds (port 0: any free one) and returns the port.
int bind_server(httplib::Server& svr, const ServeConfig& c) {
  const int port = c.port == 0 ? svr.bind_to_any_port(c.host) : (svr.bind_to_port(c.host, c.port) ? c.port : -1);
  LR_CHECK(port > 0, "cannot listen on ", c.host, ":", c.port, " (address in use, or not an address of this machine)");
  return port;
}

// SIGINT and SIGTERM are taken by sigwait in serve_main's thread only: blocked before any thread starts,
// so every thread inherits the mask. A client that goes away must not kill the process (SIGPIPE).
sigset_t block_stop_signals() {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGINT);
  sigaddset(&s, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &s, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  return s;
}

int serve_main(int argc, char** argv) {
  cxxopts::Options options = make_options();
  auto a = ex::parse_args(options, argc, argv);
  const ServeConfig cfg = read_config(a);
  const sigset_t stop_signals = block_stop_signals();

  data::Gpt2Bpe tok = data::Gpt2Bpe::from_dir(kSrc + "/data/assets/gpt2-bpe");
  Rng rng(1);
  const std::string init = a["init"].as<std::string>();
  std::unique_ptr<nn::GPT> model = ex::load_model_with_adapter(init, "", tensor::Device::CPU, rng);
  LR_CHECK(model->config.vocab_size == tok.vocab_size(), init, ": vocabulary ", model->config.vocab_size,
           " is not GPT-2 BPE's ", tok.vocab_size());
  lora::AdapterSet set(*model);
  load_adapters(a, set);
  data::CompletionLimits limits = cfg.limits;
  limits.context = model->config.n_positions;

  ex::DecodeWorker worker(*model, set, tok, cfg.worker);
  httplib::Server svr;
  const int http_threads = cfg.http_threads;
  svr.new_task_queue = [http_threads] { return new httplib::ThreadPool(static_cast<size_t>(http_threads)); };
  svr.set_payload_max_length(static_cast<size_t>(cfg.max_body));
  ex::ServeRoutes routes{worker, tok, limits, kBaseName};
  routes.add_to(svr);
  const int port = bind_server(svr, cfg);
  std::atomic<bool> listen_failed{false};
  std::thread listener([&svr, &listen_failed] {
    if (svr.listen_after_bind()) return;
    listen_failed = true;
    kill(getpid(), SIGTERM);  // wakes the sigwait below
  });
  // Accepting before the line is printed (and before a signal could come to stop() a server not yet running).
  while (!svr.is_running() && !listen_failed) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::fprintf(stderr, "serve: %s (%ld layers, context %ld), %zu adapters, batches of up to %ld\n", init.c_str(),
               static_cast<long>(model->config.n_layer), static_cast<long>(limits.context), set.adapters().size(),
               static_cast<long>(cfg.worker.max_batch));
  std::printf("serve: listening on http://%s:%d\n", cfg.host.c_str(), port);
  std::fflush(stdout);

  int sig = 0;
  sigwait(&stop_signals, &sig);
  if (listen_failed) {
    listener.join();
    throw Error(cat("listening on ", cfg.host, ":", port, " failed"));
  }
  std::fprintf(stderr, "serve: %s: finishing the requests taken, then exiting\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
  svr.stop();       // no new connections; handlers in flight wait for their results
  listener.join();  // httplib's pool joined: every taken request answered
  worker.stop();
  std::fprintf(stderr, "serve: stopped after %ld completions\n", static_cast<long>(worker.served()));
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return ex::run_main(argc, argv, serve_main); }
