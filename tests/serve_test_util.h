#pragma once
// What the serve tests share (test_cli_serve.cpp, test_cli_serve_load.cpp; include only under
// LOWRANK_HAVE_HTTPLIB): the serve binary run as a process, started on 127.0.0.1 with --port 0, its port
// read from the line it prints on stdout, its stderr kept in a file for CAPTURE, and always killed by the
// destructor (a failed REQUIRE leaves no server behind); the tiny base and adapters it serves; generate's
// answers to compare with; and requests through httplib's client.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <httplib.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "cli_util.h"
#include "data/bpe.h"
#include "lora/lora.h"
#include "nn/checkpoint.h"
#include "test_util.h"

namespace lowrank::testing {

class ServerProcess {
 public:
  // Runs build/serve --host 127.0.0.1 --port 0 <args> (a shell fragment) and waits up to 60 s for its port.
  ServerProcess(const std::string& args, const TempDir& tmp) : err_path_(tmp.file("serve.stderr")) {
    int fds[2];
    if (pipe(fds) != 0) return;
    const std::string cmd =
        "exec " + std::string(LOWRANK_BINARY_DIR) + "/serve --host 127.0.0.1 --port 0 " + args + " 2>" + err_path_;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(fds[1], 1);
      close(fds[0]);
      close(fds[1]);
      execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    close(fds[1]);
    out_fd_ = fds[0];
    if (pid_ > 0) port_ = read_port(std::chrono::seconds(60));
  }
  ~ServerProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (out_fd_ >= 0) close(out_fd_);
  }
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  int port() const { return port_; }  // 0: it did not start (see err())
  std::string out() const { return out_; }
  std::string err() const { return read_bytes(err_path_); }
  bool running() {
    if (pid_ > 0 && waitpid(pid_, nullptr, WNOHANG) == pid_) pid_ = -1;  // exited: reaped here
    return pid_ > 0;
  }

  // Sends sig and waits up to 30 s: the exit status, or -1 (killed by a signal, or still running).
  int stop(int sig) {
    if (pid_ <= 0) return -1;
    kill(pid_, sig);
    for (int i = 0; i < 3000; ++i) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return -1;
  }

 private:
  // The port of "serve: listening on http://127.0.0.1:PORT", or 0 at EOF (it exited) or at the deadline.
  int read_port(std::chrono::seconds limit) {
    const std::string mark = "serve: listening on http://127.0.0.1:";
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      const size_t at = out_.find(mark);
      if (at != std::string::npos && out_.find('\n', at) != std::string::npos)
        return std::stoi(out_.substr(at + mark.size()));
      pollfd p{out_fd_, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      char buf[256];
      const ssize_t n = read(out_fd_, buf, sizeof buf);
      if (n <= 0) return 0;
      out_.append(buf, static_cast<size_t>(n));
    }
    return 0;
  }

  std::string err_path_, out_;
  pid_t pid_ = -1;
  int out_fd_ = -1, port_ = 0;
};

}  // namespace lowrank::testing

// The served model and the requests, apart from other tests' helpers of the same names.
namespace lowrank::testing::serve {

using nlohmann::json;

inline const data::Gpt2Bpe& serve_bpe() {
  static const data::Gpt2Bpe tok = data::Gpt2Bpe::from_dir(std::string(LOWRANK_SOURCE_DIR) + "/data/assets/gpt2-bpe");
  return tok;
}

// Prompts of three lengths, two of them equal (they share a forward in a batch).
inline const std::vector<std::string> kServePrompts = {"name : The Vaults | Type : pub<|endoftext|>", "Hello world",
                                                       "Hello there", "The quick brown fox jumps over"};

// Every parameter that `pick` selects drawn again from N(0, std^2).
inline void redraw(nn::GPT& m, uint64_t seed, float std, const std::function<bool(const nn::NamedTensor&)>& pick) {
  Rng rng(seed);
  for (nn::NamedTensor& p : m.named_parameters()) {
    if (!pick(p)) continue;
    float* d = p.tensor.data();
    for (int64_t i = 0; i < p.tensor.numel(); ++i) d[i] = rng.normal() * std;
  }
}

inline std::unique_ptr<nn::GPT> make_base(uint64_t seed) {
  nn::GPTConfig c = nn::config_by_name("tiny");
  c.vocab_size = 50257;
  c.n_layer = 1;
  c.n_positions = 64;
  Rng rng(seed);
  auto m = std::make_unique<nn::GPT>(c, rng);
  // weights far from a fresh init's (std 0.02): peaked next-token distributions, far from ties
  redraw(*m, seed + 1, 0.3f, [](const nn::NamedTensor& p) { return p.name.find("ln_") == std::string::npos; });
  return m;
}

// The base, four adapters (name -> path) and an adapter of another base; made once, removed at exit.
struct Fixture {
  TempDir tmp{"serve_fixture"};
  std::string base = tmp.file("base.safetensors"), foreign = tmp.file("foreign.safetensors");
  std::map<std::string, std::string> adapters;
  Fixture() {
    nn::save_model(base, *make_base(5));
    const std::vector<std::tuple<std::string, std::vector<std::string>, int64_t, bool>> specs = {
        {"qv", {"q", "v"}, 2, false},
        {"mlp", {"mlp"}, 4, false},
        {"attn", {"c_attn"}, 3, true},
        {"emb", {"q", "wte"}, 2, false}};
    uint64_t seed = 20;
    for (const auto& [name, targets, r, peft] : specs) {
      std::unique_ptr<nn::GPT> m = make_base(5);
      lora::LoRAConfig lc;
      lc.r = r;
      lc.targets = targets;
      Rng rng(seed);
      lora::apply_lora(*m, lc, rng);
      redraw(*m, ++seed, 0.5f, [](const nn::NamedTensor& p) { return p.tensor.requires_grad(); });  // as trained
      adapters[name] = tmp.file(name + (peft ? "" : ".safetensors"));
      peft ? lora::save_peft(adapters[name], *m, lc) : lora::save_adapter(adapters[name], *m, lc);
    }
    std::unique_ptr<nn::GPT> other = make_base(6);
    Rng rng(1);
    lora::apply_lora(*other, lora::LoRAConfig{}, rng);
    lora::save_adapter(foreign, *other, lora::LoRAConfig{});
  }
  std::string adapter_args(const std::vector<std::string>& names) const {
    std::string out;
    for (const std::string& n : names) out += " --adapter " + n + "=" + adapters.at(n);
    return out;
  }
};
inline const Fixture& fx() {
  static const Fixture f;
  return f;
}

// generate's greedy completions (JSON lines: "completion", "tokens", "finish_reason") of the prompts with
// one adapter ("" for the base), max_new tokens each.
inline std::vector<json> generate_ref(const std::string& adapter, const std::vector<std::string>& prompts,
                                      int64_t max_new) {
  TempDir tmp("serve_gen");
  std::string in;
  for (const std::string& p : prompts) in += json{{"prompt", p}}.dump() + "\n";
  write_bytes(tmp.file("in.jsonl"), in);
  const std::string args = "--threads 1 --init " + fx().base + (adapter.empty() ? "" : " --adapter " + adapter) +
                           " --input " + tmp.file("in.jsonl") + " --output " + tmp.file("out.jsonl") +
                           " --max-new-tokens " + std::to_string(max_new);
  const Run r = run_example("generate", args, tmp);
  CAPTURE(r.err);
  REQUIRE(r.rc == 0);
  std::vector<json> out;
  std::istringstream lines(read_bytes(tmp.file("out.jsonl")));
  for (std::string line; std::getline(lines, line);) out.push_back(json::parse(line));
  REQUIRE(out.size() == prompts.size());
  return out;
}

struct Reply {
  int status = 0;
  json body;
  std::string error;  // the transport's error when there is no reply
};

inline Reply request(httplib::Client& c, const std::string& method, const std::string& path,
                     const std::string& body = "") {
  httplib::Result r = method == "GET"      ? c.Get(path.c_str())
                      : method == "DELETE" ? c.Delete(path.c_str())
                                           : c.Post(path.c_str(), body, "application/json");
  if (!r) return {0, json(), httplib::to_string(r.error())};
  Reply out{r->status, json(), ""};
  out.body = json::parse(r->body, nullptr, false);
  return out;
}

inline json completion_body(const std::string& model, const std::string& prompt, int64_t max_tokens) {
  return {{"model", model}, {"prompt", prompt}, {"max_tokens", max_tokens}, {"temperature", 0}};
}

// A completion that must succeed: its choice's text.
inline std::string complete(httplib::Client& c, const std::string& model, const std::string& prompt,
                            int64_t max_tokens) {
  const Reply r = request(c, "POST", "/v1/completions", completion_body(model, prompt, max_tokens).dump());
  CAPTURE(r.error);
  CAPTURE(r.body.dump());
  REQUIRE(r.status == 200);
  return r.body["choices"][0]["text"].get<std::string>();
}

inline httplib::Client client(int port) {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(60, 0);
  c.set_connection_timeout(10, 0);
  return c;
}

// /health once nothing is queued or decoding and at least min_served completions were answered (polled
// for up to 20 s): its counts are then final.
inline json wait_idle(httplib::Client& c, int64_t min_served = 0) {
  Reply h = request(c, "GET", "/health");
  auto idle = [&] { return h.status == 200 && h.body["pending"] == 0 && h.body["served"] >= min_served; };
  for (int i = 0; i < 2000 && !idle(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    h = request(c, "GET", "/health");
  }
  return h.body;
}

}  // namespace lowrank::testing::serve
