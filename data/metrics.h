#pragma once
// The E2E NLG challenge metrics as the LoRA paper reports them (Table 3: BLEU, NIST, METEOR,
// ROUGE-L, CIDEr), computed like the official scorer, tuetschek/e2e-metrics `measure_scores.py -p`
// (the -p flag is what LoRA's examples/NLG README runs):
//   - BLEU, NIST: its pymteval.py (mteval-v13a tokenization, case-insensitive, multi-reference);
//   - METEOR, ROUGE-L, CIDEr: MS-COCO caption evaluation (pycocoevalcap) after its PTB tokenization
//     (Stanford PTBTokenizer -lowerCase, punctuation tokens dropped).
// Every corpus-level function takes one hypothesis per segment and a non-empty list of references
// per segment (the count may vary). Raw, untokenized strings go in: each metric applies the
// tokenization its reference implementation applies. Scores are on the scorer's own scale:
// BLEU, METEOR and ROUGE-L in [0, 1] (the paper prints them x100), NIST and CIDEr as they are.
#include <string>
#include <vector>

namespace lowrank::data {

using Corpus = std::vector<std::string>;                   // one string per segment
using References = std::vector<std::vector<std::string>>;  // references per segment

struct MetricScores {
  double bleu = 0, nist = 0, meteor = 0, rouge_l = 0, cider = 0;
};

// All five, as e2e-metrics prints them. Throws lowrank::Error when the sizes disagree or a segment
// has no reference.
MetricScores e2e_metrics(const Corpus& hyps, const References& refs);

// Corpus BLEU-4 in [0, 1] (Papineni et al. 2002): clipped n-gram counts against the per-n-gram
// maximum over a segment's references, brevity penalty from the closest reference length (ties to
// the shorter), geometric mean of the four corpus precisions.
double corpus_bleu(const Corpus& hyps, const References& refs);

// Corpus NIST-5 (Doddington 2002): information weights from all references of the corpus, mteval's
// brevity factor on the average reference length.
double corpus_nist(const Corpus& hyps, const References& refs);

// pycocoevalcap ROUGE-L (Lin 2004): per segment F_beta (beta = 1.2) of the LCS precision and
// recall, each maximised over the references; the corpus score is the mean over segments.
double rouge_l(const Corpus& hyps, const References& refs);
std::vector<double> rouge_l_segments(const Corpus& hyps, const References& refs);

// pycocoevalcap "CIDEr", which is CIDEr-D (Vedantam et al. 2015): n = 1..4 tf-idf vectors, idf from
// the references of this corpus, clipped hypothesis counts, Gaussian length penalty (sigma = 6),
// x10; the corpus score is the mean over segments.
double cider(const Corpus& hyps, const References& refs);
std::vector<double> cider_segments(const Corpus& hyps, const References& refs);

// METEOR 1.5 ("-l en -norm", task "rank": alpha 0.85, beta 0.2, gamma 0.6, delta 0.75) with the
// exact and stem (Snowball English) modules only. Meteor 1.5 also has WordNet synonym and
// paraphrase modules (weights 0.8 and 0.6) that are not shipped here, so this is a lower bound of
// the official number: see data/metrics_meteor.cpp for the measured gap.
double meteor(const Corpus& hyps, const References& refs);

// ---- the tokenizations, exposed for tests --------------------------------------------------------

// pymteval / mteval-v13a: SGML unescaping, punctuation split, lowercased.
std::vector<std::string> mteval_tokenize(const std::string& text);
// pycocoevalcap: Stanford PTBTokenizer (-lowerCase) followed by dropping punctuation tokens.
std::vector<std::string> coco_tokenize(const std::string& text);
// Meteor 1.5 "-norm" normalization of one line (English), lowercased, split into words.
std::vector<std::string> meteor_normalize(const std::string& text);
// The Snowball English ("Porter2") stemmer that Meteor 1.5 uses; expects a lowercase word.
std::string snowball_english_stem(const std::string& word);

}  // namespace lowrank::data
