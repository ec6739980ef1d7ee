#include "nn/sample.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "autograd/ops.h"
#include "nn/generate.h"
#include "tensor/error.h"

namespace lowrank::nn {

std::vector<float> next_logits(GPT& model, const std::vector<int32_t>& ids) {
  autograd::NoGradGuard no_grad;
  const int64_t T = std::min<int64_t>(static_cast<int64_t>(ids.size()), model.config.n_positions);
  std::vector<int32_t> window(ids.end() - T, ids.end());
  Tensor h = model.hidden(window, 1, T, Context{});  // (1,T,C)
  Tensor last = autograd::reshape(autograd::slice(h, 1, T - 1, 1), {1, model.config.n_embd});
  return model.wte.project(last).to_vector();  // only the last row's head (tied, + ΔE with LoRA on wte)
}

namespace {
// Zeroes every weight outside the nucleus: the most likely tokens, best first (ties to the lower id),
// up to and including the first one at which their sum reaches top_p of the total.
void keep_nucleus(std::vector<double>& w, double top_p) {
  if (top_p >= 1.0) return;
  std::vector<int32_t> order(w.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&w](int32_t a, int32_t b) { return w[a] > w[b]; });
  const double total = std::accumulate(w.begin(), w.end(), 0.0), target = top_p * total;
  double sum = 0.0;
  size_t keep = 0;
  while (keep < order.size() && sum < target) sum += w[order[keep++]];
  for (size_t i = std::max<size_t>(keep, 1); i < order.size(); ++i) w[order[i]] = 0.0;
}

// Bans (logit -inf) every id that would repeat an n-gram of the generated ids (nn::banned_ngram_tokens).
void ban_ngrams(std::vector<float>& logits, const std::vector<int32_t>& generated, int64_t n) {
  for (int32_t t : banned_ngram_tokens(generated, n)) logits[static_cast<size_t>(t)] = -INFINITY;
}
}  // namespace

std::vector<double> sampling_weights(const std::vector<float>& logits_in, const SampleOptions& opt) {
  LR_CHECK(opt.temperature > 0.f, "sampling_weights: temperature ", opt.temperature, " must be positive");
  LR_CHECK(opt.top_p > 0.f && opt.top_p <= 1.f, "sampling: top_p ", opt.top_p, " outside (0, 1]");
  std::vector<float> logits = logits_in;
  const int64_t V = static_cast<int64_t>(logits.size());
  if (opt.top_k > 0 && opt.top_k < V) {
    std::vector<float> sorted = logits;
    std::nth_element(sorted.begin(), sorted.begin() + (opt.top_k - 1), sorted.end(), std::greater<float>());
    const float kth = sorted[static_cast<size_t>(opt.top_k - 1)];
    for (float& l : logits)
      if (l < kth) l = -INFINITY;
  }
  const float mx = *std::max_element(logits.begin(), logits.end());
  std::vector<double> p(static_cast<size_t>(V));
  for (int64_t v = 0; v < V; ++v) p[v] = std::exp((logits[v] - mx) / opt.temperature);
  keep_nucleus(p, opt.top_p);
  return p;
}

int32_t sample_id(std::vector<float> logits, const SampleOptions& opt, Rng& rng) {
  const int64_t V = static_cast<int64_t>(logits.size());
  if (opt.temperature <= 0.f)
    return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  const std::vector<double> p = sampling_weights(logits, opt);
  double total = 0.0;
  for (int64_t v = 0; v < V; ++v) total += p[v];
  double u = rng.uniform() * total;
  for (int64_t v = 0; v < V; ++v)
    if ((u -= p[v]) <= 0.0 && p[v] > 0.0) return static_cast<int32_t>(v);
  return static_cast<int32_t>(std::max_element(p.begin(), p.end()) - p.begin());  // u ran past by rounding
}

std::vector<int32_t> sample(GPT& model, const std::vector<int32_t>& prompt, const SampleOptions& opt, Rng& rng) {
  LR_CHECK(!prompt.empty(), "sample: empty prompt");
  std::vector<int32_t> ids = prompt, out;
  for (int64_t i = 0; i < opt.max_new_tokens; ++i) {
    std::vector<float> logits = next_logits(model, ids);
    ban_ngrams(logits, out, opt.no_repeat_ngram_size);
    int32_t id = sample_id(std::move(logits), opt, rng);
    ids.push_back(id);
    out.push_back(id);
    if (id == opt.stop_id) break;
  }
  return out;
}

std::vector<int32_t> sample_cached(GPT& model, const std::vector<int32_t>& prompt, const SampleOptions& opt, Rng& rng,
                                   const TokenCallback& on_token) {
  LR_CHECK(!prompt.empty(), "sample_cached: empty prompt");
  const int64_t P = static_cast<int64_t>(prompt.size()), NP = model.config.n_positions;
  LR_CHECK(P <= NP, "sample_cached: prompt of ", P, " tokens exceeds n_positions ", NP);
  autograd::NoGradGuard no_grad;
  KVCache cache;
  Context ctx;
  ctx.cache = &cache;
  const int64_t limit = std::min(opt.max_new_tokens, NP - P + 1);  // the last id is never fed
  std::vector<int32_t> out, feed = prompt;
  for (int64_t i = 0; i < limit; ++i) {
    const int64_t T = static_cast<int64_t>(feed.size());
    Tensor h = model.hidden(feed, 1, T, ctx);  // (1, T, C) after the cached positions
    Tensor last = autograd::reshape(autograd::slice(h, 1, T - 1, 1), {1, model.config.n_embd});
    std::vector<float> logits = model.wte.project(last).to_vector();
    ban_ngrams(logits, out, opt.no_repeat_ngram_size);
    const int32_t id = sample_id(std::move(logits), opt, rng);
    out.push_back(id);
    const bool go_on = !on_token || on_token(id);
    if (id == opt.stop_id || !go_on) break;
    feed.assign(1, id);
  }
  return out;
}

}  // namespace lowrank::nn
