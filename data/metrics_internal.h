#pragma once
// Helpers shared by the metrics files (data/metrics_*.cpp); not part of the public API.
#include <algorithm>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "data/metrics.h"
#include "tensor/error.h"

namespace lowrank::data::metrics_detail {

using Tokens = std::vector<std::string>;

inline bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
inline bool is_digit(char c) { return c >= '0' && c <= '9'; }
inline bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// Splits on ASCII whitespace (Python's str.split() for ASCII text).
inline Tokens split_ws(const std::string& s) {
  Tokens out;
  size_t i = 0, n = s.size();
  while (i < n) {
    while (i < n && is_space(s[i])) ++i;
    size_t j = i;
    while (j < n && !is_space(s[j])) ++j;
    if (j > i) out.emplace_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

// Lowercases ASCII, Latin-1 and Latin Extended-A letters of a UTF-8 string (other bytes are kept);
// this covers everything in the E2E data (e.g. "Café").
inline std::string lowercase(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : static_cast<char>(c);
      continue;
    }
    if ((c == 0xC3 || c == 0xC4 || c == 0xC5) && i + 1 < s.size()) {
      uint32_t cp = ((c & 0x1Fu) << 6) | (static_cast<unsigned char>(s[i + 1]) & 0x3Fu);
      if (cp >= 0xC0 && cp <= 0xDE && cp != 0xD7)
        cp += 0x20;  // À..Þ
      else if (cp == 0x178)
        cp = 0xFF;  // Ÿ
      else if ((cp >= 0x100 && cp <= 0x137) || (cp >= 0x14A && cp <= 0x177))
        cp |= 1u;  // Ā.., Ŋ..
      else if (((cp >= 0x139 && cp <= 0x148) || (cp >= 0x179 && cp <= 0x17E)) && (cp & 1u))
        ++cp;
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
      ++i;
      continue;
    }
    out += static_cast<char>(c);
  }
  return out;
}

// UTF-8 <-> code points (invalid bytes are decoded leniently; the metrics never produce them).
inline std::u32string utf8_to_u32(const std::string& s) {
  std::u32string out;
  for (size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    int extra = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : 0;
    char32_t cp = extra == 0 ? c : (c & (0x3F >> extra));
    for (int k = 1; k <= extra && i + static_cast<size_t>(k) < s.size(); ++k)
      cp = (cp << 6) | (static_cast<unsigned char>(s[i + static_cast<size_t>(k)]) & 0x3Fu);
    out += cp;
    i += static_cast<size_t>(extra) + 1;
  }
  return out;
}

inline std::string u32_to_utf8(const std::u32string& w) {
  std::string out;
  for (char32_t c : w) {
    if (c < 0x80) {
      out += static_cast<char>(c);
    } else if (c < 0x800) {
      out += static_cast<char>(0xC0 | (c >> 6));
      out += static_cast<char>(0x80 | (c & 0x3F));
    } else if (c < 0x10000) {
      out += static_cast<char>(0xE0 | (c >> 12));
      out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (c & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (c >> 18));
      out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (c & 0x3F));
    }
  }
  return out;
}

// The number of n-grams of order n in a sentence of len tokens (0 when it is shorter than n).
inline int64_t ngram_total(size_t len, int n) {
  return len >= static_cast<size_t>(n) ? static_cast<int64_t>(len) - n + 1 : 0;
}

// ---- corpora as token ids -------------------------------------------------------------------------
// Each distinct input string is tokenized once; tokens become ids (from 1) so that n-grams are
// small integer keys. Per-sentence work (n-gram counts, tf-idf vectors, METEOR normalization) is
// then done once per distinct sentence even when, as in E2E, a segment's references repeat.

using Ids = std::vector<int32_t>;

struct TokenizedCorpus {
  std::vector<std::string> vocab{""};  // token id -> token (id 0 is unused)
  std::vector<Ids> sentences;          // the distinct input strings, tokenized
  std::vector<int> hyp;                // sentence index of each hypothesis
  std::vector<std::vector<int>> refs;  // sentence indices of each segment's references
};

TokenizedCorpus tokenize_corpus(const Corpus& hyps, const References& refs,
                                std::vector<std::string> (*tokenize)(const std::string&));

// An n-gram of at most 5 token ids (< 2^21 each), packed into 128 bits; unused slots are 0, so
// n-grams of different orders never collide.
struct NgramKey {
  uint64_t lo = 0, hi = 0;
  bool operator==(const NgramKey& o) const { return lo == o.lo && hi == o.hi; }
  bool operator<(const NgramKey& o) const { return hi != o.hi ? hi < o.hi : lo < o.lo; }
};
struct NgramKeyHash {
  size_t operator()(const NgramKey& k) const {
    uint64_t h = k.lo * 0x9E3779B97F4A7C15ull ^ (k.hi + 0x632BE59BD9B4E019ull) * 0xC2B2AE3D27D4EB4Full;
    return static_cast<size_t>(h ^ (h >> 29));
  }
};
using KeyMap = std::unordered_map<NgramKey, double, NgramKeyHash>;

inline void set_slot(NgramKey& k, int slot, uint64_t id) {
  if (slot < 3)
    k.lo |= id << (21 * slot);
  else
    k.hi |= id << (21 * (slot - 3));
}
inline NgramKey ngram_key(const int32_t* ids, int n) {
  NgramKey k;
  for (int s = 0; s < n; ++s) set_slot(k, s, static_cast<uint64_t>(ids[s]));
  return k;
}
// The n-gram without its last token (n >= 2).
inline NgramKey prefix_key(NgramKey k, int n) {
  const uint64_t mask = (1ull << 21) - 1;
  if (n - 1 < 3)
    k.lo &= ~(mask << (21 * (n - 1)));
  else
    k.hi &= ~(mask << (21 * (n - 4)));
  return k;
}

// The n-grams of one order with their counts, sorted by key.
using Counts = std::vector<std::pair<NgramKey, int>>;
inline Counts ngram_counts(const Ids& ids, int n) {
  std::vector<NgramKey> keys;
  for (size_t i = 0; i + static_cast<size_t>(n) <= ids.size(); ++i) keys.push_back(ngram_key(&ids[i], n));
  std::sort(keys.begin(), keys.end());
  Counts out;
  for (const auto& k : keys) {
    if (!out.empty() && out.back().first == k)
      ++out.back().second;
    else
      out.emplace_back(k, 1);
  }
  return out;
}

// BLEU and NIST on an mteval-tokenized corpus with the n-gram counts (orders 1..5) of its sentences.
struct MtevalCorpus {
  TokenizedCorpus c;
  std::vector<std::vector<Counts>> counts;  // [sentence][n - 1]
};
MtevalCorpus mteval_corpus(const Corpus& hyps, const References& refs);
double bleu_tokenized(const MtevalCorpus& m);
double nist_tokenized(const MtevalCorpus& m);

// METEOR's view of a corpus: meteor_normalize of every distinct sentence, as ids of normalized
// words, and per word id its stem id (Snowball) and whether it is one of Meteor's function words.
struct MeteorWords {
  std::vector<int> stem;
  std::vector<char> function;
};
std::vector<Ids> normalize_sentences(const TokenizedCorpus& c, MeteorWords& words);
bool meteor_function_word(const std::string& w);

// pycocoevalcap's scorers on a coco-tokenized corpus (e2e_metrics tokenizes once for all three).
double rouge_l_tokenized(const TokenizedCorpus& c, std::vector<double>* segments);
double cider_tokenized(const TokenizedCorpus& c, std::vector<double>* segments);
double meteor_tokenized(const TokenizedCorpus& c);

inline void check_corpus(const Corpus& hyps, const References& refs, const char* what) {
  LR_CHECK(hyps.size() == refs.size(), what, ": ", hyps.size(), " hypotheses but ", refs.size(), " reference lists");
  for (size_t i = 0; i < refs.size(); ++i) LR_CHECK(!refs[i].empty(), what, ": segment ", i, " has no reference");
}

}  // namespace lowrank::data::metrics_detail
