// meteor_normalize: Meteor 1.5's "-norm" line normalization for English (edu.cmu.meteor.util.
// Normalizer, a Moses-tokenizer derivative; Denkowski & Lavie 2014) followed by lowercasing and
// the aligner's whitespace split. pycocoevalcap runs it on text that PTB tokenization has already
// lowercased and stripped of most punctuation, so what mostly matters for E2E is: symbols are
// split off, "family-friendly" becomes "family friendly", and "'s" / "n't" become "' s" / "n 't".
// Also here: the corpus-wide word tables METEOR aligns with (stems, function words).
#include <cstring>
#include <unordered_map>
#include <unordered_set>

#include "data/metrics.h"
#include "data/metrics_internal.h"

namespace lowrank::data {

using namespace metrics_detail;

namespace {

using W = std::u32string;

// Meteor's letter class A-Za-zŠŽšžŸÀ-ÖØ-öø-ž, and the same with digits.
bool m_alpha(char32_t c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == 0x160 || c == 0x17D || c == 0x161 || c == 0x17E ||
         c == 0x178 || (c >= 0xC0 && c <= 0xD6) || (c >= 0xD8 && c <= 0xF6) || (c >= 0xF8 && c <= 0x17E);
}
bool m_digit(char32_t c) { return c >= '0' && c <= '9'; }
bool m_alnum(char32_t c) { return m_alpha(c) || m_digit(c); }
bool m_space(char32_t c) { return c == ' ' || c == '\t' || c == '\n' || c == 0x0B || c == '\f' || c == '\r'; }

// Java's Pattern "(A)x(B)" replaceAll("$1<mid>$2") where A and B are one-character classes:
// leftmost, non-overlapping matches.
template <typename A, typename B>
W sub3(const W& s, A a, char32_t x, B b, const W& mid) {
  W out;
  size_t i = 0;
  while (i < s.size()) {
    if (i + 2 < s.size() && s[i + 1] == x && a(s[i]) && b(s[i + 2])) {
      out += s[i];
      out += mid;
      out += s[i + 2];
      i += 3;
    } else {
      out += s[i++];
    }
  }
  return out;
}

W replace_all(const W& s, const W& from, const W& to) {
  W out;
  for (size_t i = 0; i < s.size();) {
    if (s.compare(i, from.size(), from) == 0) {
      out += to;
      i += from.size();
    } else {
      out += s[i++];
    }
  }
  return out;
}

// Separates symbols (anything but letters, digits, whitespace and . ' ` , - ‘ ’) and runs of two
// or more periods (Meteor's DOTMULTI escaping has that effect).
W separate_symbols(const W& s) {
  W out;
  for (size_t i = 0; i < s.size(); ++i) {
    char32_t c = s[i];
    if (c == '.' && i + 1 < s.size() && s[i + 1] == '.') {
      size_t j = i;
      while (j < s.size() && s[j] == '.') ++j;
      out += U' ' + s.substr(i, j - i) + U' ';
      i = j - 1;
    } else if (!m_alnum(c) && !m_space(c) && std::u32string(U".'`,-\u2018\u2019").find(c) == W::npos) {
      out += U' ';
      out += c;
      out += U' ';
    } else {
      out += c;
    }
  }
  return out;
}

// Moses' nonbreaking prefixes for English (Meteor's nonbreaking/english.prefixes): 1 = always,
// 2 = only before a number.
int nonbreaking(const std::string& w) {
  static const char* const any =
      " A B C D E F G H I J K L M N O P Q R S T U V W X Y Z Adj Adm Adv Asst Bart Bldg Brig Bros Capt Cmdr"
      " Col Comdr Con Corp Cpl DR Dr Drs Ens Gen Gov Hon Hr Hosp Insp Lt MM MR MRS MS Maj Messrs Mlle Mme"
      " Mr Mrs Ms Msgr Op Ord Pfc Ph Prof Pvt Rep Reps Res Rev Rt Sen Sens Sfc Sgt Sr St Supt Surg v vs"
      " i.e rev e.g Nos Nr ";
  if (std::strstr(any, (" " + w + " ").c_str())) return 1;
  return (w == "No" || w == "Art" || w == "pp") ? 2 : 0;
}

// Splits a word-final period unless the word is dotted (U.S. -> US), a nonbreaking prefix, or is
// followed by a lower-case word (or, for numeric-only prefixes, by a number).
Tokens split_final_periods(const Tokens& words) {
  Tokens out;
  for (size_t i = 0; i < words.size(); ++i) {
    const std::string& w = words[i];
    bool all_dots = w.find_first_not_of('.') == std::string::npos;
    if (w.size() < 2 || w.back() != '.' || all_dots) {
      out.push_back(w);
      continue;
    }
    std::string pre = w.substr(0, w.size() - 1), next = i + 1 < words.size() ? words[i + 1] : "";
    bool has_alpha = false;
    for (char32_t c : utf8_to_u32(pre)) has_alpha = has_alpha || m_alpha(c);
    if (pre.find('.') != std::string::npos && has_alpha) {
      std::string undotted;
      for (char c : w)
        if (c != '.') undotted += c;
      out.push_back(undotted);
    } else if (nonbreaking(pre) == 1 || (!next.empty() && next[0] >= 'a' && next[0] <= 'z') ||
               (nonbreaking(pre) == 2 && !next.empty() && is_digit(next[0]))) {
      out.push_back(w);
    } else {
      out.push_back(pre);
      out.push_back(".");
    }
  }
  return out;
}

}  // namespace

std::vector<std::string> meteor_normalize(const std::string& text) {
  auto not_digit = [](char32_t c) { return !m_digit(c); };
  auto not_alpha = [](char32_t c) { return !m_alpha(c); };
  auto alnum_dot = [](char32_t c) { return m_alnum(c) || c == '.'; };
  W s = separate_symbols(U" " + utf8_to_u32(text) + U" ");
  s = sub3(s, not_digit, U',', not_digit, U" , ");  // commas, except inside numbers
  s = sub3(s, m_digit, U',', not_digit, U" , ");
  s = sub3(s, not_digit, U',', m_digit, U" , ");
  for (char32_t q : {U'`', U'\u2018', U'\u2019'}) s = replace_all(s, W(1, q), U"'");
  for (const W& q : {W(U"\u201C"), W(U"\u201D"), W(U"''")}) s = replace_all(s, q, U" \" ");
  s = replace_all(replace_all(s, U"\u2013", U"-"), U"--", U"-");
  s = sub3(s, alnum_dot, U'-', m_alnum, U" ");  // dashes between words: partial credit
  // English clitics split to the right: "don't" -> "don 't", " 's" -> " ' s".
  s = sub3(s, not_alpha, U'\'', not_alpha, U" ' ");
  s = sub3(
      s, [](char32_t c) { return !m_alpha(c) && !m_digit(c); }, U'\'', m_alpha, U" ' ");
  s = sub3(s, m_alpha, U'\'', not_alpha, U" ' ");
  s = sub3(s, m_alpha, U'\'', m_alpha, U" '");
  s = sub3(
      s, m_digit, U'\'', [](char32_t c) { return c == 's'; }, U" '");
  Tokens words = split_final_periods(split_ws(u32_to_utf8(s)));
  for (auto& w : words) w = lowercase(w);
  return words;
}

// Meteor 1.5's function/english.words.
bool metrics_detail::meteor_function_word(const std::string& w) {
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

std::vector<Ids> metrics_detail::normalize_sentences(const TokenizedCorpus& c, MeteorWords& words) {
  std::unordered_map<std::string, int> word_id, stem_id;
  std::vector<Ids> out;
  for (const Ids& sentence : c.sentences) {
    std::string text;
    for (int32_t t : sentence) text += (text.empty() ? "" : " ") + c.vocab[static_cast<size_t>(t)];
    Ids ids;
    for (const auto& w : meteor_normalize(text)) {
      auto [it, fresh] = word_id.emplace(w, static_cast<int>(words.stem.size()));
      if (fresh) {
        auto st = stem_id.emplace(snowball_english_stem(w), static_cast<int>(stem_id.size())).first;
        words.stem.push_back(st->second);
        words.function.push_back(meteor_function_word(w));
      }
      ids.push_back(it->second);
    }
    out.push_back(std::move(ids));
  }
  return out;
}

}  // namespace lowrank::data
