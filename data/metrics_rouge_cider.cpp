// ROUGE-L and CIDEr as pycocoevalcap computes them (the MS-COCO caption evaluation that e2e-metrics
// runs), on coco_tokenize'd text, plus e2e_metrics() that runs all five metrics.
#include <algorithm>
#include <cmath>

#include "data/metrics.h"
#include "data/metrics_internal.h"

namespace lowrank::data {

using namespace metrics_detail;

namespace metrics_detail {

TokenizedCorpus coco_corpus(const Corpus& hyps, const References& refs) {
  TokenizedCorpus c;
  c.hyps.reserve(hyps.size());
  c.refs.resize(refs.size());
  for (const auto& h : hyps) c.hyps.push_back(coco_tokenize(h));
  for (size_t i = 0; i < refs.size(); ++i)
    for (const auto& r : refs[i]) c.refs[i].push_back(coco_tokenize(r));
  return c;
}

namespace {

// Length of the longest common subsequence (dynamic programming, one row at a time).
size_t lcs_length(const Tokens& a, const Tokens& b) {
  std::vector<size_t> row(b.size() + 1, 0);
  for (const auto& x : a) {
    size_t diag = 0;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = x == b[j - 1] ? diag + 1 : std::max(row[j], row[j - 1]);
      diag = up;
    }
  }
  return row[b.size()];
}

// pycocoevalcap splits the tokenized caption on " ", so an empty caption is one empty token.
Tokens or_empty_token(const Tokens& t) { return t.empty() ? Tokens{""} : t; }

// Rouge.calc_score (Lin 2004, ROUGE-L): F_beta of the best precision and the best recall over the
// references, beta = 1.2.
double rouge_l_segment(const Tokens& hyp_tokens, const std::vector<Tokens>& refs) {
  const double beta = 1.2;
  Tokens hyp = or_empty_token(hyp_tokens);
  double p_max = 0, r_max = 0;
  for (const auto& ref_tokens : refs) {
    Tokens ref = or_empty_token(ref_tokens);
    auto lcs = static_cast<double>(lcs_length(ref, hyp));
    p_max = std::max(p_max, lcs / static_cast<double>(hyp.size()));
    r_max = std::max(r_max, lcs / static_cast<double>(ref.size()));
  }
  if (p_max == 0 || r_max == 0) return 0.0;
  return (1 + beta * beta) * p_max * r_max / (r_max + beta * beta * p_max);
}

// CiderScorer's n-gram vectors of one sentence: tf-idf per order, their norms, and its "length",
// which pycocoevalcap takes as the number of bigrams (that is what its counts2vec counts).
struct TfIdf {
  std::vector<std::unordered_map<std::string, double>> vec;
  std::vector<double> norm;
  double length = 0;
};

TfIdf tf_idf(const Tokens& t, const NgramCounts& df, double log_segments) {
  constexpr int N = 4;
  TfIdf v{std::vector<std::unordered_map<std::string, double>>(N), std::vector<double>(N, 0.0), 0};
  for (int n = 1; n <= N; ++n) {
    for (const auto& [g, tf] : ngram_counts(t, n)) {
      auto it = df.find(g);
      double idf = log_segments - std::log(std::max(1.0, it == df.end() ? 0.0 : static_cast<double>(it->second)));
      double w = tf * idf;
      v.vec[n - 1][g] = w;
      v.norm[n - 1] += w * w;
      if (n == 2) v.length += tf;
    }
    v.norm[n - 1] = std::sqrt(v.norm[n - 1]);
  }
  return v;
}

// CiderScorer.sim (Vedantam et al. 2015, CIDEr-D): per order, the clipped cosine similarity times a
// Gaussian penalty on the length difference (sigma = 6).
void cider_sim(const TfIdf& hyp, const TfIdf& ref, double* per_order) {
  const double sigma = 6.0, delta = hyp.length - ref.length;
  const double penalty = std::exp(-(delta * delta) / (2 * sigma * sigma));
  for (size_t n = 0; n < hyp.vec.size(); ++n) {
    double val = 0;
    for (const auto& [g, w] : hyp.vec[n]) {
      auto it = ref.vec[n].find(g);
      if (it != ref.vec[n].end()) val += std::min(w, it->second) * it->second;
    }
    if (hyp.norm[n] != 0 && ref.norm[n] != 0) val /= hyp.norm[n] * ref.norm[n];
    per_order[n] += val * penalty;
  }
}

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0.0 : s / static_cast<double>(v.size());
}

}  // namespace

double rouge_l_tokenized(const TokenizedCorpus& c, std::vector<double>* segments) {
  std::vector<double> scores(c.hyps.size());
  for (size_t i = 0; i < c.hyps.size(); ++i) scores[i] = rouge_l_segment(c.hyps[i], c.refs[i]);
  if (segments) *segments = scores;
  return mean(scores);
}

double cider_tokenized(const TokenizedCorpus& c, std::vector<double>* segments) {
  NgramCounts df;  // document frequency: the number of segments whose references contain the n-gram
  for (const auto& refs : c.refs) {
    NgramCounts seen;
    for (const auto& r : refs)
      for (int n = 1; n <= 4; ++n)
        for (const auto& kv : ngram_counts(r, n)) seen[kv.first] = 1;
    for (const auto& kv : seen) ++df[kv.first];
  }
  const double log_segments = std::log(static_cast<double>(c.hyps.size()));
  std::vector<double> scores(c.hyps.size());
  for (size_t i = 0; i < c.hyps.size(); ++i) {
    TfIdf hyp = tf_idf(c.hyps[i], df, log_segments);
    double per_order[4] = {};
    for (const auto& r : c.refs[i]) cider_sim(hyp, tf_idf(r, df, log_segments), per_order);
    double avg = (per_order[0] + per_order[1] + per_order[2] + per_order[3]) / 4.0;
    scores[i] = avg / static_cast<double>(c.refs[i].size()) * 10.0;
  }
  if (segments) *segments = scores;
  return mean(scores);
}

}  // namespace metrics_detail

double rouge_l(const Corpus& hyps, const References& refs) {
  check_corpus(hyps, refs, "rouge_l");
  return rouge_l_tokenized(coco_corpus(hyps, refs), nullptr);
}

std::vector<double> rouge_l_segments(const Corpus& hyps, const References& refs) {
  check_corpus(hyps, refs, "rouge_l");
  std::vector<double> segments;
  rouge_l_tokenized(coco_corpus(hyps, refs), &segments);
  return segments;
}

double cider(const Corpus& hyps, const References& refs) {
  check_corpus(hyps, refs, "cider");
  return cider_tokenized(coco_corpus(hyps, refs), nullptr);
}

std::vector<double> cider_segments(const Corpus& hyps, const References& refs) {
  check_corpus(hyps, refs, "cider");
  std::vector<double> segments;
  cider_tokenized(coco_corpus(hyps, refs), &segments);
  return segments;
}

double meteor(const Corpus& hyps, const References& refs) {
  check_corpus(hyps, refs, "meteor");
  return meteor_tokenized(coco_corpus(hyps, refs));
}

MetricScores e2e_metrics(const Corpus& hyps, const References& refs) {
  check_corpus(hyps, refs, "e2e_metrics");
  MetricScores s;
  s.bleu = corpus_bleu(hyps, refs);
  s.nist = corpus_nist(hyps, refs);
  TokenizedCorpus coco = coco_corpus(hyps, refs);
  s.meteor = meteor_tokenized(coco);
  s.rouge_l = rouge_l_tokenized(coco, nullptr);
  s.cider = cider_tokenized(coco, nullptr);
  return s;
}

}  // namespace lowrank::data
