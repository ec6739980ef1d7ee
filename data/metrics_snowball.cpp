// The Snowball English stemmer ("Porter2", M. Porter, snowball.tartarus.org/algorithms/english),
// the stemmer of METEOR 1.5's stem module (org.tartarus.snowball.ext.englishStemmer). Works on
// code points, as the Java version works on chars; letters outside a-z are non-vowels.
#include <string>

#include "data/metrics.h"
#include "data/metrics_internal.h"

namespace lowrank::data {

using metrics_detail::u32_to_utf8;
using metrics_detail::utf8_to_u32;

namespace {

using W = std::u32string;

bool vowel(char32_t c) { return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u' || c == 'y'; }

struct Stem {
  W w;
  size_t p1 = 0, p2 = 0;  // R1 = w[p1..], R2 = w[p2..]

  bool ends(const char* s) const {
    size_t n = std::char_traits<char>::length(s);
    if (n > w.size()) return false;
    for (size_t i = 0; i < n; ++i)
      if (w[w.size() - n + i] != static_cast<char32_t>(s[i])) return false;
    return true;
  }
  // The longest of the suffixes that ends the word (nullptr if none): Snowball's `substring`.
  const char* longest(std::initializer_list<const char*> list) const {
    const char* best = nullptr;
    for (const char* s : list)
      if (ends(s) && (!best || std::char_traits<char>::length(s) > std::char_traits<char>::length(best))) best = s;
    return best;
  }
  size_t start(const char* suffix) const { return w.size() - std::char_traits<char>::length(suffix); }
  void replace(const char* suffix, const char* by) {
    w.resize(start(suffix));
    for (const char* p = by; *p; ++p) w += static_cast<char32_t>(*p);
  }
  bool has_vowel(size_t from, size_t to) const {
    for (size_t i = from; i < to; ++i)
      if (vowel(w[i])) return true;
    return false;
  }
  // Short syllable ending at position end (exclusive): non-vowel (not w, x, Y) after a vowel after
  // a non-vowel, or a vowel then a non-vowel at the start of the word.
  bool short_syllable(size_t end) const {
    if (end >= 3 && !vowel(w[end - 1]) && w[end - 1] != 'w' && w[end - 1] != 'x' && w[end - 1] != 'Y' &&
        vowel(w[end - 2]) && !vowel(w[end - 3]))
      return true;
    return end == 2 && vowel(w[0]) && !vowel(w[1]);
  }

  void mark_regions() {
    p1 = p2 = w.size();
    size_t i = 0;
    for (const char* pre : {"gener", "commun", "arsen"}) {
      W p(pre, pre + std::char_traits<char>::length(pre));
      if (w.compare(0, p.size(), p) == 0) i = p.size();
    }
    auto past_vowel_consonant = [&](size_t j) {
      while (j < w.size() && !vowel(w[j])) ++j;
      while (j < w.size() && vowel(w[j])) ++j;
      return j < w.size() ? j + 1 : std::u32string::npos;
    };
    if (i == 0) i = past_vowel_consonant(0);
    if (i == std::u32string::npos) return;
    p1 = i;
    size_t j = past_vowel_consonant(p1);
    if (j != std::u32string::npos) p2 = j;
  }

  void step1a() {
    if (const char* s = longest({"'", "'s", "'s'"})) w.resize(start(s));
    const char* s = longest({"sses", "ied", "ies", "s", "us", "ss"});
    if (!s) return;
    std::string suf(s);
    if (suf == "sses")
      replace(s, "ss");
    else if (suf == "ied" || suf == "ies")
      replace(s, start(s) > 1 ? "i" : "ie");
    else if (suf == "s" && w.size() >= 2 && has_vowel(0, w.size() - 2))
      w.pop_back();
  }

  void step1b() {
    const char* s = longest({"eed", "eedly", "ed", "edly", "ing", "ingly"});
    if (!s) return;
    std::string suf(s);
    if (suf == "eed" || suf == "eedly") {
      if (start(s) >= p1) replace(s, "ee");
      return;
    }
    if (!has_vowel(0, start(s))) return;
    w.resize(start(s));
    if (ends("at") || ends("bl") || ends("iz")) {
      w += U'e';
    } else if (longest({"bb", "dd", "ff", "gg", "mm", "nn", "pp", "rr", "tt"})) {
      w.pop_back();
    } else if (w.size() == p1 && short_syllable(w.size())) {
      w += U'e';
    }
  }

  void step1c() {
    size_t n = w.size();
    if (n >= 3 && (w[n - 1] == 'y' || w[n - 1] == 'Y') && !vowel(w[n - 2])) w[n - 1] = 'i';
  }

  void step2() {
    const char* s = longest({"tional",  "enci",  "anci",   "abli",  "entli", "izer",    "ization", "ational",
                             "ation",   "ator",  "alism",  "aliti", "alli",  "fulness", "ousli",   "ousness",
                             "iveness", "iviti", "biliti", "bli",   "ogi",   "fulli",   "lessli",  "li"});
    if (!s || start(s) < p1) return;
    static const std::pair<const char*, const char*> map[] = {
        {"tional", "tion"}, {"enci", "ence"},   {"anci", "ance"},   {"abli", "able"},   {"entli", "ent"},
        {"izer", "ize"},    {"ization", "ize"}, {"ational", "ate"}, {"ation", "ate"},   {"ator", "ate"},
        {"alism", "al"},    {"aliti", "al"},    {"alli", "al"},     {"fulness", "ful"}, {"ousli", "ous"},
        {"ousness", "ous"}, {"iveness", "ive"}, {"iviti", "ive"},   {"biliti", "ble"},  {"bli", "ble"},
        {"fulli", "ful"},   {"lessli", "less"}};
    std::string suf(s);
    for (const auto& [from, to] : map)
      if (suf == from) return replace(s, to);
    size_t b = start(s);
    if (suf == "ogi" && b > 0 && w[b - 1] == 'l') replace(s, "og");
    if (suf == "li" && b > 0 && std::u32string(U"cdeghkmnrt").find(w[b - 1]) != std::u32string::npos) w.resize(b);
  }

  void step3() {
    const char* s = longest({"tional", "ational", "alize", "icate", "iciti", "ical", "ful", "ness", "ative"});
    if (!s || start(s) < p1) return;
    std::string suf(s);
    if (suf == "tional")
      replace(s, "tion");
    else if (suf == "ational")
      replace(s, "ate");
    else if (suf == "alize")
      replace(s, "al");
    else if (suf == "icate" || suf == "iciti" || suf == "ical")
      replace(s, "ic");
    else if (suf == "ful" || suf == "ness")
      replace(s, "");
    else if (start(s) >= p2)
      replace(s, "");  // ative, in R2
  }

  void step4() {
    const char* s = longest({"al", "ance", "ence", "er", "ic", "able", "ible", "ant", "ement", "ment", "ent", "ism",
                             "ate", "iti", "ous", "ive", "ize", "ion"});
    if (!s || start(s) < p2) return;
    size_t b = start(s);
    if (std::string(s) != "ion" || (b > 0 && (w[b - 1] == 's' || w[b - 1] == 't'))) w.resize(b);
  }

  void step5() {
    size_t n = w.size();
    if (ends("e") && (n - 1 >= p2 || (n - 1 >= p1 && !short_syllable(n - 1))))
      w.pop_back();
    else if (ends("l") && n - 1 >= p2 && n >= 2 && w[n - 2] == 'l')
      w.pop_back();
  }
};

}  // namespace

std::string snowball_english_stem(const std::string& word) {
  static const std::pair<const char*, const char*> exceptions[] = {
      {"skis", "ski"},      {"skies", "sky"},    {"dying", "die"},  {"lying", "lie"},   {"tying", "tie"},
      {"idly", "idl"},      {"gently", "gentl"}, {"ugly", "ugli"},  {"early", "earli"}, {"only", "onli"},
      {"singly", "singl"},  {"sky", "sky"},      {"news", "news"},  {"howe", "howe"},   {"atlas", "atlas"},
      {"cosmos", "cosmos"}, {"bias", "bias"},    {"andes", "andes"}};
  for (const auto& [from, to] : exceptions)
    if (word == from) return to;
  Stem s{utf8_to_u32(word)};
  if (s.w.size() < 3) return word;
  if (s.w[0] == '\'') s.w.erase(0, 1);
  for (size_t i = 0; i < s.w.size(); ++i)
    if (s.w[i] == 'y' && (i == 0 || vowel(s.w[i - 1]))) s.w[i] = 'Y';
  s.mark_regions();
  s.step1a();
  static const char* const invariant[] = {"inning",  "outing",  "canning", "herring",
                                          "earring", "proceed", "exceed",  "succeed"};
  bool stop = false;
  for (const char* inv : invariant) stop = stop || s.w == W(inv, inv + std::char_traits<char>::length(inv));
  if (!stop) {
    s.step1b();
    s.step1c();
    s.step2();
    s.step3();
    s.step4();
    s.step5();
  }
  for (auto& c : s.w)
    if (c == 'Y') c = 'y';
  return u32_to_utf8(s.w);
}

}  // namespace lowrank::data
