// The E2E metrics (data/metrics.h): hand-computed cases for each metric, edge cases, and the
// fixture tests/fixtures/metrics/e2e_metrics.json written by tools/gen_metric_fixtures.py with the
// reference implementations (pymteval from e2e-metrics, sacrebleu, nltk, pycocoevalcap 1.2 and its
// Meteor 1.5 / Stanford PTBTokenizer jars).
//
// Tolerances: BLEU, NIST, ROUGE-L, CIDEr and METEOR-exact+stem are the same algorithms in double
// precision, so they agree with the references to rounding (summation order, pow vs exp): 1e-9
// relative. The official METEOR 1.5 also uses WordNet synonyms and paraphrases, which are not
// implemented: ours must be lower, by the measured gap (asserted loosely).
#include <chrono>
#include <cmath>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "data/metrics.h"
#include "tensor/error.h"

using namespace lowrank;
using namespace lowrank::data;

namespace {

const double kRel = 1e-9;

const nlohmann::json& fixture() {
  static const nlohmann::json j = [] {
    std::ifstream in(std::string(LOWRANK_SOURCE_DIR) + "/tests/fixtures/metrics/e2e_metrics.json");
    REQUIRE(in.good());
    std::stringstream ss;
    ss << in.rdbuf();
    return nlohmann::json::parse(ss.str());
  }();
  return j;
}

struct FixtureCorpus {
  Corpus hyps;
  References refs;
  nlohmann::json scores;
};

// "main": 50 E2E test MRs; "edge": main followed by 6 MRs with empty or very short hypotheses.
FixtureCorpus corpus(const std::string& name) {
  const auto& m = fixture()["corpora"]["main"];
  FixtureCorpus c{m["hyps"].get<Corpus>(), m["refs"].get<References>(), fixture()["corpora"][name]["scores"]};
  if (name == "edge") {
    const auto& e = fixture()["corpora"]["edge"];
    for (const auto& h : e["extra_hyps"]) c.hyps.push_back(h.get<std::string>());
    for (const auto& r : e["extra_refs"]) c.refs.push_back(r.get<std::vector<std::string>>());
  }
  return c;
}

std::string joined(const std::vector<std::string>& t) {
  std::string s;
  for (const auto& w : t) s += (s.empty() ? "" : " ") + w;
  return s;
}

doctest::Approx rel(double v) { return doctest::Approx(v).epsilon(kRel); }

}  // namespace

// ---- BLEU ----------------------------------------------------------------------------------------

TEST_CASE("metrics: BLEU of identical text is 1, case and punctuation spacing do not matter") {
  CHECK(corpus_bleu({"the cat sat on the mat"}, {{"the cat sat on the mat"}}) == rel(1.0));
  CHECK(corpus_bleu({"The cat, sat."}, {{"the cat , sat ."}}) == rel(1.0));  // mteval splits , and .
}

TEST_CASE("metrics: BLEU by hand (Papineni et al. 2002)") {
  // hyp "the cat sat on the mat today" (7) vs ref "the cat sat on the red mat" (7): clipped
  // matches 1-grams 6/7 (not "today"), 2-grams 4/6, 3-grams 3/5, 4-grams 2/4; c = r so BP = 1.
  CHECK(corpus_bleu({"the cat sat on the mat today"}, {{"the cat sat on the red mat"}}) ==
        rel(std::pow(6.0 / 7 * 4.0 / 6 * 3.0 / 5 * 2.0 / 4, 0.25)));
  // All n-grams match; the closest reference has 6 tokens (|6-4| < |7-4|): BP = exp(1 - 6/4).
  CHECK(corpus_bleu({"the cat sat down"}, {{"the cat sat down on the mat", "the cat sat down here ."}}) ==
        rel(std::exp(-0.5)));
  // Lengths 5 and 3 are equally close to 4: the shorter wins, so c > r and there is no penalty.
  CHECK(corpus_bleu({"the cat sat down"}, {{"the cat sat down now", "a b c"}}) == rel(1.0));
}

TEST_CASE("metrics: BLEU edge cases: empty and short hypotheses") {
  CHECK(corpus_bleu({""}, {{"a b c"}}) == 0.0);
  CHECK(corpus_bleu({"  "}, {{"a b c"}}) == 0.0);
  // An empty hypothesis adds no n-grams but its segment's reference length: BP = exp(1 - 10/6).
  CHECK(corpus_bleu({"the cat sat on the mat", ""}, {{"the cat sat on the mat"}, {"a b c d"}}) ==
        rel(std::exp(1.0 - 10.0 / 6)));
  // Shorter than n: no 2..4-grams at all; pymteval floors each empty precision at 1e-15 / 1e-9.
  CHECK(corpus_bleu({"good"}, {{"good"}}) == rel(std::pow(10.0, -4.5)));
}

// ---- NIST ----------------------------------------------------------------------------------------

TEST_CASE("metrics: NIST by hand on a tiny corpus (Doddington 2002)") {
  // One reference "a b c d e f g h i": every unigram has info log2(9/1); every longer n-gram
  // occurs as often as its prefix, info log2(1) = 0. So the sum is 6 log2(9) / 6 = log2(9), and
  // the length ratio 6/9 = 1/1.5 is where mteval's brevity factor is exactly 0.5.
  CHECK(corpus_nist({"a b c d e f"}, {{"a b c d e f g h i"}}) == rel(0.5 * std::log2(9.0)));
  // Two references "a b c d e f" and "a b x" (9 words): info(a) = info(b) = log2(9/2),
  // info(c, d, e) = log2(9); 2-grams: info(b c) = log2(#b / #bc) = 1, the others 0; 3-grams:
  // info(a b c) = log2(#ab / #abc) = 1; longer: 0. Length 5 > mean reference length 4.5: no penalty.
  double expected = (2 * std::log2(4.5) + 3 * std::log2(9.0)) / 5 + 1.0 / 4 + 1.0 / 3;
  CHECK(corpus_nist({"a b c d e"}, {{"a b c d e f", "a b x"}}) == rel(expected));
}

TEST_CASE("metrics: NIST edge cases") {
  CHECK(corpus_nist({""}, {{"a b c"}}) == 0.0);
  // "a b" has no 3..5-grams: those terms are 0 (pymteval would divide by 0 or return 0). The
  // unigrams give log2(3), the bigram info is 0, ratio 2/3 halves it.
  CHECK(corpus_nist({"a b"}, {{"a b c"}}) == rel(0.5 * std::log2(3.0)));
  CHECK_THROWS_AS(corpus_nist({"a"}, {}), Error);
  CHECK_THROWS_AS(corpus_nist({"a"}, {{}}), Error);
}

// ---- ROUGE-L -------------------------------------------------------------------------------------

TEST_CASE("metrics: ROUGE-L by hand (Lin 2004, pycocoevalcap's F with beta 1.2)") {
  // LCS("police killed the gunman today", "police kill the gunman") = 3: P = 3/5, R = 3/4.
  const double b2 = 1.2 * 1.2, p = 0.6, r = 0.75;
  CHECK(rouge_l({"police killed the gunman today"}, {{"police kill the gunman"}}) ==
        rel((1 + b2) * p * r / (r + b2 * p)));
  // The best precision (ref 2: LCS 4 of 4) and the best recall (ref 1: LCS 2 of 2) come from
  // different references and pycocoevalcap combines them: F = 1.
  CHECK(rouge_l({"a b c d"}, {{"a b", "a x b x c x d x"}}) == rel(1.0));
  // Lower case, punctuation dropped by the PTB tokenization.
  CHECK(rouge_l({"The Cat ."}, {{"the cat"}}) == rel(1.0));
  std::vector<double> seg = rouge_l_segments({"", "a b"}, {{"a b"}, {"a b"}});
  REQUIRE(seg.size() == 2);
  CHECK(seg[0] == 0.0);
  CHECK(seg[1] == rel(1.0));
}

// ---- CIDEr ---------------------------------------------------------------------------------------

TEST_CASE("metrics: CIDEr-D by hand (Vedantam et al. 2015, pycocoevalcap's Cider)") {
  // Two segments, so idf = ln 2 - ln(df) is ln 2 for every n-gram here (df 1, or 0 -> 1).
  // Segment 0: hyp "a b c" vs ref "a b". 1-grams: dot = 2 ln²2, norms sqrt(3) ln2 and sqrt(2) ln2
  // -> 2/sqrt(6); 2-grams: "a b" / ("a b", "b c") -> 1/sqrt(2); 3-grams: the reference has none,
  // 0; 4-grams: 0. Length = number of bigrams, 2 vs 1: penalty exp(-1/72). Mean over n, x10.
  double seg0 = 10 * (2 / std::sqrt(6.0) + 1 / std::sqrt(2.0)) / 4 * std::exp(-1.0 / 72);
  std::vector<double> seg = cider_segments({"a b c", "c d"}, {{"a b"}, {"e f"}});
  REQUIRE(seg.size() == 2);
  CHECK(seg[0] == rel(seg0));
  CHECK(seg[1] == 0.0);
  CHECK(cider({"a b c", "c d"}, {{"a b"}, {"e f"}}) == rel(seg0 / 2));
  // Identical hypothesis and reference, two segments: orders 1 and 2 give 1, 3 and 4 nothing.
  CHECK(cider({"a b", "e f"}, {{"a b"}, {"e f"}}) == rel(5.0));
  // One segment: idf = ln 1 - ln 1 = 0 for everything, so CIDEr is 0 even for a perfect match.
  CHECK(cider({"a b"}, {{"a b"}}) == 0.0);
}

// ---- METEOR --------------------------------------------------------------------------------------

TEST_CASE("metrics: METEOR by hand (Meteor 1.5 en parameters, exact + stem)") {
  CHECK(meteor({"the cat sat on the mat"}, {{"the cat sat on the mat"}}) == rel(1.0));
  CHECK(meteor({""}, {{"the cat"}}) == 0.0);
  // "cats sat" vs "the cat sat": cats~cat by stem (weight 0.6), sat exact; "the" is a function
  // word (weight 1 - delta = 0.25, content words delta = 0.75). P = 0.75*1.6 / (0.75*2) = 0.8,
  // R = 0.75*1.6 / (0.75*2 + 0.25) ; one chunk over 2 matches: frag 0.5, penalty 0.6 * 0.5^0.2.
  double p = 1.2 / 1.5, r = 1.2 / 1.75, fmean = 1 / (0.15 / p + 0.85 / r);
  CHECK(meteor({"cats sat"}, {{"the cat sat"}}) == rel(fmean * (1 - 0.6 * std::pow(0.5, 0.2))));
  // Corpus = summed statistics, and a perfectly aligned segment contributes no chunk: test words
  // 8 (3 function), reference 9 (4 function), 8 matches, 1 chunk (from the second segment).
  p = 4.2 / 4.5, r = 4.2 / 4.75, fmean = 1 / (0.15 / p + 0.85 / r);
  CHECK(meteor({"the cat sat on the mat", "cats sat"}, {{"the cat sat on the mat"}, {"the cat sat"}}) ==
        rel(fmean * (1 - 0.6 * std::pow(1.0 / 8, 0.2))));
  // The best reference by segment score is used.
  CHECK(meteor({"cats sat"}, {{"a dog ran", "the cat sat"}}) == rel(meteor({"cats sat"}, {{"the cat sat"}})));
}

// ---- tokenizers and stemmer ----------------------------------------------------------------------

TEST_CASE("metrics: tokenizers on E2E-style text") {
  const std::string s = "The Eagle is n't cheap . It 's £20-25 , near Café Rouge.";
  CHECK(joined(mteval_tokenize(s)) == "the eagle is n't cheap . it 's £20 - 25 , near café rouge .");
  CHECK(joined(coco_tokenize(s)) == "the eagle is n't cheap it 's # 20-25 near café rouge");
  CHECK(joined(meteor_normalize(joined(coco_tokenize(s)))) == "the eagle is n 't cheap it ' s # 20 25 near café rouge");
  CHECK(coco_tokenize(" . , ").empty());
  CHECK(mteval_tokenize("").empty());
}

TEST_CASE("metrics: tokenizer cases from the fixture (PTBTokenizer, Meteor -norm, pymteval)") {
  for (const auto& c : fixture()["tokenizer_cases"]) {
    std::string text = c["text"];
    INFO("text: " << text);
    CHECK(joined(coco_tokenize(text)) == c["coco"].get<std::string>());
    CHECK(joined(meteor_normalize(text)) == c["meteor_norm"].get<std::string>());
    CHECK(joined(meteor_normalize(c["coco"].get<std::string>())) == c["meteor_norm_of_coco"].get<std::string>());
    CHECK(joined(mteval_tokenize(text)) == c["mteval"].get<std::string>());
  }
}

TEST_CASE("metrics: Snowball English stemmer") {
  CHECK(snowball_english_stem("caresses") == "caress");
  CHECK(snowball_english_stem("ponies") == "poni");
  CHECK(snowball_english_stem("ties") == "tie");
  CHECK(snowball_english_stem("hopping") == "hop");
  CHECK(snowball_english_stem("hoping") == "hope");
  CHECK(snowball_english_stem("generously") == "generous");
  CHECK(snowball_english_stem("restaurants") == "restaur");
  CHECK(snowball_english_stem("by") == "by");
  size_t n = 0;
  for (const auto& c : fixture()["stem_cases"]) {  // stems from meteor-1.5.jar's englishStemmer
    INFO("word: " << c[0].get<std::string>());
    CHECK(snowball_english_stem(c[0].get<std::string>()) == c[1].get<std::string>());
    ++n;
  }
  CHECK(n > 400);
}

// ---- the fixture corpora -------------------------------------------------------------------------

TEST_CASE("metrics: main fixture corpus matches pymteval, sacrebleu, nltk and pycocoevalcap") {
  FixtureCorpus c = corpus("main");
  REQUIRE(c.hyps.size() == 50);
  const auto& s = c.scores;
  double bleu = corpus_bleu(c.hyps, c.refs), nist = corpus_nist(c.hyps, c.refs);
  CHECK(bleu == rel(s["bleu_pymteval"].get<double>()));
  CHECK(bleu == rel(s["bleu_sacrebleu"].get<double>()));
  CHECK(bleu == rel(s["bleu_nltk"].get<double>()));
  CHECK(nist == rel(s["nist_pymteval"].get<double>()));
  // nltk's corpus_nist scores each segment against its single best reference: not mteval's NIST.
  CHECK(nist != rel(s["nist_nltk"].get<double>()));
  CHECK(rouge_l(c.hyps, c.refs) == rel(s["rouge_l"].get<double>()));
  CHECK(cider(c.hyps, c.refs) == rel(s["cider"].get<double>()));
  CHECK(meteor(c.hyps, c.refs) == rel(s["meteor_1.5_exact_stem"].get<double>()));
  // Full Meteor 1.5 (synonym + paraphrase modules) credits the near-synonym hypotheses too.
  double gap = s["meteor_1.5"].get<double>() - meteor(c.hyps, c.refs);
  MESSAGE("METEOR: ours (exact+stem) " << meteor(c.hyps, c.refs) << ", Meteor 1.5 full "
                                       << s["meteor_1.5"].get<double>());
  CHECK(gap > 0);
  CHECK(gap < 0.03);
}

TEST_CASE("metrics: main fixture per-segment ROUGE-L and CIDEr, single-reference BLEU and NIST") {
  FixtureCorpus c = corpus("main");
  const auto& seg = fixture()["corpora"]["main"]["segments"];
  std::vector<double> rouge = rouge_l_segments(c.hyps, c.refs), cid = cider_segments(c.hyps, c.refs);
  for (size_t i = 0; i < c.hyps.size(); ++i) {
    INFO("segment " << i << ": " << c.hyps[i]);
    CHECK(rouge[i] == rel(seg["rouge_l"][i].get<double>()));
    CHECK(cid[i] == rel(seg["cider"][i].get<double>()));
  }
  // With one reference per segment nltk's NIST is mteval's NIST: a third opinion on ours.
  References single;
  for (const auto& r : c.refs) single.push_back({r[0]});
  const auto& s = fixture()["corpora"]["main"]["single_ref_scores"];
  CHECK(corpus_bleu(c.hyps, single) == rel(s["bleu_sacrebleu"].get<double>()));
  CHECK(corpus_nist(c.hyps, single) == rel(s["nist_pymteval"].get<double>()));
  CHECK(corpus_nist(c.hyps, single) == rel(s["nist_nltk"].get<double>()));
}

TEST_CASE("metrics: edge fixture corpus (empty and 1-3 token hypotheses)") {
  FixtureCorpus c = corpus("edge");
  REQUIRE(c.hyps.size() == 56);
  const auto& s = c.scores;
  // mteval n-gram counting (sacrebleu, and pymteval patched to it); plain pymteval differs here.
  CHECK(corpus_bleu(c.hyps, c.refs) == rel(s["bleu_sacrebleu"].get<double>()));
  CHECK(corpus_bleu(c.hyps, c.refs) == rel(s["bleu_pymteval_mteval_counts"].get<double>()));
  CHECK(corpus_nist(c.hyps, c.refs) == rel(s["nist_pymteval_mteval_counts"].get<double>()));
  CHECK(corpus_bleu(c.hyps, c.refs) != rel(s["bleu_pymteval"].get<double>()));
  MetricScores m = e2e_metrics(c.hyps, c.refs);
  CHECK(m.rouge_l == rel(s["rouge_l"].get<double>()));
  CHECK(m.cider == rel(s["cider"].get<double>()));
  CHECK(m.meteor == rel(s["meteor_1.5_exact_stem"].get<double>()));
  CHECK(m.bleu == rel(s["bleu_sacrebleu"].get<double>()));
}

TEST_CASE("metrics: e2e_metrics scores the whole E2E test set (references as hypotheses)") {
  // Every test reference as a hypothesis against all references of its MR: 4,693 segments with
  // 7.4 references each on average (more work than scoring one output per MR).
  std::ifstream in(std::string(LOWRANK_E2E_DIR) + "/test.txt");
  REQUIRE(in.good());
  std::vector<std::pair<std::string, std::string>> lines;
  for (std::string line; std::getline(in, line);) {
    size_t sep = line.find("||");
    if (sep != std::string::npos) lines.emplace_back(line.substr(0, sep), line.substr(sep + 2));
  }
  Corpus hyps;
  References refs;
  for (size_t i = 0; i < lines.size();) {
    size_t j = i;
    std::vector<std::string> group;
    for (; j < lines.size() && lines[j].first == lines[i].first; ++j) group.push_back(lines[j].second);
    for (size_t k = i; k < j; ++k) {
      hyps.push_back(lines[k].second);
      refs.push_back(group);
    }
    i = j;
  }
  REQUIRE(hyps.size() == 4693);
  // Speed is a benchmark's business, not a test's: this only checks the whole split scores sanely.
  MetricScores m = e2e_metrics(hyps, refs);
  MESSAGE("4693 segments: BLEU " << m.bleu << " NIST " << m.nist << " METEOR " << m.meteor << " ROUGE-L " << m.rouge_l
                                 << " CIDEr " << m.cider);
  CHECK(m.bleu == rel(1.0));  // each hypothesis is one of its references
  CHECK(m.rouge_l == rel(1.0));
  CHECK(m.meteor == rel(1.0));
}
