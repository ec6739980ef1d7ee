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
  return (c >= '{' && c <= '~') || (c >= '[' && c <= '`') || (c >= ' ' && c <= '&') ||
         (c >= '(' && c <= '+') || (c >= ':' && c <= '@') || c == '/';
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
    if (mteval_punct(c)) spaced.append(1, ' ').append(1, c).append(1, ' ');
    else spaced += c;
  }
  spaced += ' ';
  auto non_digit = [](char c) { return !is_digit(c); };
  auto dot_comma = [](char c) { return c == '.' || c == ','; };
  spaced = split_pairs(spaced, non_digit, dot_comma, false);  // period/comma unless after a digit
  spaced = split_pairs(spaced, dot_comma, non_digit, true);   // ... unless before a digit
  spaced = split_pairs(spaced, is_digit, [](char c) { return c == '-'; }, false);  // dash after digit
  return split_ws(lowercase(spaced));
}

namespace {

struct Segment {
  Tokens hyp;
  std::vector<Tokens> refs;
};

std::vector<Segment> tokenize_corpus(const Corpus& hyps, const References& refs) {
  std::vector<Segment> out(hyps.size());
  for (size_t i = 0; i < hyps.size(); ++i) {
    out[i].hyp = mteval_tokenize(hyps[i]);
    for (const auto& r : refs[i]) out[i].refs.push_back(mteval_tokenize(r));
  }
  return out;
}

// For each n-gram of the hypothesis: min(its count, its largest count in one reference).
NgramCounts clipped_hits(const Tokens& hyp, const std::vector<Tokens>& refs, int n) {
  NgramCounts hits = ngram_counts(hyp, n);
  NgramCounts max_ref;
  for (const auto& r : refs)
    for (const auto& [g, c] : ngram_counts(r, n)) max_ref[g] = std::max(max_ref[g], c);
  for (auto it = hits.begin(); it != hits.end();) {
    auto m = max_ref.find(it->first);
    int clipped = m == max_ref.end() ? 0 : std::min(it->second, m->second);
    if (clipped == 0) it = hits.erase(it);
    else (it++)->second = clipped;
  }
  return hits;
}

}  // namespace

double corpus_bleu(const Corpus& hyps, const References& refs) {
  check_corpus(hyps, refs, "corpus_bleu");
  constexpr int N = 4;
  double hits[N] = {}, totals[N] = {}, hyp_len = 0, ref_len = 0;
  for (const Segment& seg : tokenize_corpus(hyps, refs)) {
    for (int n = 1; n <= N; ++n) {
      for (const auto& kv : clipped_hits(seg.hyp, seg.refs, n)) hits[n - 1] += kv.second;
      totals[n - 1] += static_cast<double>(ngram_total(seg.hyp.size(), n));
    }
    size_t best = seg.refs[0].size(), h = seg.hyp.size();
    for (const auto& r : seg.refs) {
      size_t d = r.size() > h ? r.size() - h : h - r.size(), bd = best > h ? best - h : h - best;
      if (d < bd || (d == bd && r.size() < best)) best = r.size();
    }
    hyp_len += static_cast<double>(h);
    ref_len += static_cast<double>(best);
  }
  if (hyp_len == 0) return 0.0;
  double bp = hyp_len <= ref_len ? std::exp(1.0 - ref_len / hyp_len) : 1.0;
  // pymteval floors a zero count at 1e-15 (and a zero total at 1e-9) instead of returning 0.
  double log_sum = 0;
  for (int n = 0; n < N; ++n) log_sum += std::log(std::max(hits[n], 1e-15) / std::max(totals[n], 1e-9));
  return bp * std::exp(log_sum / N);
}

double corpus_nist(const Corpus& hyps, const References& refs) {
  check_corpus(hyps, refs, "corpus_nist");
  constexpr int N = 5;
  std::vector<NgramCounts> ref_counts(N + 1);  // [n]: n-gram counts over all references
  std::vector<std::vector<NgramCounts>> hits(N);
  double totals[N] = {}, hyp_len = 0, ref_len = 0, ref_words = 0;
  for (const Segment& seg : tokenize_corpus(hyps, refs)) {
    for (int n = 1; n <= N; ++n) {
      hits[n - 1].push_back(clipped_hits(seg.hyp, seg.refs, n));
      totals[n - 1] += static_cast<double>(ngram_total(seg.hyp.size(), n));
      for (const auto& r : seg.refs)
        for (const auto& [g, c] : ngram_counts(r, n)) ref_counts[n][g] += c;
    }
    double seg_words = 0;
    for (const auto& r : seg.refs) seg_words += static_cast<double>(r.size());
    ref_words += seg_words;
    ref_len += seg_words / static_cast<double>(seg.refs.size());
    hyp_len += static_cast<double>(seg.hyp.size());
  }
  double score = 0;
  for (int n = 1; n <= N; ++n) {
    if (totals[n - 1] <= 0) continue;  // no hypothesis has n tokens: the term is 0
    double info_sum = 0;
    for (const auto& seg_hits : hits[n - 1])
      for (const auto& [g, c] : seg_hits) {
        double prefix = ref_words;
        if (n > 1) prefix = ref_counts[n - 1].at(g.substr(0, g.rfind(' ')));
        info_sum += std::log2(prefix / ref_counts[n].at(g)) * c;
      }
    score += info_sum / totals[n - 1];
  }
  double ratio = ref_len > 0 ? hyp_len / ref_len : 0.0;
  if (ratio >= 1) return score;
  if (ratio <= 0) return 0.0;
  const double beta = -std::log(0.5) / (std::log(1.5) * std::log(1.5));
  return score * std::exp(-beta * std::log(ratio) * std::log(ratio));
}

}  // namespace lowrank::data
