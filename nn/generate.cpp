#include "nn/generate.h"

#include <algorithm>
#include <cmath>

#include "nn/generate_beams.h"
#include "tensor/error.h"

namespace lowrank::nn {

double length_normalized(double log_prob, int64_t length, float length_penalty) {
  // LAB 7 begin: length_normalized (the length penalty)
  return log_prob / std::pow(static_cast<double>(length), static_cast<double>(length_penalty));
  // LAB 7 end
}

std::vector<int32_t> banned_ngram_tokens(const std::vector<int32_t>& seq, int64_t n) {
  // LAB 7 begin: banned_ngram_tokens (no-repeat n-grams)
  std::vector<int32_t> banned;
  const int64_t len = static_cast<int64_t>(seq.size());
  if (n <= 0 || len < n) return banned;  // fewer than n tokens hold no complete n-gram yet
  const int32_t* s = seq.data();
  const int64_t tail = len - (n - 1);  // the last n-1 tokens, the prefix the next token would complete
  for (int64_t i = 0; i + n <= len; ++i)
    if (std::equal(s + i, s + i + n - 1, s + tail)) banned.push_back(s[i + n - 1]);
  return banned;
  // LAB 7 end
}

namespace {
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

struct Candidate {
  double log_prob;
  int32_t row, token;
};

// The best extensions of the live beams (lp (rows, V)), best first, taking each row's top per_row
// tokens. A row contributes at most beam_size non-EOS tokens plus one EOS to any selection, so its
// top beam_size + 1 tokens are all that can matter.
std::vector<Candidate> best_candidates(const float* lp, const std::vector<Hypothesis>& live, int64_t V,
                                       int64_t per_row) {
  std::vector<Candidate> c;
  for (size_t r = 0; r < live.size(); ++r) {
    const float* row = lp + r * static_cast<size_t>(V);
    for (int32_t t : top_k(row, V, per_row)) c.push_back({live[r].log_prob + row[t], static_cast<int32_t>(r), t});
  }
  std::stable_sort(c.begin(), c.end(), [](const Candidate& a, const Candidate& b) { return a.log_prob > b.log_prob; });
  return c;
}

void add_finished(std::vector<Hypothesis>& done, Hypothesis h, int64_t keep) {
  done.push_back(std::move(h));
  std::stable_sort(done.begin(), done.end(),
                   [](const Hypothesis& a, const Hypothesis& b) { return a.score > b.score; });
  if (static_cast<int64_t>(done.size()) > keep) done.resize(static_cast<size_t>(keep));
}

// The best score a live beam with this log_prob and `length` tokens can still reach: its log_prob can
// only fall, and it ends with length' in [length + 1, limit] tokens.
double best_reachable(double log_prob, int64_t length, int64_t limit, float lp) {
  const int64_t best_len = lp > 0.f ? std::max(limit, length + 1) : length + 1;
  return length_normalized(log_prob, best_len, lp);
}
}  // namespace

namespace detail {

int64_t new_token_limit(const GPT& model, int64_t P, const DecodeOptions& opt) {
  return std::min(opt.max_new_tokens, model.config.n_positions - P + 1);
}

void check_decode_inputs(const GPT& model, const std::vector<std::vector<int32_t>>& prompts, const DecodeOptions& opt,
                         const char* fn) {
  const int64_t V = model.config.vocab_size, NP = model.config.n_positions;
  LR_CHECK(opt.beam_size >= 1, fn, ": beam_size ", opt.beam_size, " < 1");
  LR_CHECK(opt.eos_id >= 0 && opt.eos_id < V, fn, ": eos_id ", opt.eos_id, " outside the vocabulary of ", V);
  for (size_t i = 0; i < prompts.size(); ++i) {
    const int64_t P = static_cast<int64_t>(prompts[i].size());
    LR_CHECK(P >= 1, fn, ": empty prompt (prompt ", i, ")");
    LR_CHECK(P <= NP, fn, ": prompt ", i, " of ", P, " tokens exceeds n_positions ", NP);
    for (int32_t t : prompts[i])
      LR_CHECK(t >= 0 && t < V, fn, ": prompt ", i, " holds token ", t, " outside the vocabulary of ", V);
  }
}

PromptBeams::PromptBeams(const std::vector<int32_t>& prompt, const DecodeOptions& opt, int64_t limit)
    : prompt_(prompt), opt_(opt), limit_(limit), active_(limit > 0), live_(1) {}

void PromptBeams::ban_ngrams(float* row, const std::vector<int32_t>& generated) const {
  if (opt_.no_repeat_ngram_size <= 0) return;
  std::vector<int32_t> with_prompt;
  if (opt_.ngram_include_prompt) {
    with_prompt = prompt_;
    with_prompt.insert(with_prompt.end(), generated.begin(), generated.end());
  }
  const std::vector<int32_t>& seq = opt_.ngram_include_prompt ? with_prompt : generated;
  for (int32_t t : banned_ngram_tokens(seq, opt_.no_repeat_ngram_size)) row[t] = -INFINITY;
}

void PromptBeams::step(float* lp, int64_t V) {
  // LAB 7 begin: PromptBeams::step (one beam-search step)
  const int64_t K = opt_.beam_size;
  for (size_t r = 0; r < live_.size(); ++r) ban_ngrams(lp + r * static_cast<size_t>(V), live_[r].tokens);
  std::vector<Hypothesis> next;
  parents_.clear();
  for (const Candidate& c : best_candidates(lp, live_, V, K == 1 ? 1 : K + 1)) {
    Hypothesis h{live_[static_cast<size_t>(c.row)].tokens, false, c.log_prob, 0.0};
    if (c.token == opt_.eos_id) {
      h.finished = true;
      h.score = length_normalized(h.log_prob, step_ + 1, opt_.length_penalty);
      add_finished(done_, std::move(h), K);
      continue;
    }
    h.tokens.push_back(c.token);
    next.push_back(std::move(h));
    parents_.push_back(c.row);
    if (static_cast<int64_t>(next.size()) == K) break;
  }
  live_ = std::move(next);  // best first
  ++step_;
  // Done once nothing is live, the limit is reached, or beam_size hypotheses are finished and not
  // even the best live beam can still beat the worst of them (with K = 1 done fills only at EOS).
  active_ = !live_.empty() && step_ < limit_ &&
            !(static_cast<int64_t>(done_.size()) == K &&
              best_reachable(live_[0].log_prob, step_, limit_, opt_.length_penalty) <= done_.back().score);
  // LAB 7 end
}

void PromptBeams::append_last_tokens(std::vector<int32_t>& ids) const {
  for (const Hypothesis& h : live_) ids.push_back(h.tokens.back());
}

Hypothesis PromptBeams::result() {
  if (step_ == 0) return Hypothesis{};  // no token allowed (limit <= 0)
  for (Hypothesis& h : live_) {         // unfinished beams compete with what they have
    h.score = length_normalized(h.log_prob, static_cast<int64_t>(h.tokens.size()), opt_.length_penalty);
    add_finished(done_, std::move(h), opt_.beam_size);
  }
  live_.clear();
  LR_CHECK(!done_.empty(), opt_.beam_size == 1 ? "greedy" : "beam search", ": every token is banned");
  return done_.front();
}

}  // namespace detail

Hypothesis beam_decode(GPT& model, const std::vector<int32_t>& prompt, const DecodeOptions& opt) {
  // Same checks as the batch (prompt index 0), then a chunk of one prompt: the batched decoder's rows
  // reduce to this prompt's beams, so both searches run the very same code.
  detail::check_decode_inputs(model, {prompt}, opt, "decode");
  return detail::decode_chunk(model, {&prompt}, opt).front();
}

Hypothesis greedy_decode(GPT& model, const std::vector<int32_t>& prompt, const DecodeOptions& opt) {
  DecodeOptions o = opt;
  o.beam_size = 1;  // greedy is beam_size 1 (see PromptBeams)
  return beam_decode(model, prompt, o);
}

std::vector<int32_t> greedy(GPT& model, const std::vector<int32_t>& prompt, const DecodeOptions& opt) {
  return greedy_decode(model, prompt, opt).tokens;
}

std::vector<int32_t> beam_search(GPT& model, const std::vector<int32_t>& prompt, const DecodeOptions& opt) {
  return beam_decode(model, prompt, opt).tokens;
}

}  // namespace lowrank::nn
