#include "nn/generate.h"

#include <algorithm>
#include <cmath>

#include "tensor/error.h"

namespace lowrank::nn {

using namespace lowrank::autograd;

double length_normalized(double log_prob, int64_t length, float length_penalty) {
  return log_prob / std::pow(static_cast<double>(length), static_cast<double>(length_penalty));
}

std::vector<int32_t> banned_ngram_tokens(const std::vector<int32_t>& seq, int64_t n) {
  std::vector<int32_t> banned;
  const int64_t len = static_cast<int64_t>(seq.size());
  if (n <= 0 || len < n) return banned;  // fewer than n tokens hold no complete n-gram yet
  const int32_t* s = seq.data();
  const int64_t tail = len - (n - 1);  // the last n-1 tokens, the prefix the next token would complete
  for (int64_t i = 0; i + n <= len; ++i)
    if (std::equal(s + i, s + i + n - 1, s + tail)) banned.push_back(s[i + n - 1]);
  return banned;
}

namespace {
struct Decoder {
  GPT& model;
  const std::vector<int32_t>& prompt;
  const DecodeOptions& opt;
  KVCache cache;
  int64_t V;
  int64_t limit;  // new tokens at most: max_new_tokens, and positions left in the model

  Decoder(GPT& m, const std::vector<int32_t>& p, const DecodeOptions& o)
      : model(m), prompt(p), opt(o), V(m.config.vocab_size) {
    const int64_t P = static_cast<int64_t>(p.size());
    LR_CHECK(P >= 1, "decode: empty prompt");
    LR_CHECK(P <= m.config.n_positions, "decode: prompt of ", P, " tokens exceeds n_positions ", m.config.n_positions);
    LR_CHECK(o.beam_size >= 1, "decode: beam_size ", o.beam_size, " < 1");
    LR_CHECK(o.eos_id >= 0 && o.eos_id < V, "decode: eos_id ", o.eos_id, " outside the vocabulary of ", V);
    limit = std::min(o.max_new_tokens, m.config.n_positions - P + 1);  // the last token is never fed
  }

  // Feeds ids (rows x T) after the cached positions; log-probs (rows, V) of the token after each row.
  std::vector<float> next_log_probs(const std::vector<int32_t>& ids, int64_t rows, int64_t T) {
    Context ctx;
    ctx.cache = &cache;
    Tensor h = model.hidden(ids, rows, T, ctx);  // (rows, T, C): only the last position goes through the head
    Tensor last = reshape(slice(h, 1, T - 1, 1), {rows, model.config.n_embd});
    return log_softmax(matmul(last, model.wte.weight, false, true)).to_vector();
  }

  // Sets to -inf the log-probs of tokens that would repeat an n-gram of (prompt +) generated.
  void ban_ngrams(float* row, const std::vector<int32_t>& generated) const {
    if (opt.no_repeat_ngram_size <= 0) return;
    std::vector<int32_t> with_prompt;
    if (opt.ngram_include_prompt) {
      with_prompt = prompt;
      with_prompt.insert(with_prompt.end(), generated.begin(), generated.end());
    }
    const std::vector<int32_t>& seq = opt.ngram_include_prompt ? with_prompt : generated;
    for (int32_t t : banned_ngram_tokens(seq, opt.no_repeat_ngram_size)) row[t] = -INFINITY;
  }
};

// The k largest finite entries of row (V), best first; ties go to the lower id.
std::vector<int32_t> top_k(const float* row, int64_t V, int64_t k) {
  std::vector<int32_t> idx;
  idx.reserve(static_cast<size_t>(V));
  for (int32_t v = 0; v < V; ++v)
    if (row[v] > -INFINITY) idx.push_back(v);
  const auto better = [row](int32_t a, int32_t b) { return row[a] > row[b] || (row[a] == row[b] && a < b); };
  const size_t kk = std::min(idx.size(), static_cast<size_t>(k));
  std::partial_sort(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(kk), idx.end(), better);
  idx.resize(kk);
  return idx;
}
}  // namespace

Hypothesis greedy_decode(GPT& model, const std::vector<int32_t>& prompt, const DecodeOptions& opt) {
  NoGradGuard no_grad;
  Decoder d(model, prompt, opt);
  Hypothesis h;
  if (d.limit <= 0) return h;
  std::vector<float> lp = d.next_log_probs(prompt, 1, static_cast<int64_t>(prompt.size()));
  for (int64_t step = 0; step < d.limit; ++step) {
    d.ban_ngrams(lp.data(), h.tokens);
    std::vector<int32_t> best = top_k(lp.data(), d.V, 1);
    LR_CHECK(!best.empty(), "greedy: every token is banned");
    h.log_prob += lp[static_cast<size_t>(best[0])];
    if (best[0] == opt.eos_id) {
      h.finished = true;
      break;
    }
    h.tokens.push_back(best[0]);
    if (step + 1 < d.limit) lp = d.next_log_probs({best[0]}, 1, 1);
  }
  const int64_t length = static_cast<int64_t>(h.tokens.size()) + (h.finished ? 1 : 0);
  h.score = length > 0 ? length_normalized(h.log_prob, length, opt.length_penalty) : 0.0;
  return h;
}

namespace {
struct Candidate {
  double log_prob;
  int32_t row, token;
};

// The best extensions of the live beams, best first. A row contributes at most beam_size non-EOS
// tokens plus one EOS to any selection, so its top beam_size + 1 tokens are all that can matter.
std::vector<Candidate> best_candidates(const std::vector<float>& lp, const std::vector<Hypothesis>& live,
                                       int64_t V, int64_t beam_size) {
  std::vector<Candidate> c;
  for (size_t r = 0; r < live.size(); ++r) {
    const float* row = lp.data() + r * static_cast<size_t>(V);
    for (int32_t t : top_k(row, V, beam_size + 1))
      c.push_back({live[r].log_prob + row[t], static_cast<int32_t>(r), t});
  }
  std::stable_sort(c.begin(), c.end(), [](const Candidate& a, const Candidate& b) { return a.log_prob > b.log_prob; });
  return c;
}

void add_finished(std::vector<Hypothesis>& done, Hypothesis h, int64_t keep) {
  done.push_back(std::move(h));
  std::stable_sort(done.begin(), done.end(), [](const Hypothesis& a, const Hypothesis& b) { return a.score > b.score; });
  if (static_cast<int64_t>(done.size()) > keep) done.resize(static_cast<size_t>(keep));
}

// The best score a live beam with this log_prob and `length` tokens can still reach: its log_prob can
// only fall, and it ends with length' in [length + 1, limit] tokens.
double best_reachable(double log_prob, int64_t length, int64_t limit, float lp) {
  const int64_t best_len = lp > 0.f ? std::max(limit, length + 1) : length + 1;
  return length_normalized(log_prob, best_len, lp);
}
}  // namespace

Hypothesis beam_decode(GPT& model, const std::vector<int32_t>& prompt, const DecodeOptions& opt) {
  if (opt.beam_size == 1) return greedy_decode(model, prompt, opt);
  NoGradGuard no_grad;
  Decoder d(model, prompt, opt);
  const int64_t K = opt.beam_size;
  std::vector<Hypothesis> live(1), done;
  if (d.limit <= 0) return live[0];
  std::vector<float> lp = d.next_log_probs(prompt, 1, static_cast<int64_t>(prompt.size()));
  for (int64_t step = 0; step < d.limit; ++step) {
    for (size_t r = 0; r < live.size(); ++r) d.ban_ngrams(lp.data() + r * static_cast<size_t>(d.V), live[r].tokens);
    std::vector<Hypothesis> next;
    std::vector<int32_t> parents;
    for (const Candidate& c : best_candidates(lp, live, d.V, K)) {
      Hypothesis h{live[static_cast<size_t>(c.row)].tokens, false, c.log_prob, 0.0};
      if (c.token == opt.eos_id) {
        h.finished = true;
        h.score = length_normalized(h.log_prob, step + 1, opt.length_penalty);
        add_finished(done, std::move(h), K);
        continue;
      }
      h.tokens.push_back(c.token);
      next.push_back(std::move(h));
      parents.push_back(c.row);
      if (static_cast<int64_t>(next.size()) == K) break;
    }
    live = std::move(next);  // best first
    if (live.empty() || step + 1 == d.limit) break;
    if (static_cast<int64_t>(done.size()) == K &&
        best_reachable(live[0].log_prob, step + 1, d.limit, opt.length_penalty) <= done.back().score)
      break;
    d.cache.reorder(parents);
    std::vector<int32_t> last;
    for (const Hypothesis& h : live) last.push_back(h.tokens.back());
    lp = d.next_log_probs(last, static_cast<int64_t>(live.size()), 1);
  }
  for (Hypothesis& h : live) {  // unfinished beams compete with what they have
    h.score = length_normalized(h.log_prob, static_cast<int64_t>(h.tokens.size()), opt.length_penalty);
    add_finished(done, std::move(h), K);
  }
  LR_CHECK(!done.empty(), "beam search: every token is banned");
  return done.front();
}

std::vector<int32_t> greedy(GPT& model, const std::vector<int32_t>& prompt, const DecodeOptions& opt) {
  return greedy_decode(model, prompt, opt).tokens;
}

std::vector<int32_t> beam_search(GPT& model, const std::vector<int32_t>& prompt, const DecodeOptions& opt) {
  return beam_decode(model, prompt, opt).tokens;
}

}  // namespace lowrank::nn
