// METEOR (Banerjee & Lavie 2005; version 1.5: Denkowski & Lavie 2014) as pycocoevalcap runs it:
// `java -jar meteor-1.5.jar - - -stdio -l en -norm` on PTB-tokenized text, one "SCORE" line per
// segment (the best reference by segment score), then "EVAL" over all of them, which sums the
// segments' sufficient statistics and scores the sums once (a corpus score, not a mean).
//
// Modules: exact and stem (Snowball English) only. Meteor 1.5 "en" also aligns WordNet synonyms
// (weight 0.8) and paraphrases from its 60 MB paraphrase-en table (weight 0.6); neither is shipped
// here, so words that only those modules match count as unmatched and this score is at most the
// official one. On the committed fixture (50 E2E test MRs, perturbed references as hypotheses)
// Meteor 1.5 restricted to `-m "exact stem"` agrees with this code to ~1e-9 and the full Meteor
// 1.5 score is higher by ~0.005 (see tests/fixtures/metrics/e2e_metrics.json and the tests).
//
// Parameters are Meteor 1.5's defaults for English (task "rank"), which is what the official E2E
// scorer and hence the LoRA paper used: alpha 0.85, beta 0.20, gamma 0.60, delta 0.75, weights
// exact 1.0 / stem 0.6; the original 2005 METEOR (alpha 0.9, beta 3, gamma 0.5, no function-word
// delta, unit weights) gives different numbers and would not be comparable to the paper.
//
// The alignment is Meteor 1.5's (edu.cmu.meteor.aligner.Aligner, read from the 1.5 jar), quirks
// included so that ties break the same way: candidate matches per reference word, one-to-one
// unambiguous matches fixed up front, then a beam search (40) over the rest ranked by weighted
// match count (the search weights are 1 for exact and 0.5 for stem, accumulated into an int, so a
// stem match adds nothing), then fewer chunks, then smaller distance; the distance of a chosen
// match is added to the path that skips it, as in the jar.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <unordered_set>

#include "data/metrics.h"
#include "data/metrics_internal.h"

namespace lowrank::data {

using namespace metrics_detail;

namespace {

constexpr double kAlpha = 0.85, kBeta = 0.20, kGamma = 0.60, kDelta = 0.75;
constexpr double kScoreWeight[2] = {1.0, 0.6};   // exact, stem: used in the score
constexpr double kSearchWeight[2] = {1.0, 0.5};  // exact, stem: used to rank alignments
constexpr size_t kBeam = 40;

// Meteor 1.5's function/english.words.
bool function_word(const std::string& w) {
  static const std::unordered_set<std::string> words = [] {
    const char* list =
        "the , . to of and a in that for \" is on 's it with was as said at he by be from have has are his "
        "but an this not i will \xE2\x80\x99 they ) -rrb- ( -lrb- who their had we which were been more or s "
        "its would about new one after you : also up when there than $ all out her people she year two - "
        "can if last first \xE2\x80\x9C over other \xE2\x80\x9D into some what so -- no time years could ? "
        "'t \xE2\x80\x94 '";
    Tokens t = split_ws(list);
    return std::unordered_set<std::string>(t.begin(), t.end());
  }();
  return words.count(w) > 0;
}

struct Match {
  int ref = 0, test = 0, module = 0;  // reference position, test position, 0 exact / 1 stem
};

struct Path {
  std::vector<int> sel;  // per reference position: index of the chosen candidate there, or -1
  std::vector<char> used_test, used_ref;
  int weighted = 0, chunks = 0, idx = 0, last_end = -1, distance = 0;
};

// Constants.PARTIAL_COMPARE_TOTAL as a strict weak order (more weighted matches, fewer chunks,
// smaller distance first).
bool better(const Path& x, const Path& y) {
  if (x.weighted != y.weighted) return x.weighted > y.weighted;
  if (x.chunks != y.chunks) return x.chunks < y.chunks;
  return x.distance < y.distance;
}

// Adds match m to path p (both sides' weighted counts are truncated to int, as in the jar).
void take(Path& p, const Match& m) {
  for (int side = 0; side < 2; ++side) p.weighted = static_cast<int>(p.weighted + kSearchWeight[m.module]);
  if (p.last_end != -1 && m.test != p.last_end) ++p.chunks;
  p.idx = m.ref + 1;
  p.last_end = m.test + 1;
}

// Aligner.resolve: left-to-right beam search over the reference positions.
Path resolve(const std::vector<std::vector<Match>>& cand, Path start) {
  std::vector<Path> next{std::move(start)};
  const int R = static_cast<int>(cand.size());
  for (int cur = 0; cur <= R; ++cur) {
    std::vector<Path> paths = std::move(next);
    next.clear();
    std::stable_sort(paths.begin(), paths.end(), better);
    for (size_t rank = 0; rank < kBeam && rank < paths.size(); ++rank) {
      Path& path = paths[rank];
      if (cur == R) {
        if (path.last_end != -1) ++path.chunks;
        next.push_back(std::move(path));
        continue;
      }
      if (path.used_ref[static_cast<size_t>(cur)]) {  // a match fixed up front
        if (cur < path.idx) {
          next.push_back(std::move(path));
        } else if (path.sel[static_cast<size_t>(path.idx)] != -1) {
          const Match& m = cand[static_cast<size_t>(path.idx)][static_cast<size_t>(path.sel[static_cast<size_t>(path.idx)])];
          take(path, m);
          path.distance += std::abs(m.ref - m.test);
          next.push_back(std::move(path));
        }
        continue;
      }
      const auto& here = cand[static_cast<size_t>(cur)];
      for (size_t k = 0; k < here.size(); ++k) {
        const Match& m = here[k];
        if (path.used_ref[static_cast<size_t>(m.ref)] || path.used_test[static_cast<size_t>(m.test)]) continue;
        Path np = path;
        np.used_ref[static_cast<size_t>(m.ref)] = np.used_test[static_cast<size_t>(m.test)] = 1;
        np.sel[static_cast<size_t>(cur)] = static_cast<int>(k);
        take(np, m);
        path.distance += std::abs(m.ref - m.test);  // sic: the jar adds it to the skipping path
        next.push_back(std::move(np));
      }
      if (path.last_end != -1) {
        ++path.chunks;
        path.last_end = -1;
      }
      ++path.idx;
      next.push_back(std::move(path));
    }
    if (next.empty()) next.push_back(paths[0]);
  }
  std::stable_sort(next.begin(), next.end(), better);
  return next[0];
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

using StemCache = std::unordered_map<std::string, std::string>;

const std::string& stem_of(const std::string& w, StemCache& cache) {
  auto it = cache.find(w);
  if (it == cache.end()) it = cache.emplace(w, snowball_english_stem(w)).first;
  return it->second;
}

// Aligner.align + MeteorScorer.getMeteorStats(Alignment) for one test/reference pair.
Stats align_pair(const Tokens& test, const Tokens& ref, StemCache& cache) {
  const size_t T = test.size(), R = ref.size();
  std::vector<std::vector<Match>> cand(R);
  std::vector<int> cov_test(T, 0), cov_ref(R, 0);
  const int modules = test == ref ? 1 : 2;  // identical lines: exact matches only
  for (int mod = 0; mod < modules; ++mod)
    for (size_t j = 0; j < R; ++j)
      for (size_t i = 0; i < T; ++i) {
        bool hit = mod == 0 ? test[i] == ref[j]
                            : test[i] != ref[j] && stem_of(test[i], cache) == stem_of(ref[j], cache);
        if (!hit) continue;
        cand[j].push_back({static_cast<int>(j), static_cast<int>(i), mod});
        ++cov_test[i];
        ++cov_ref[j];
      }
  Path start{std::vector<int>(R, -1), std::vector<char>(T, 0), std::vector<char>(R, 0)};
  for (size_t j = 0; j < R; ++j)  // one-to-one, non-overlapping matches are definite
    if (cand[j].size() == 1 && cov_ref[j] == 1 && cov_test[static_cast<size_t>(cand[j][0].test)] == 1) {
      start.sel[j] = 0;
      start.used_ref[j] = start.used_test[static_cast<size_t>(cand[j][0].test)] = 1;
    }
  Path best = resolve(cand, std::move(start));
  Stats s;
  s.test_len = static_cast<double>(T);
  s.ref_len = static_cast<double>(R);
  for (const auto& w : test) s.test_fn += function_word(w);
  for (const auto& w : ref) s.ref_fn += function_word(w);
  int last_end = -1;
  for (size_t j = 0; j < R; ++j) {
    if (best.sel[j] == -1) {
      if (last_end != -1) ++s.chunks;
      last_end = -1;
      continue;
    }
    const Match& m = cand[j][static_cast<size_t>(best.sel[j])];
    (function_word(test[static_cast<size_t>(m.test)]) ? s.test_function : s.test_content)[m.module] += 1;
    (function_word(ref[j]) ? s.ref_function : s.ref_content)[m.module] += 1;
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

std::string join(const Tokens& t) {
  std::string s;
  for (const auto& w : t) s += (s.empty() ? "" : " ") + w;
  return s;
}

}  // namespace

double metrics_detail::meteor_tokenized(const TokenizedCorpus& c) {
  StemCache cache;
  Stats total;
  for (size_t i = 0; i < c.hyps.size(); ++i) {
    Tokens test = meteor_normalize(join(c.hyps[i]));
    Stats best;
    best.score = -1;
    for (const auto& r : c.refs[i]) {
      Stats s = align_pair(test, meteor_normalize(join(r)), cache);
      if (s.score > best.score) best = s;
    }
    add_stats(total, best);
  }
  compute_score(total);
  return total.score;
}

}  // namespace lowrank::data
