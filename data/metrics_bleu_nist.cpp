// Corpus BLEU (Papineni et al. 2002) and NIST (Doddington 2002) as e2e-metrics computes them with
// `measure_scores.py -p`, i.e. its metrics/pymteval.py, which re-implements mteval-v13a.pl:
//   - tokenization: mteval-v13a's "western" rules, case-insensitive (tokens are lowercased);
//   - multiple references: a hypothesis n-gram is clipped to its largest count in any single
//     reference of the segment; BLEU's reference length is the closest one (ties: the shorter);
//   - NIST: information weights info(w1..wn) = log2(#(w1..wn-1) / #(w1..wn)) counted over all
//     references of the corpus (#() = all reference words), brevity factor
//     exp(-beta log^2(min(1, L_sys / L_ref))) with L_ref the sum of the segments' mean reference
//     lengths and beta chosen so that the factor is 0.5 at a length ratio of 1.5 (mteval).
// One deliberate difference: pymteval counts len - n + 1 n-grams of order n in a hypothesis even
// when that is negative, and reads an empty hypothesis as one empty token. Here (as in
// mteval-v13a.pl and sacrebleu) a hypothesis shorter than n has no n-grams and an empty one has no
// tokens. The two agree whenever every hypothesis has at least 3 tokens (BLEU) / 4 tokens (NIST).
#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "data/metrics.h"
#include "data/metrics_internal.h"

namespace lowrank::data {

using namespace metrics_detail;

namespace {

// Python's re.sub(r'(X)(Y)', ...) for one-character classes X and Y: the leftmost,
// non-overlapping matches, rewritten as "x y " (space_before = false) or " x y" (true).
template <typename X, typename Y>
std::string split_pairs(const std::string& s, X x, Y y, bool space_before) {
  std::string out;
  out.reserve(s.size() + 16);
  size_t i = 0;
  while (i < s.size()) {
    if (i + 1 < s.size() && x(s[i]) && y(s[i + 1])) {
      if (space_before) out += ' ';
      out += s[i];
      out += ' ';
      out += s[i + 1];
      if (!space_before) out += ' ';
      i += 2;
    } else {
      out += s[i++];
    }
  }
  return out;
}

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  for (size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size()))
    s.replace(pos, from.size(), to);
}

// mteval-v13a's punctuation class [\{-\~\[-\` -\&\(-\+\:-\@\/]: ASCII symbols except ' , - .
bool mteval_punct(char c) {
  return (c >= '{' && c <= '~') || (c >= '[' && c <= '`') || (c >= ' ' && c <= '&') || (c >= '(' && c <= '+') ||
         (c >= ':' && c <= '@') || c == '/';
}

}  // namespace

std::vector<std::string> mteval_tokenize(const std::string& text) {
  std::string s = text;
  replace_all(s, "<skipped>", "");
  replace_all(s, "-\n", "");
  replace_all(s, "\n", " ");
  replace_all(s, "&quot;", "\"");
  replace_all(s, "&amp;", "&");
  replace_all(s, "&lt;", "<");
  replace_all(s, "&gt;", ">");
  std::string spaced = " ";
  for (char c : s) {
    if (mteval_punct(c))
      spaced.append(1, ' ').append(1, c).append(1, ' ');
    else
      spaced += c;
  }
  spaced += ' ';
  auto non_digit = [](char c) { return !is_digit(c); };
  auto dot_comma = [](char c) { return c == '.' || c == ','; };
  spaced = split_pairs(spaced, non_digit, dot_comma, false);  // period/comma unless after a digit
  spaced = split_pairs(spaced, dot_comma, non_digit, true);   // ... unless before a digit
  spaced = split_pairs(
      spaced, is_digit, [](char c) { return c == '-'; }, false);  // dash after digit
  return split_ws(lowercase(spaced));
}

namespace {

// The n-gram counts of orders 1..N of every distinct sentence: [sentence][n - 1].
std::vector<std::vector<Counts>> all_counts(const TokenizedCorpus& c, int N) {
  std::vector<std::vector<Counts>> out(c.sentences.size());
  for (size_t s = 0; s < c.sentences.size(); ++s)
    for (int n = 1; n <= N; ++n) out[s].push_back(ngram_counts(c.sentences[s], n));
  return out;
}

// For each hypothesis n-gram: min(its count, its largest count in one reference), when > 0.
Counts clipped_hits(const Counts& hyp, const std::vector<int>& refs, const std::vector<std::vector<Counts>>& counts,
                    int n) {
  std::vector<int> max_ref(hyp.size(), 0);
  for (int r : refs) {
    const Counts& rc = counts[static_cast<size_t>(r)][static_cast<size_t>(n - 1)];
    for (size_t i = 0, j = 0; i < hyp.size() && j < rc.size();) {  // merge join of sorted lists
      if (hyp[i].first < rc[j].first)
        ++i;
      else if (rc[j].first < hyp[i].first)
        ++j;
      else
        max_ref[i] = std::max(max_ref[i], rc[j++].second), ++i;
    }
  }
  Counts out;
  for (size_t i = 0; i < hyp.size(); ++i)
    if (std::min(hyp[i].second, max_ref[i]) > 0) out.emplace_back(hyp[i].first, std::min(hyp[i].second, max_ref[i]));
  return out;
}

}  // namespace

namespace metrics_detail {

MtevalCorpus mteval_corpus(const Corpus& hyps, const References& refs) {
  MtevalCorpus m{tokenize_corpus(hyps, refs, mteval_tokenize), {}};
  m.counts = all_counts(m.c, 5);
  return m;
}

double bleu_tokenized(const MtevalCorpus& m) {
  constexpr int N = 4;
  const TokenizedCorpus& c = m.c;
  const auto& counts = m.counts;
  double hits[N] = {}, totals[N] = {}, hyp_len = 0, ref_len = 0;
  for (size_t i = 0; i < c.hyp.size(); ++i) {
    const auto h = static_cast<size_t>(c.hyp[i]);
    for (int n = 1; n <= N; ++n) {
      for (const auto& kv : clipped_hits(counts[h][static_cast<size_t>(n - 1)], c.refs[i], counts, n))
        hits[n - 1] += kv.second;
      totals[n - 1] += static_cast<double>(ngram_total(c.sentences[h].size(), n));
    }
    // The closest reference length (ties: the shorter).
    size_t len = c.sentences[h].size(), best = c.sentences[static_cast<size_t>(c.refs[i][0])].size();
    for (int r : c.refs[i]) {
      size_t rl = c.sentences[static_cast<size_t>(r)].size();
      size_t d = rl > len ? rl - len : len - rl, bd = best > len ? best - len : len - best;
      if (d < bd || (d == bd && rl < best)) best = rl;
    }
    hyp_len += static_cast<double>(len);
    ref_len += static_cast<double>(best);
  }
  if (hyp_len == 0) return 0.0;
  double bp = hyp_len <= ref_len ? std::exp(1.0 - ref_len / hyp_len) : 1.0;
  // pymteval floors a zero count at 1e-15 (and a zero total at 1e-9) instead of returning 0.
  double log_sum = 0;
  for (int n = 0; n < N; ++n) log_sum += std::log(std::max(hits[n], 1e-15) / std::max(totals[n], 1e-9));
  return bp * std::exp(log_sum / N);
}

double nist_tokenized(const MtevalCorpus& m) {
  constexpr int N = 5;
  const TokenizedCorpus& c = m.c;
  const auto& counts = m.counts;
  // Reference n-gram counts over the corpus: each distinct sentence times its uses as a reference.
  std::vector<double> uses(c.sentences.size(), 0.0);
  for (const auto& seg : c.refs)
    for (int r : seg) uses[static_cast<size_t>(r)] += 1;
  KeyMap ref_counts;
  double ref_words = 0, ref_len = 0, hyp_len = 0, totals[N] = {};
  for (size_t s = 0; s < c.sentences.size(); ++s) {
    if (uses[s] == 0) continue;
    ref_words += uses[s] * static_cast<double>(c.sentences[s].size());
    for (const auto& order : counts[s])
      for (const auto& [k, n] : order) ref_counts[k] += uses[s] * n;
  }
  std::vector<std::vector<Counts>> hits(N);  // [n - 1][segment]
  for (size_t i = 0; i < c.hyp.size(); ++i) {
    const auto h = static_cast<size_t>(c.hyp[i]);
    for (int n = 1; n <= N; ++n) {
      hits[n - 1].push_back(clipped_hits(counts[h][static_cast<size_t>(n - 1)], c.refs[i], counts, n));
      totals[n - 1] += static_cast<double>(ngram_total(c.sentences[h].size(), n));
    }
    double seg_words = 0;
    for (int r : c.refs[i]) seg_words += static_cast<double>(c.sentences[static_cast<size_t>(r)].size());
    ref_len += seg_words / static_cast<double>(c.refs[i].size());
    hyp_len += static_cast<double>(c.sentences[h].size());
  }
  double score = 0;
  for (int n = 1; n <= N; ++n) {
    if (totals[n - 1] <= 0) continue;  // no hypothesis has n tokens: the term is 0
    double info_sum = 0;
    for (const auto& seg_hits : hits[n - 1])
      for (const auto& [k, cnt] : seg_hits) {
        double prefix = n == 1 ? ref_words : ref_counts.at(prefix_key(k, n));
        info_sum += std::log2(prefix / ref_counts.at(k)) * cnt;
      }
    score += info_sum / totals[n - 1];
  }
  double ratio = ref_len > 0 ? hyp_len / ref_len : 0.0;
  if (ratio >= 1) return score;
  if (ratio <= 0) return 0.0;
  const double beta = -std::log(0.5) / (std::log(1.5) * std::log(1.5));
  return score * std::exp(-beta * std::log(ratio) * std::log(ratio));
}

}  // namespace metrics_detail

double corpus_bleu(const Corpus& hyps, const References& refs) {
  check_corpus(hyps, refs, "corpus_bleu");
  return bleu_tokenized(mteval_corpus(hyps, refs));
}

double corpus_nist(const Corpus& hyps, const References& refs) {
  check_corpus(hyps, refs, "corpus_nist");
  return nist_tokenized(mteval_corpus(hyps, refs));
}

}  // namespace lowrank::data
