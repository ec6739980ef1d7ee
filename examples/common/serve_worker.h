#pragma once
// The decode worker of `serve` (examples/serve.cpp, docs/serve.md): ONE thread owns the model and its
// lora::AdapterSet. HTTP handler threads only parse, submit and wait on a future; the worker takes
// everything queued (up to max_batch completions), decodes it together and fulfils the futures.
//
//   DecodeWorker w(model, set, tok, {16, threads, "base"});
//   std::future<ServedCompletion> f = w.submit(request);        // ApiError through the future on failure
//   std::future<lora::AdapterInfo> g = w.load("sql", path);      // run on the worker, between batches
//
// A batch is the longest run of queued completions (FIFO, at most max_batch) before the next adapter
// load or unload, so a completion queued before an unload still sees its adapter. The batch is grouped by
// (max_tokens, beam), and each group is one nn::beam_decode_batch call with an adapter slot per prompt
// (mixed adapters, unmerged; prompts of equal length share every forward). Adapters of the token
// embedding are served merged (lora/adapter_set.h): their prompts are decoded apart, the adapter
// activated for the call and the base restored after it. A request whose adapter was unloaded after it
// was checked fails alone (404); a decode that throws fails its own group (500). A result whose client
// went away is fulfilled all the same and dropped with its future.
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "data/serve_request.h"
#include "examples/common/generate_run.h"
#include "lora/adapter_set.h"
#include "nn/generate.h"
#include "tensor/parallel.h"

namespace lowrank::examples {

struct ServedCompletion {
  std::string text;  // cut before the first stop string
  int64_t prompt_tokens = 0, completion_tokens = 0;
  std::string finish_reason;  // "stop" (EOS or a stop string) or "length"
};

struct WorkerOptions {
  int64_t max_batch = 16;  // completions decoded together at most
  int threads = 0;         // CPU threads of the worker's decoding (0: all)
  std::string base_name = "base";
};

class DecodeWorker {
 public:
  DecodeWorker(nn::GPT& model, lora::AdapterSet& set, const data::Tokenizer& tok, WorkerOptions opt)
      : model_(model), set_(set), tok_(tok), opt_(std::move(opt)) {
    publish();
    thread_ = std::thread([this] { loop(); });
  }
  ~DecodeWorker() { stop(); }
  DecodeWorker(const DecodeWorker&) = delete;
  DecodeWorker& operator=(const DecodeWorker&) = delete;

  std::future<ServedCompletion> submit(data::CompletionRequest r) {
    Job j;
    j.request = std::make_unique<data::CompletionRequest>(std::move(r));
    std::future<ServedCompletion> f = j.done.get_future();
    enqueue(std::move(j));
    return f;
  }
  std::future<lora::AdapterInfo> load(const std::string& name, const std::string& path) {
    return run_task<lora::AdapterInfo>([name, path](lora::AdapterSet& s) {
      if (s.has(name)) throw data::ApiError(409, "adapter_exists", "an adapter named '" + name + "' is loaded");
      try {
        s.load(name, path);
      } catch (const Error& e) {  // the loader's reason: no such file, a corrupt file, another base
        throw data::ApiError(422, "invalid_adapter", e.what());
      }
      return info_of(s, name);
    });
  }
  std::future<bool> unload(const std::string& name) {
    return run_task<bool>([this, name](lora::AdapterSet& s) {
      if (!s.has(name)) throw not_found(name, s.adapters());
      s.unload(name);
      return true;
    });
  }

  // 404 naming the known models unless `model` is the base or a loaded adapter (a snapshot: the worker
  // checks again when it decodes).
  void check_model(const std::string& model) const {
    std::lock_guard<std::mutex> lock(info_mutex_);
    if (model == opt_.base_name) return;
    for (const lora::AdapterInfo& a : infos_)
      if (a.name == model) return;
    throw not_found(model, infos_);
  }
  std::vector<lora::AdapterInfo> adapters() const {
    std::lock_guard<std::mutex> lock(info_mutex_);
    return infos_;
  }
  int64_t pending() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return static_cast<int64_t>(queue_.size()) + busy_;
  }
  int64_t served() const {  // completions answered (or failed) so far
    std::lock_guard<std::mutex> lock(mutex_);
    return served_;
  }
  int64_t batches() const {  // decode batches so far: served() / batches() is the mean batch
    std::lock_guard<std::mutex> lock(mutex_);
    return batches_;
  }

  // Refuses new work (503), finishes what is queued, joins the thread.
  void stop() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  struct Job {
    std::unique_ptr<data::CompletionRequest> request;  // a completion, or
    std::promise<ServedCompletion> done;
    std::function<void(lora::AdapterSet&)> task;  // an adapter load or unload (fulfils its own promise)
  };

  static lora::AdapterInfo info_of(const lora::AdapterSet& s, const std::string& name) {
    for (const lora::AdapterInfo& a : s.adapters())
      if (a.name == name) return a;
    throw data::ApiError(500, "internal_error", "adapter '" + name + "' vanished");
  }
  data::ApiError not_found(const std::string& model, const std::vector<lora::AdapterInfo>& loaded) const {
    std::string known = opt_.base_name;
    for (const lora::AdapterInfo& a : loaded) known += ", " + a.name;
    return data::ApiError(404, "model_not_found", "unknown model '" + model + "' (known: " + known + ")");
  }
  void publish() {
    std::lock_guard<std::mutex> lock(info_mutex_);
    infos_ = set_.adapters();
  }

  template <typename T, typename F>
  std::future<T> run_task(F f) {
    auto p = std::make_shared<std::promise<T>>();
    std::future<T> out = p->get_future();
    Job j;
    j.task = [this, p, f](lora::AdapterSet& s) {
      std::unique_ptr<T> value;
      std::exception_ptr error;
      try {
        value = std::make_unique<T>(f(s));
      } catch (...) {
        error = std::current_exception();
      }
      publish();  // before the answer: a client that got it sees the set as it now is
      if (error)
        p->set_exception(error);
      else
        p->set_value(std::move(*value));
    };
    enqueue(std::move(j));
    return out;
  }

  void enqueue(Job j) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_) {
        const data::ApiError e(503, "shutting_down", "the server is shutting down");
        if (j.task) throw e;
        j.done.set_exception(std::make_exception_ptr(e));
        return;
      }
      queue_.push_back(std::move(j));
    }
    cv_.notify_one();
  }

  // The next unit of work: one adapter task, or up to max_batch completions queued before the next task.
  std::vector<Job> take() {
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    std::vector<Job> out;
    while (!queue_.empty() && static_cast<int64_t>(out.size()) < opt_.max_batch) {
      const bool task = static_cast<bool>(queue_.front().task);
      if (task && !out.empty()) break;
      out.push_back(std::move(queue_.front()));
      queue_.pop_front();
      if (task) break;
    }
    busy_ = static_cast<int64_t>(out.size());
    return out;
  }

  void loop() {
    tensor::set_num_threads(opt_.threads);  // OpenMP's thread count is per thread: set it on this one
    for (;;) {
      std::vector<Job> jobs = take();
      if (jobs.empty()) return;  // stopping, and nothing left
      const bool task = static_cast<bool>(jobs.front().task);
      if (task)
        jobs.front().task(set_);
      else
        decode(jobs);
      std::lock_guard<std::mutex> lock(mutex_);
      served_ += task ? 0 : static_cast<int64_t>(jobs.size());
      batches_ += task ? 0 : 1;
      busy_ = 0;
    }
  }

  void decode(std::vector<Job>& jobs);
  void decode_group(std::vector<Job*>& group, const std::string& merged);

  nn::GPT& model_;
  lora::AdapterSet& set_;
  const data::Tokenizer& tok_;
  const WorkerOptions opt_;
  std::thread thread_;
  mutable std::mutex mutex_;  // queue_, stopping_ and the counts
  std::condition_variable cv_;
  std::deque<Job> queue_;
  bool stopping_ = false;
  int64_t busy_ = 0, served_ = 0, batches_ = 0;
  mutable std::mutex info_mutex_;  // infos_: the loaded adapters as the handlers see them
  std::vector<lora::AdapterInfo> infos_;
};

// Groups the batch by (max_tokens, beam, merged adapter): "" for the base and the unmerged adapters.
inline void DecodeWorker::decode(std::vector<Job>& jobs) {
  std::map<std::tuple<int64_t, int64_t, std::string>, std::vector<Job*>> groups;
  for (Job& j : jobs) {
    const std::string& model = j.request->model;
    if (model != opt_.base_name && !set_.has(model)) {
      j.done.set_exception(std::make_exception_ptr(not_found(model, set_.adapters())));
      continue;
    }
    const bool merged = model != opt_.base_name && info_of(set_, model).embedding;
    groups[{j.request->max_tokens, j.request->beam, merged ? model : ""}].push_back(&j);
  }
  for (auto& [key, group] : groups) decode_group(group, std::get<2>(key));
}

// One nn::beam_decode_batch call; `merged`: the embedding adapter every prompt of the group uses.
inline void DecodeWorker::decode_group(std::vector<Job*>& group, const std::string& merged) {
  nn::DecodeOptions o;
  o.beam_size = group.front()->request->beam;
  o.max_new_tokens = group.front()->request->max_tokens;
  std::vector<std::vector<int32_t>> prompts;
  std::vector<int32_t> slots;
  std::vector<ServedCompletion> out;
  try {
    for (Job* j : group) {
      prompts.push_back(j->request->tokens);
      slots.push_back(j->request->model == opt_.base_name || !merged.empty() ? -1 : set_.slot(j->request->model));
    }
    const int64_t rows = opt_.max_batch * o.beam_size;
    std::vector<nn::Hypothesis> hyps;
    if (merged.empty()) {
      hyps = nn::beam_decode_batch(model_, prompts, slots, o, rows);
    } else {
      set_.activate(merged);
      try {
        hyps = nn::beam_decode_batch(model_, prompts, o, rows);
      } catch (...) {
        set_.activate("");
        throw;
      }
      set_.activate("");
    }
    for (size_t i = 0; i < group.size(); ++i) {
      const Completion c = from_hypothesis(tok_, hyps[i], group[i]->request->stops);
      const int64_t n = static_cast<int64_t>(prompts[i].size());
      out.push_back({c.text, n, c.tokens, c.finish_reason == "length" ? "length" : "stop"});
    }
  } catch (const std::exception& e) {
    const data::ApiError err(500, "internal_error", std::string("decoding failed: ") + e.what());
    for (Job* j : group) j->done.set_exception(std::make_exception_ptr(err));
    return;
  }
  for (size_t i = 0; i < group.size(); ++i) group[i]->done.set_value(std::move(out[i]));
}

}  // namespace lowrank::examples
