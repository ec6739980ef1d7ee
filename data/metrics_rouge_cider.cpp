// ROUGE-L and CIDEr as pycocoevalcap computes them (the MS-COCO caption evaluation that e2e-metrics
// runs), on coco_tokenize'd text, plus e2e_metrics() that runs all five metrics.
#include <algorithm>
#include <cmath>

#include "data/metrics.h"
#include "data/metrics_internal.h"

namespace lowrank::data {

using namespace metrics_detail;

namespace metrics_detail {

TokenizedCorpus tokenize_corpus(const Corpus& hyps, const References& refs,
                                std::vector<std::string> (*tokenize)(const std::string&)) {
  TokenizedCorpus c;
  std::unordered_map<std::string, int> sentence_of, id_of;
  auto sentence = [&](const std::string& text) {
    auto [it, fresh] = sentence_of.emplace(text, static_cast<int>(c.sentences.size()));
    if (fresh) {
      Ids ids;
      for (const auto& t : tokenize(text)) {
        auto [tok, added] = id_of.emplace(t, static_cast<int>(c.vocab.size()));
        if (added) c.vocab.push_back(t);
        ids.push_back(tok->second);
      }
      c.sentences.push_back(std::move(ids));
    }
    return it->second;
  };
  for (const auto& h : hyps) c.hyp.push_back(sentence(h));
  for (const auto& seg : refs) {
    c.refs.emplace_back();
    for (const auto& r : seg) c.refs.back().push_back(sentence(r));
  }
  LR_CHECK(c.vocab.size() < (1u << 21), "metrics: more than 2^21 distinct tokens");
  return c;
}

namespace {

// Length of the longest common subsequence (dynamic programming, one row at a time).
size_t lcs_length(const Ids& a, const Ids& b) {
  std::vector<size_t> row(b.size() + 1, 0);
  for (int32_t x : a) {
    size_t diag = 0;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = x == b[j - 1] ? diag + 1 : std::max(row[j], row[j - 1]);
      diag = up;
    }
  }
  return row[b.size()];
}

// pycocoevalcap splits the tokenized caption on " ", so an empty caption is one empty token; two
// of those match each other (id -1 stands for it).
Ids or_empty_token(const Ids& t) { return t.empty() ? Ids{-1} : t; }

// Rouge.calc_score (Lin 2004, ROUGE-L): F_beta of the best precision and the best recall over the
// references, beta = 1.2.
double rouge_l_segment(const TokenizedCorpus& c, size_t seg) {
  const double beta = 1.2;
  Ids hyp = or_empty_token(c.sentences[static_cast<size_t>(c.hyp[seg])]);
  double p_max = 0, r_max = 0;
  for (int r : c.refs[seg]) {
    Ids ref = or_empty_token(c.sentences[static_cast<size_t>(r)]);
    auto lcs = static_cast<double>(lcs_length(ref, hyp));
    p_max = std::max(p_max, lcs / static_cast<double>(hyp.size()));
    r_max = std::max(r_max, lcs / static_cast<double>(ref.size()));
  }
  if (p_max == 0 || r_max == 0) return 0.0;
  return (1 + beta * beta) * p_max * r_max / (r_max + beta * beta * p_max);
}

// CiderScorer's n-gram vectors of one sentence: tf-idf per order (sorted by key), their norms,
// and its "length", which pycocoevalcap takes as the number of bigrams (what counts2vec counts).
struct TfIdf {
  std::vector<std::vector<std::pair<NgramKey, double>>> vec;
  std::vector<double> norm;
  double length = 0;
};

TfIdf tf_idf(const Ids& t, const KeyMap& df, double log_segments) {
  constexpr int N = 4;
  TfIdf v{std::vector<std::vector<std::pair<NgramKey, double>>>(N), std::vector<double>(N, 0.0), 0};
  for (int n = 1; n <= N; ++n) {
    for (const auto& [k, tf] : ngram_counts(t, n)) {
      auto it = df.find(k);
      double w = tf * (log_segments - std::log(std::max(1.0, it == df.end() ? 0.0 : it->second)));
      v.vec[static_cast<size_t>(n - 1)].emplace_back(k, w);
      v.norm[static_cast<size_t>(n - 1)] += w * w;
      if (n == 2) v.length += tf;
    }
    v.norm[static_cast<size_t>(n - 1)] = std::sqrt(v.norm[static_cast<size_t>(n - 1)]);
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
    const auto &h = hyp.vec[n], &r = ref.vec[n];
    for (size_t i = 0, j = 0; i < h.size() && j < r.size();) {  // merge join of sorted lists
      if (h[i].first < r[j].first)
        ++i;
      else if (r[j].first < h[i].first)
        ++j;
      else
        val += std::min(h[i++].second, r[j].second) * r[j].second, ++j;
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
  std::vector<double> scores(c.hyp.size());
  const auto count = static_cast<int64_t>(c.hyp.size());
#pragma omp parallel for schedule(dynamic, 64)
  for (int64_t i = 0; i < count; ++i) scores[static_cast<size_t>(i)] = rouge_l_segment(c, static_cast<size_t>(i));
  if (segments) *segments = scores;
  return mean(scores);
}

double cider_tokenized(const TokenizedCorpus& c, std::vector<double>* segments) {
  KeyMap df;  // document frequency: the number of segments whose references contain the n-gram
  for (const auto& refs : c.refs) {
    std::vector<NgramKey> seen;
    for (int r : refs)
      for (int n = 1; n <= 4; ++n)
        for (const auto& kv : ngram_counts(c.sentences[static_cast<size_t>(r)], n)) seen.push_back(kv.first);
    std::sort(seen.begin(), seen.end());
    seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
    for (const auto& k : seen) df[k] += 1;
  }
  const double log_segments = std::log(static_cast<double>(c.hyp.size()));
  std::vector<TfIdf> vecs(c.sentences.size());
  const auto sentences = static_cast<int64_t>(c.sentences.size()), count = static_cast<int64_t>(c.hyp.size());
#pragma omp parallel for schedule(dynamic, 64)
  for (int64_t s = 0; s < sentences; ++s)
    vecs[static_cast<size_t>(s)] = tf_idf(c.sentences[static_cast<size_t>(s)], df, log_segments);
  std::vector<double> scores(c.hyp.size());
#pragma omp parallel for schedule(dynamic, 64)
  for (int64_t i = 0; i < count; ++i) {
    const auto seg = static_cast<size_t>(i);
    double per_order[4] = {};
    for (int r : c.refs[seg]) cider_sim(vecs[static_cast<size_t>(c.hyp[seg])], vecs[static_cast<size_t>(r)], per_order);
    double avg = (per_order[0] + per_order[1] + per_order[2] + per_order[3]) / 4.0;
    scores[seg] = avg / static_cast<double>(c.refs[seg].size()) * 10.0;
  }
  if (segments) *segments = scores;
  return mean(scores);
}

}  // namespace metrics_detail

double rouge_l(const Corpus& hyps, const References& refs) {
  check_corpus(hyps, refs, "rouge_l");
  return rouge_l_tokenized(tokenize_corpus(hyps, refs, coco_tokenize), nullptr);
}

std::vector<double> rouge_l_segments(const Corpus& hyps, const References& refs) {
  check_corpus(hyps, refs, "rouge_l");
  std::vector<double> segments;
  rouge_l_tokenized(tokenize_corpus(hyps, refs, coco_tokenize), &segments);
  return segments;
}

double cider(const Corpus& hyps, const References& refs) {
  check_corpus(hyps, refs, "cider");
  return cider_tokenized(tokenize_corpus(hyps, refs, coco_tokenize), nullptr);
}

std::vector<double> cider_segments(const Corpus& hyps, const References& refs) {
  check_corpus(hyps, refs, "cider");
  std::vector<double> segments;
  cider_tokenized(tokenize_corpus(hyps, refs, coco_tokenize), &segments);
  return segments;
}

double meteor(const Corpus& hyps, const References& refs) {
  check_corpus(hyps, refs, "meteor");
  return meteor_tokenized(tokenize_corpus(hyps, refs, coco_tokenize));
}

MetricScores e2e_metrics(const Corpus& hyps, const References& refs) {
  check_corpus(hyps, refs, "e2e_metrics");
  MetricScores s;
  MtevalCorpus mteval = mteval_corpus(hyps, refs);
  s.bleu = bleu_tokenized(mteval);
  s.nist = nist_tokenized(mteval);
  TokenizedCorpus coco = tokenize_corpus(hyps, refs, coco_tokenize);
  s.meteor = meteor_tokenized(coco);
  s.rouge_l = rouge_l_tokenized(coco, nullptr);
  s.cider = cider_tokenized(coco, nullptr);
  return s;
}

}  // namespace lowrank::data
