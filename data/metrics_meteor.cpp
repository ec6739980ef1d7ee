// METEOR (Banerjee & Lavie 2005; version 1.5: Denkowski & Lavie 2014) as pycocoevalcap runs it:
// `java -jar meteor-1.5.jar - - -stdio -l en -norm` on PTB-tokenized text, one "SCORE" per segment
// (the best reference by segment score), then one "EVAL" that sums the segments' sufficient
// statistics and scores the sums (a corpus score, not a mean of segment scores).
//
// Modules: exact and stem (Snowball English). Meteor 1.5 "en" also matches WordNet synonyms (weight
// 0.8) and paraphrases from its paraphrase-en table (weight 0.6); neither is shipped here, so words
// only those modules align stay unmatched and this score is at most the official one. Meteor 1.5
// run with `-m "exact stem" -w "1.0 0.6"` agrees with this code to rounding; the full Meteor 1.5 is
// higher by 0.006 (0.4563 vs 0.4501) when each E2E test reference is scored against the other
// references of its MR, by 0.018 on the committed fixture, which has near-synonym hypotheses.
//
// Parameters: Meteor 1.5's English defaults (task "rank"), as the official E2E scorer and hence the
// LoRA paper used them: alpha 0.85, beta 0.20, gamma 0.60, delta 0.75, weights exact 1.0, stem 0.6.
// The 2005 METEOR (alpha 0.9, beta 3, gamma 0.5, no function-word delta) gives other numbers.
//
// The alignment is Meteor 1.5's (edu.cmu.meteor.aligner.Aligner in the jar), quirks included so
// that ties break the same way: candidate matches per reference word, unambiguous one-to-one matches
// fixed up front, then a beam search (40) ranked by weighted matches (search weights 1 for exact and
// 0.5 for stem, accumulated into an int, so a stem match adds nothing), fewer chunks, then smaller
// distance; the jar adds a chosen match's distance to the path that skips it.
#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "data/metrics.h"
#include "data/metrics_internal.h"

namespace lowrank::data {

using namespace metrics_detail;

namespace {

constexpr double kAlpha = 0.85, kBeta = 0.20, kGamma = 0.60, kDelta = 0.75;
constexpr double kScoreWeight[2] = {1.0, 0.6};   // exact, stem: used in the score
constexpr double kSearchWeight[2] = {1.0, 0.5};  // exact, stem: used to rank alignments
constexpr size_t kBeam = 40;

struct Match {
  int ref = 0, test = 0, module = 0;  // reference position, test position, 0 exact / 1 stem
};

// A set of word positions (W * 64 of them): the search copies paths a lot, so they stay flat.
template <int W>
struct Bits {
  uint64_t w[W] = {};
  bool test(int i) const { return (w[i >> 6] >> (i & 63)) & 1u; }
  void set(int i) { w[i >> 6] |= uint64_t{1} << (i & 63); }
};

// A partial alignment. The chosen matches form a linked list through `nodes` (shared by paths).
template <int W>
struct Path {
  Bits<W> used_test, used_ref;
  int node = -1, weighted = 0, chunks = 0, idx = 0, last_end = -1, distance = 0;
};
struct Node {
  int ref, cand, parent;
};

// Constants.PARTIAL_COMPARE_TOTAL (more weighted matches, then fewer chunks, then smaller
// distance) as one integer, smaller is better. With at most 1024 words per side the fields fit.
template <int W>
uint64_t rank_key(const Path<W>& p) {
  return (static_cast<uint64_t>(4096 - p.weighted) << 48) | (static_cast<uint64_t>(p.chunks) << 32) |
         static_cast<uint32_t>(p.distance);
}

// The indices of the best `keep` paths in the order of Java's stable sort (ties by position).
template <int W>
std::vector<uint32_t> best_paths(const std::vector<Path<W>>& paths, size_t keep) {
  std::vector<std::pair<uint64_t, uint32_t>> keys(paths.size());
  for (size_t i = 0; i < paths.size(); ++i) keys[i] = {rank_key(paths[i]), static_cast<uint32_t>(i)};
  keep = std::min(keep, keys.size());
  auto mid = keys.begin() + static_cast<std::ptrdiff_t>(keep);
  if (keep < keys.size()) std::nth_element(keys.begin(), mid, keys.end());
  std::sort(keys.begin(), mid);
  std::vector<uint32_t> out(keep);
  for (size_t i = 0; i < keep; ++i) out[i] = keys[i].second;
  return out;
}

// Adds match m to path p (both sides' weighted counts are truncated to int, as in the jar).
template <int W>
void take(Path<W>& p, const Match& m) {
  for (int side = 0; side < 2; ++side) p.weighted = static_cast<int>(p.weighted + kSearchWeight[m.module]);
  if (p.last_end != -1 && m.test != p.last_end) ++p.chunks;
  p.idx = m.ref + 1;
  p.last_end = m.test + 1;
}

// Aligner.resolve: left-to-right beam search over the reference positions. Returns the chosen
// candidate per reference position (-1: unmatched); `fixed` holds the matches decided up front.
template <int W>
std::vector<int> resolve(const std::vector<std::vector<Match>>& cand, const std::vector<int>& fixed) {
  const int R = static_cast<int>(cand.size());
  std::vector<Node> nodes;
  std::vector<Path<W>> paths, next(1);
  for (int j = 0; j < R; ++j)
    if (fixed[j] != -1) {
      next[0].used_ref.set(j);
      next[0].used_test.set(cand[j][fixed[j]].test);
    }
  for (int cur = 0; cur <= R; ++cur) {
    paths.swap(next);
    next.clear();
    const std::vector<uint32_t> beam = best_paths(paths, kBeam);
    for (uint32_t b : beam) {
      Path<W>& path = paths[b];
      if (cur == R) {
        if (path.last_end != -1) ++path.chunks;
      } else if (path.used_ref.test(cur)) {  // a match fixed up front
        if (cur >= path.idx) {
          if (path.idx >= R || fixed[path.idx] == -1) continue;
          const Match& m = cand[path.idx][fixed[path.idx]];
          take(path, m);
          path.distance += std::abs(m.ref - m.test);
        }
      } else {
        const auto& here = cand[cur];
        for (size_t k = 0; k < here.size(); ++k) {
          const Match& m = here[k];
          if (path.used_ref.test(m.ref) || path.used_test.test(m.test)) continue;
          Path<W> np = path;
          np.used_ref.set(m.ref);
          np.used_test.set(m.test);
          nodes.push_back({cur, static_cast<int>(k), path.node});
          np.node = static_cast<int>(nodes.size()) - 1;
          take(np, m);
          path.distance += std::abs(m.ref - m.test);  // sic: the jar adds it to the skipping path
          next.push_back(np);
        }
        if (path.last_end != -1) {  // skip this reference word
          ++path.chunks;
          path.last_end = -1;
        }
        ++path.idx;
      }
      next.push_back(path);
    }
    if (next.empty()) next.push_back(paths[beam[0]]);
  }
  std::vector<int> sel = fixed;
  for (int n = next[best_paths(next, 1)[0]].node; n != -1; n = nodes[n].parent) sel[nodes[n].ref] = nodes[n].cand;
  return sel;
}

// MeteorStats (word-level).
struct Stats {
  double test_len = 0, ref_len = 0, test_fn = 0, ref_fn = 0, test_matches = 0, ref_matches = 0, chunks = 0;
  double test_content[2] = {}, ref_content[2] = {}, test_function[2] = {}, ref_function[2] = {};
  double score = 0;
};

// MeteorScorer.computeMetrics.
void compute_score(Stats& s) {
  double test_wlen = kDelta * (s.test_len - s.test_fn) + (1 - kDelta) * s.test_fn;
  double ref_wlen = kDelta * (s.ref_len - s.ref_fn) + (1 - kDelta) * s.ref_fn;
  double test_w = 0, ref_w = 0;
  for (int m = 0; m < 2; ++m) test_w += s.test_content[m] * kScoreWeight[m] * kDelta;
  for (int m = 0; m < 2; ++m) ref_w += s.ref_content[m] * kScoreWeight[m] * kDelta;
  for (int m = 0; m < 2; ++m) test_w += s.test_function[m] * kScoreWeight[m] * (1 - kDelta);
  for (int m = 0; m < 2; ++m) ref_w += s.ref_function[m] * kScoreWeight[m] * (1 - kDelta);
  double p = test_w / test_wlen, r = ref_w / ref_wlen;
  double fmean = 1.0 / ((1.0 - kAlpha) / p + kAlpha / r);
  bool whole = s.test_matches == s.test_len && s.ref_matches == s.ref_len && s.chunks == 1;
  double frag = whole ? 0.0 : s.chunks / ((s.test_matches + s.ref_matches) / 2);
  double score = fmean * (1.0 - kGamma * std::pow(frag, kBeta));
  s.score = std::isnan(score) ? 0.0 : std::max(score, 0.0);
}

// Aligner.align + MeteorScorer.getMeteorStats(Alignment) for one test/reference pair.
Stats align_pair(const Ids& test, const Ids& ref, const MeteorWords& words) {
  const size_t T = test.size(), R = ref.size();
  std::vector<std::vector<Match>> cand(R);
  std::vector<int> cov_test(T, 0), cov_ref(R, 0);
  const int modules = test == ref ? 1 : 2;  // identical lines: exact matches only
  for (int mod = 0; mod < modules; ++mod)
    for (size_t j = 0; j < R; ++j)
      for (size_t i = 0; i < T; ++i) {
        bool hit = mod == 0 ? test[i] == ref[j] : test[i] != ref[j] && words.stem[test[i]] == words.stem[ref[j]];
        if (!hit) continue;
        cand[j].push_back({static_cast<int>(j), static_cast<int>(i), mod});
        ++cov_test[i];
        ++cov_ref[j];
      }
  std::vector<int> fixed(R, -1);  // one-to-one, non-overlapping matches are definite
  for (size_t j = 0; j < R; ++j)
    if (cand[j].size() == 1 && cov_ref[j] == 1 && cov_test[cand[j][0].test] == 1) fixed[j] = 0;
  const size_t longest = std::max(T, R);
  LR_CHECK(longest <= 1024, "meteor: sentences longer than 1024 words are not supported (", longest, ")");
  std::vector<int> sel = longest <= 64    ? resolve<1>(cand, fixed)
                         : longest <= 256 ? resolve<4>(cand, fixed)
                                          : resolve<16>(cand, fixed);
  Stats s;
  s.test_len = static_cast<double>(T);
  s.ref_len = static_cast<double>(R);
  for (int32_t w : test) s.test_fn += words.function[w];
  for (int32_t w : ref) s.ref_fn += words.function[w];
  int last_end = -1;
  for (size_t j = 0; j < R; ++j) {
    if (sel[j] == -1) {
      if (last_end != -1) ++s.chunks;
      last_end = -1;
      continue;
    }
    const Match& m = cand[j][sel[j]];
    (words.function[test[m.test]] ? s.test_function : s.test_content)[m.module] += 1;
    (words.function[ref[j]] ? s.ref_function : s.ref_content)[m.module] += 1;
    if (last_end != -1 && m.test != last_end) ++s.chunks;
    last_end = m.test + 1;
    s.test_matches += 1;
    s.ref_matches += 1;
  }
  if (last_end != -1) ++s.chunks;
  compute_score(s);
  return s;
}

// MeteorStats.addStats: sums everything, but a segment aligned as one whole chunk adds no chunk.
void add_stats(Stats& total, const Stats& s) {
  total.test_len += s.test_len;
  total.ref_len += s.ref_len;
  total.test_fn += s.test_fn;
  total.ref_fn += s.ref_fn;
  for (int m = 0; m < 2; ++m) {
    total.test_content[m] += s.test_content[m];
    total.ref_content[m] += s.ref_content[m];
    total.test_function[m] += s.test_function[m];
    total.ref_function[m] += s.ref_function[m];
  }
  if (!(s.test_matches == s.test_len && s.ref_matches == s.ref_len && s.chunks == 1)) total.chunks += s.chunks;
  total.test_matches += s.test_matches;
  total.ref_matches += s.ref_matches;
}

}  // namespace

double metrics_detail::meteor_tokenized(const TokenizedCorpus& c) {
  MeteorWords words;
  std::vector<Ids> norm = normalize_sentences(c, words);
  std::vector<Stats> best(c.hyp.size());
  const auto segments = static_cast<int64_t>(c.hyp.size());
#pragma omp parallel for schedule(dynamic, 16)
  for (int64_t i = 0; i < segments; ++i) {
    best[i].score = -1;
    for (int r : c.refs[i]) {  // the best reference by segment score
      Stats s = align_pair(norm[c.hyp[i]], norm[r], words);
      if (s.score > best[i].score) best[i] = s;
    }
  }
  Stats total;  // sums of integer counts: exact in any order
  for (const Stats& s : best) add_stats(total, s);
  compute_score(total);
  return total.score;
}

}  // namespace lowrank::data
