// Decoding (nn/generate.h) on tiny random GPTs, checked against naive references that recompute the
// full forward for every sequence (nn::next_logits, no KV cache): greedy, a rule-for-rule beam search
// without early stopping, and an exhaustive search over every sequence of a 5-token vocabulary.
#include <algorithm>
#include <cmath>
#include <functional>

#include "nn/generate.h"
#include "nn/sample.h"
#include "test_util.h"

using namespace lowrank;
using namespace lowrank::testing;
using nn::DecodeOptions;
using nn::Hypothesis;

namespace {
// A random GPT with peaked next-token distributions (GPT-2's 0.02 init gives near-uniform ones,
// where argmaxes would hinge on rounding). eos_boost > 0 raises the logit of token V-1 (the EOS of
// these tests) by about that much through ln_f's bias (the head is tied: logit_v = ln_f(x)·wte_v).
nn::GPT tiny_gpt(int64_t V, uint64_t seed, float eos_boost = 0.f) {
  nn::GPTConfig c = nn::config_by_name("tiny");
  c.vocab_size = V;
  c.n_positions = 24;
  c.n_embd = 16;
  c.n_head = 2;
  c.n_layer = 2;
  Rng rng(seed);
  nn::GPT model(c, rng);
  for (auto& p : model.named_parameters())
    if (p.tensor.ndim() == 2) p.tensor.copy_(Tensor::randn(p.tensor.shape(), rng, p.name == "wte.weight" ? 1.f : 0.4f));
  if (eos_boost != 0.f) {
    Tensor e = model.wte.weight.narrow(0, V - 1, 1).contiguous().view({c.n_embd});
    float sq = 0.f;
    for (int64_t i = 0; i < c.n_embd; ++i) sq += e.at({i}) * e.at({i});
    for (int64_t i = 0; i < c.n_embd; ++i) model.ln_f.bias.set({i}, eos_boost * e.at({i}) / sq);
  }
  return model;
}

std::vector<double> log_softmax_d(const std::vector<float>& logits) {
  const double mx = *std::max_element(logits.begin(), logits.end());
  double z = 0.0;
  for (float l : logits) z += std::exp(l - mx);
  std::vector<double> out;
  for (float l : logits) out.push_back(l - mx - std::log(z));
  return out;
}

// log p(continuation | prompt) from one full forward per token (no cache).
std::vector<double> naive_log_probs(nn::GPT& m, std::vector<int32_t> seq) {
  return log_softmax_d(nn::next_logits(m, seq));
}

double naive_sequence_log_prob(nn::GPT& m, const std::vector<int32_t>& prompt, const std::vector<int32_t>& gen) {
  std::vector<int32_t> seq = prompt;
  double total = 0.0;
  for (int32_t t : gen) {
    total += naive_log_probs(m, seq)[static_cast<size_t>(t)];
    seq.push_back(t);
  }
  return total;
}

// Generated tokens as scored: EOS appended back for finished hypotheses.
std::vector<int32_t> scored_tokens(const Hypothesis& h, const DecodeOptions& opt) {
  std::vector<int32_t> g = h.tokens;
  if (h.finished) g.push_back(opt.eos_id);
  return g;
}

void apply_bans(std::vector<double>& lp, const std::vector<int32_t>& prompt, const std::vector<int32_t>& gen,
                const DecodeOptions& opt) {
  std::vector<int32_t> seq = opt.ngram_include_prompt ? prompt : std::vector<int32_t>{};
  seq.insert(seq.end(), gen.begin(), gen.end());
  for (int32_t t : nn::banned_ngram_tokens(seq, opt.no_repeat_ngram_size)) lp[static_cast<size_t>(t)] = -INFINITY;
}

// The header's beam rules, run to max_new_tokens without early stopping and without a cache.
Hypothesis reference_beam(nn::GPT& m, const std::vector<int32_t>& prompt, const DecodeOptions& opt) {
  struct Cand {
    double lp;
    size_t row;
    int32_t tok;
  };
  std::vector<Hypothesis> live(1), all;
  for (int64_t step = 0; step < opt.max_new_tokens && !live.empty(); ++step) {
    std::vector<Cand> cands;
    for (size_t r = 0; r < live.size(); ++r) {
      std::vector<int32_t> seq = prompt;
      seq.insert(seq.end(), live[r].tokens.begin(), live[r].tokens.end());
      std::vector<double> lp = naive_log_probs(m, seq);
      apply_bans(lp, prompt, live[r].tokens, opt);
      for (size_t t = 0; t < lp.size(); ++t)
        if (lp[t] > -INFINITY) cands.push_back({live[r].log_prob + lp[t], r, static_cast<int32_t>(t)});
    }
    std::stable_sort(cands.begin(), cands.end(), [](const Cand& a, const Cand& b) { return a.lp > b.lp; });
    std::vector<Hypothesis> next;
    for (const Cand& c : cands) {
      Hypothesis h{live[c.row].tokens, c.tok == opt.eos_id, c.lp, 0.0};
      if (h.finished) {
        h.score = nn::length_normalized(h.log_prob, step + 1, opt.length_penalty);
        all.push_back(h);
        continue;
      }
      h.tokens.push_back(c.tok);
      next.push_back(h);
      if (static_cast<int64_t>(next.size()) == opt.beam_size) break;
    }
    live = next;
  }
  for (Hypothesis& h : live) {
    h.score = nn::length_normalized(h.log_prob, static_cast<int64_t>(h.tokens.size()), opt.length_penalty);
    all.push_back(h);
  }
  std::stable_sort(all.begin(), all.end(), [](const Hypothesis& a, const Hypothesis& b) { return a.score > b.score; });
  return all.front();
}

// Every n-gram ending in the generated part (at index >= from) is new within seq[first ..].
bool no_repeated_ngram(const std::vector<int32_t>& seq, size_t n, size_t first, size_t from) {
  for (size_t j = std::max(from, first + n - 1); j < seq.size(); ++j)
    for (size_t i = first + n - 1; i < j; ++i)
      if (std::equal(seq.begin() + (i + 1 - n), seq.begin() + (i + 1), seq.begin() + (j + 1 - n))) return false;
  return true;
}

std::string str(const std::vector<int32_t>& v) {
  std::string s = "{";
  for (int32_t t : v) s += (s.size() > 1 ? "," : "") + std::to_string(t);
  return s + "}";
}

const std::vector<std::vector<int32_t>> kPrompts = {{0}, {3, 1}, {2, 2, 5}, {4, 0, 1, 3}, {5, 5, 5, 5, 1}, {1, 6, 2}};
}  // namespace

TEST_CASE("decode: greedy with the KV cache equals naive greedy over full forwards") {
  nn::GPT m = tiny_gpt(7, 11);
  DecodeOptions opt;
  opt.eos_id = 6;
  opt.max_new_tokens = 12;
  for (const auto& prompt : kPrompts) {
    const std::string ps = str(prompt);
    CAPTURE(ps);
    std::vector<int32_t> seq = prompt, expect;
    for (int64_t i = 0; i < opt.max_new_tokens; ++i) {
      std::vector<float> l = nn::next_logits(m, seq);
      const int32_t id = static_cast<int32_t>(std::max_element(l.begin(), l.end()) - l.begin());
      if (id == opt.eos_id) break;
      seq.push_back(id);
      expect.push_back(id);
    }
    const Hypothesis h = nn::greedy_decode(m, prompt, opt);
    CHECK(h.tokens == expect);
    CHECK(nn::greedy(m, prompt, opt) == expect);
    CHECK(h.log_prob == doctest::Approx(naive_sequence_log_prob(m, prompt, scored_tokens(h, opt))).epsilon(1e-4));
  }
}

TEST_CASE("decode: max_new_tokens and n_positions bound the output") {
  nn::GPT m = tiny_gpt(7, 12);
  DecodeOptions opt;
  opt.eos_id = 6;
  for (int64_t beam : {1, 3})
    for (int64_t max_new : {0, 1, 2, 5}) {
      opt.beam_size = beam;
      opt.max_new_tokens = max_new;
      for (const auto& prompt : kPrompts) {
        const Hypothesis h = nn::beam_decode(m, prompt, opt);
        CHECK(static_cast<int64_t>(h.tokens.size() + (h.finished ? 1 : 0)) <= max_new);
        if (!h.finished) CHECK(static_cast<int64_t>(h.tokens.size()) == max_new);
      }
    }
  opt.max_new_tokens = 64;
  const std::vector<int32_t> long_prompt(20, 1);  // n_positions 24: 20 + 5 - 1 positions at most
  for (int64_t beam : {1, 4}) {
    opt.beam_size = beam;
    CHECK(nn::beam_decode(m, long_prompt, opt).tokens.size() <= 5);
  }
  CHECK(error_of([&] { nn::greedy(m, {}, opt); }).find("empty prompt") != std::string::npos);
  CHECK(error_of([&] { nn::greedy(m, std::vector<int32_t>(25, 1), opt); }).find("n_positions") != std::string::npos);
}

TEST_CASE("beam: cached beam search equals a naive beam search, beam 1 is greedy, scores beat greedy's here") {
  // The second model ends sequences often, so beam_size hypotheses finish early and the stopping
  // rule is exercised (the reference never stops early).
  for (float boost : {0.f, 4.f})
    for (float lp : {1.f, 0.8f, 0.f})
      for (int64_t beam : {1, 2, 3, 5})
        for (const auto& prompt : kPrompts) {
          CAPTURE(boost);
          CAPTURE(lp);
          CAPTURE(beam);
          const std::string ps = str(prompt);
          CAPTURE(ps);
          nn::GPT m = tiny_gpt(7, 13, boost);
          DecodeOptions opt;
          opt.eos_id = 6;
          opt.max_new_tokens = 14;
          opt.length_penalty = lp;
          opt.beam_size = beam;
          const Hypothesis h = nn::beam_decode(m, prompt, opt);
          const Hypothesis g = nn::greedy_decode(m, prompt, opt);
          if (beam == 1) CHECK(h.tokens == g.tokens);
          if (beam > 1) CHECK(h.tokens == reference_beam(m, prompt, opt).tokens);
          CHECK(nn::beam_search(m, prompt, opt) == h.tokens);
          CHECK(h.log_prob == doctest::Approx(naive_sequence_log_prob(m, prompt, scored_tokens(h, opt))).epsilon(1e-4));
          // Not a theorem of beam search (the greedy path can fall out of the beam), but it holds here.
          // (tolerance: the same sequence scored in a batched vs. a single-row forward differs by float ulps)
          CHECK(h.score >= g.score - 1e-5);
        }
}

TEST_CASE("beam: a beam as wide as all sequences finds the exhaustive optimum (V=5, 3 new tokens)") {
  nn::GPT m = tiny_gpt(5, 14);
  DecodeOptions opt;
  opt.eos_id = 4;
  opt.max_new_tokens = 3;
  opt.beam_size = 125;  // 5^3 >= every sequence
  for (int64_t ngram : {0, 2})
    for (float lp : {1.f, 0.8f, 0.f})
      for (const std::vector<int32_t>& prompt : {std::vector<int32_t>{0}, {3, 1}, {2, 2, 1}, {1, 0, 1, 3}}) {
        CAPTURE(ngram);
        CAPTURE(lp);
        const std::string ps = str(prompt);
        CAPTURE(ps);
        opt.no_repeat_ngram_size = ngram;
        opt.length_penalty = lp;
        double best = -INFINITY;
        std::vector<int32_t> best_gen;
        // Depth-first over every allowed sequence: stop at EOS or after 3 tokens.
        std::function<void(std::vector<int32_t>&, double)> visit = [&](std::vector<int32_t>& gen, double logp) {
          std::vector<int32_t> seq = prompt;
          seq.insert(seq.end(), gen.begin(), gen.end());
          std::vector<double> lps = naive_log_probs(m, seq);
          apply_bans(lps, prompt, gen, opt);
          for (int32_t t = 0; t < 5; ++t) {
            if (lps[static_cast<size_t>(t)] == -INFINITY) continue;
            gen.push_back(t);
            const double s = logp + lps[static_cast<size_t>(t)];
            if (t == opt.eos_id || gen.size() == 3) {
              const double score = nn::length_normalized(s, static_cast<int64_t>(gen.size()), lp);
              if (score > best) best = score, best_gen = gen;
            } else {
              visit(gen, s);
            }
            gen.pop_back();
          }
        };
        std::vector<int32_t> gen;
        visit(gen, 0.0);
        const Hypothesis h = nn::beam_decode(m, prompt, opt);
        CHECK(scored_tokens(h, opt) == best_gen);
        CHECK(h.score == doctest::Approx(best).epsilon(1e-4));
      }
}

TEST_CASE("beam: no_repeat_ngram_size bans repeated n-grams, with or without the prompt") {
  CHECK(nn::banned_ngram_tokens({1, 2, 3, 1, 2}, 3) == std::vector<int32_t>{3});
  CHECK(nn::banned_ngram_tokens({1, 2, 3, 1, 2}, 2) == std::vector<int32_t>{3});
  CHECK(nn::banned_ngram_tokens({2, 2, 2}, 2) == std::vector<int32_t>{2, 2});
  CHECK(nn::banned_ngram_tokens({1, 2, 3}, 1) == std::vector<int32_t>{1, 2, 3});
  CHECK(nn::banned_ngram_tokens({1, 2}, 3).empty());
  CHECK(nn::banned_ngram_tokens({1, 1, 1}, 0).empty());

  nn::GPT m = tiny_gpt(7, 15);
  DecodeOptions opt;
  opt.eos_id = 6;
  opt.max_new_tokens = 16;
  int repeats_without_ban = 0;
  for (const auto& prompt : kPrompts) {
    std::vector<int32_t> free_run = nn::greedy(m, prompt, opt);
    repeats_without_ban += !no_repeated_ngram(free_run, 2, 0, 0);
  }
  REQUIRE(repeats_without_ban > 0);  // the test below would be vacuous otherwise
  for (bool include_prompt : {false, true})
    for (int64_t n : {2, 3})
      for (int64_t beam : {1, 4})
        for (const auto& prompt : kPrompts) {
          CAPTURE(include_prompt);
          CAPTURE(n);
          CAPTURE(beam);
          const std::string ps = str(prompt);
          CAPTURE(ps);
          opt.no_repeat_ngram_size = n;
          opt.ngram_include_prompt = include_prompt;
          opt.beam_size = beam;
          std::vector<int32_t> seq = prompt;
          const std::vector<int32_t> out = nn::beam_search(m, prompt, opt);
          seq.insert(seq.end(), out.begin(), out.end());
          CHECK(no_repeated_ngram(seq, static_cast<size_t>(n), include_prompt ? 0 : prompt.size(), prompt.size()));
        }
}

namespace {
// Mixed lengths, several prompts of each length (1: three, 2: four, 3: five), so chunks of a length
// group hold several prompts; token 6 (the EOS of these tests) may appear inside a prompt.
const std::vector<std::vector<int32_t>> kBatchPrompts = {
    {0}, {3, 1}, {2, 2, 5},    {4, 0, 1, 3}, {1, 6, 2}, {3, 3}, {5, 5, 5, 5, 1}, {2, 4, 0},
    {6}, {0, 1}, {1, 2, 3, 4}, {4, 4, 2},    {5, 0},    {2},    {3, 0, 6}};

// beam_decode_batch against beam_decode one prompt at a time: the same tokens for every prompt. The
// log-probs agree only to rounding: OpenBLAS's sgemm rounds a row differently depending on the row
// count and the row's place in it (full row blocks, remainder kernels and M = 1's gemv accumulate in
// different orders), and the batched forwards have other row counts than the single search's.
void check_batch_matches_single(nn::GPT& m, const std::vector<std::vector<int32_t>>& prompts, const DecodeOptions& opt,
                                int64_t max_rows) {
  const std::vector<Hypothesis> batch = nn::beam_decode_batch(m, prompts, opt, max_rows);
  REQUIRE(batch.size() == prompts.size());
  CHECK(nn::beam_search_batch(m, prompts, opt, max_rows).size() == prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    const std::string ps = str(prompts[i]);
    CAPTURE(ps);
    const Hypothesis single = nn::beam_decode(m, prompts[i], opt);
    CHECK(str(batch[i].tokens) == str(single.tokens));
    CHECK(batch[i].finished == single.finished);
    CHECK(batch[i].log_prob == doctest::Approx(single.log_prob).epsilon(1e-5));
    CHECK(batch[i].score == doctest::Approx(single.score).epsilon(1e-5));
  }
}
}  // namespace

TEST_CASE("generate: batched beam search equals one-at-a-time beam search") {
  int chunks_of_several = 0;
  for (float boost : {0.f, 4.f}) {
    nn::GPT m = tiny_gpt(7, 16, boost);
    for (int64_t beam : {1, 4})
      for (float lp : {1.f, 0.8f})
        for (int64_t ngram : {0, 2})
          // max_rows = beam: one prompt per chunk; 2 * beam + 1: two (several chunks per length); 80: all.
          for (int64_t max_rows : {beam, 2 * beam + 1, int64_t{80}}) {
            CAPTURE(boost);
            CAPTURE(beam);
            CAPTURE(lp);
            CAPTURE(ngram);
            CAPTURE(max_rows);
            DecodeOptions opt;
            opt.eos_id = 6;
            opt.max_new_tokens = 12;
            opt.beam_size = beam;
            opt.length_penalty = lp;
            opt.no_repeat_ngram_size = ngram;
            opt.ngram_include_prompt = ngram > 0 && lp == 1.f;
            check_batch_matches_single(m, kBatchPrompts, opt, max_rows);
            chunks_of_several += max_rows / beam >= 2;
          }
  }
  CHECK(chunks_of_several > 0);
  // beam_search_batch returns beam_search's tokens, in the order of the prompts.
  nn::GPT m = tiny_gpt(7, 17);
  DecodeOptions opt;
  opt.eos_id = 6;
  opt.beam_size = 3;
  opt.max_new_tokens = 10;
  const std::vector<std::vector<int32_t>> out = nn::beam_search_batch(m, kBatchPrompts, opt, 7);
  REQUIRE(out.size() == kBatchPrompts.size());
  for (size_t i = 0; i < kBatchPrompts.size(); ++i)
    CHECK(str(out[i]) == str(nn::beam_search(m, kBatchPrompts[i], opt)));
  CHECK(nn::beam_search_batch(m, {}, opt).empty());
}

TEST_CASE("generate: batched beam search stops at n_positions like the single search") {
  nn::GPT m = tiny_gpt(7, 18);  // n_positions 24: a prompt of P tokens gets 25 - P new tokens at most
  std::vector<std::vector<int32_t>> prompts;
  for (int64_t P : {20, 23, 24, 20, 22, 24, 23, 1})
    for (int32_t first : {0, 3}) {
      std::vector<int32_t> p(static_cast<size_t>(P), 1);
      p[0] = first;
      p[p.size() / 2] = static_cast<int32_t>((P + first) % 6);
      prompts.push_back(p);
    }
  for (int64_t beam : {1, 4})
    for (int64_t max_new : {int64_t{0}, int64_t{3}, int64_t{64}}) {
      CAPTURE(beam);
      CAPTURE(max_new);
      DecodeOptions opt;
      opt.eos_id = 6;
      opt.beam_size = beam;
      opt.max_new_tokens = max_new;
      opt.length_penalty = 0.9f;
      opt.no_repeat_ngram_size = 3;
      check_batch_matches_single(m, prompts, opt, 2 * beam);
      int at_limit = 0;
      const std::vector<Hypothesis> hyps = nn::beam_decode_batch(m, prompts, opt, 2 * beam);
      for (size_t i = 0; i < prompts.size(); ++i) {
        const int64_t limit = std::min<int64_t>(max_new, 25 - static_cast<int64_t>(prompts[i].size()));
        const int64_t length = static_cast<int64_t>(hyps[i].tokens.size()) + (hyps[i].finished ? 1 : 0);
        CHECK(length <= limit);
        at_limit += !hyps[i].finished && length == limit && limit < max_new;
      }
      if (max_new == 64) CHECK(at_limit > 0);  // the position limit, not max_new_tokens, ended some
    }
}

TEST_CASE("generate: batched beam search rejects empty prompts and max_rows < beam_size, naming them") {
  nn::GPT m = tiny_gpt(7, 19);
  DecodeOptions opt;
  opt.eos_id = 6;
  opt.beam_size = 4;
  const std::vector<std::vector<int32_t>> with_empty = {{1, 2}, {3}, {}, {4}};
  const std::string e1 = error_of([&] { nn::beam_search_batch(m, with_empty, opt); });
  CHECK(e1.find("beam_search_batch") != std::string::npos);
  CHECK(e1.find("empty prompt (prompt 2)") != std::string::npos);
  CHECK(error_of([&] { nn::beam_decode_batch(m, with_empty, opt); }).find("beam_decode_batch") != std::string::npos);
  const std::string e2 = error_of([&] { nn::beam_search_batch(m, {{1}, {2}}, opt, 3); });
  CHECK(e2.find("beam_search_batch") != std::string::npos);
  CHECK(e2.find("max_rows 3 < beam_size 4") != std::string::npos);
  const std::string e3 = error_of([&] { nn::beam_search_batch(m, {{1}, std::vector<int32_t>(25, 1)}, opt); });
  CHECK(e3.find("prompt 1 of 25 tokens exceeds n_positions") != std::string::npos);
  CHECK(error_of([&] { nn::beam_search_batch(m, {{1}, {2}}, opt, 4); }).empty());  // one prompt per chunk
}
