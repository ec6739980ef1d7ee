// coco_tokenize: the tokenization pycocoevalcap applies before ROUGE-L, CIDEr and METEOR, i.e.
// Stanford CoreNLP 3.4.1's PTBTokenizer (-preserveLines -lowerCase) followed by dropping the tokens
// '' ' `` ` . ? ! , : - -- ... ; (not -LRB- and friends: -lowerCase turns them into "-lrb-", which
// the upper-case list does not catch, so they stay).
// The PTB lexer is a large JFlex grammar; this is the subset that matters for pre-tokenized
// English such as the E2E data: currency (£ -> #), brackets, quotes, clitics (n't 's 're 've 'd 'll
// 'm), hyphens and dashes at word edges, periods (kept on abbreviations and inside numbers or
// dotted words), commas and colons outside numbers. It reproduces the Java tokenizer on 51,425 of
// the 51,426 E2E references (train + valid + test; the other ends in "25 L.", which the Java lexer
// splits or not depending on earlier lines); unusual text (symbols glued inside words) can differ.
#include <cstring>

#include "data/metrics.h"
#include "data/metrics_internal.h"

namespace lowrank::data {

using namespace metrics_detail;

namespace {

// Characters (ASCII or UTF-8 sequences) that are always a token of their own, with PTB's spelling.
const char* standalone(const std::string& s, size_t i, size_t* len) {
  static const std::pair<const char*, const char*> table[] = {{"(", "-lrb-"},
                                                              {")", "-rrb-"},
                                                              {"[", "-lsb-"},
                                                              {"]", "-rsb-"},
                                                              {"{", "-lcb-"},
                                                              {"}", "-rcb-"},
                                                              {"\"", "''"},
                                                              {";", ";"},
                                                              {"&", "&"},
                                                              {"*", "*"},
                                                              {"=", "="},
                                                              {"~", "~"},
                                                              {"^", "^"},
                                                              {"|", "|"},
                                                              {"\\", "\\"},
                                                              {"+", "+"},
                                                              {"%", "%"},
                                                              {"$", "$"},
                                                              {"\xC2\xA3", "#"},
                                                              {"\xE2\x82\xAC", "$"},
                                                              {"\xC2\xA2", "cents"},  // £ € ¢
                                                              {"\xE2\x80\x93", "--"},
                                                              {"\xE2\x80\x94", "--"},
                                                              {"\xE2\x80\xA6", "..."},  // – — …
                                                              {"\xE2\x80\x9C", "``"},
                                                              {"\xE2\x80\x9D", "''"},
                                                              {"\xE2\x80\x98", "`"},   // “ ” ‘
                                                              {"\xE2\x80\x99", "'"}};  // ’
  for (const auto& [from, to] : table) {
    size_t n = std::strlen(from);
    if (s.compare(i, n, from) == 0) {
      *len = n;
      return to;
    }
  }
  return nullptr;
}

bool is_clitic(const std::string& lower) {
  return lower == "'s" || lower == "'re" || lower == "'ve" || lower == "'d" || lower == "'ll" || lower == "'m";
}

// A trailing period that PTB keeps: dotted words (a.m., u.s.), common abbreviations and initials.
bool keeps_period(const std::string& core) {
  std::string lower = lowercase(core);
  static const char* const abbrevs[] = {"mr",  "mrs", "ms",  "dr",   "st",   "jr",  "sr", "prof", "etc",
                                        "inc", "ltd", "co",  "corp", "vs",   "mt",  "ft", "gen",  "gov",
                                        "sen", "rep", "rev", "hon",  "capt", "col", "lt", "sgt",  "ave",
                                        "jan", "feb", "aug", "sept", "oct",  "nov", "dec"};
  for (const char* a : abbrevs)
    if (lower == a) return true;
  bool has_alpha = false;
  for (char c : core) has_alpha = has_alpha || is_alpha(c);
  if (has_alpha && core.find('.') != std::string::npos) return true;
  return core.size() == 1 && is_alpha(core[0]);
}

void emit(Tokens& out, const std::string& t) {
  if (!t.empty()) out.push_back(t);
}

// The middle of a word once its edges are peeled: "--", periods between a digit and a letter,
// commas and colons outside numbers, clitics and "cannot".
void split_core(const std::string& w, Tokens& out) {
  for (size_t i = 0; i + 1 < w.size(); ++i) {
    char a = i > 0 ? w[i - 1] : ' ', c = w[i], b = w[i + 1];
    if (c == '-' && b == '-') {
      split_core(w.substr(0, i), out);
      out.push_back("--");
      return split_core(w.substr(i + 2), out);
    }
    bool around_digits = is_digit(a) && is_digit(b);
    if (i > 0 && ((c == '.' && is_digit(a) && is_alpha(b)) || ((c == ',' || c == ':') && !around_digits))) {
      split_core(w.substr(0, i), out);
      out.push_back(std::string(1, c));
      return split_core(w.substr(i + 1), out);
    }
    if (i > 0 && c == '.' && is_alpha(a) && is_digit(b)) {  // rouge.6 -> rouge .6
      split_core(w.substr(0, i), out);
      return split_core(w.substr(i), out);
    }
  }
  std::string lower = lowercase(w);
  for (const char* clitic : {"n't", "'s", "'re", "'ve", "'d", "'ll", "'m"}) {
    size_t n = std::strlen(clitic);
    if (lower.size() > n && lower.compare(lower.size() - n, n, clitic) == 0) {
      emit(out, w.substr(0, w.size() - n));
      out.push_back(w.substr(w.size() - n));
      return;
    }
  }
  for (const char* joined : {"cannot", "gonna", "gotta", "wanna"}) {  // PTB splits these in two
    if (lower == joined) {
      out.push_back(w.substr(0, 3));
      out.push_back(w.substr(3));
      return;
    }
  }
  emit(out, w);
}

// Leading punctuation of a word: dashes, quotes, periods (".6" stays a number), and , : ! ? /.
size_t peel_front(const std::string& w, Tokens& out) {
  size_t i = 0;
  while (i < w.size()) {
    char c = w[i], next = i + 1 < w.size() ? w[i + 1] : '\0';
    if (c == '-' && next == '-') {
      out.push_back("--");
      i += 2;
    } else if (c == '-' && !is_digit(next)) {
      out.push_back("-");
      ++i;
    } else if (c == '\'' && !is_clitic(lowercase(w.substr(i)))) {
      out.push_back("`");
      ++i;
    } else if (c == '.') {
      size_t k = w.find_first_not_of('.', i) == std::string::npos ? w.size() - i : w.find_first_not_of('.', i) - i;
      if (k == 1 && is_digit(next)) break;
      if (k >= 3)
        out.push_back("...");
      else
        out.insert(out.end(), k, ".");
      i += k;
    } else if (c == '`' || c == ',' || c == ':' || c == '!' || c == '?' || c == '/') {
      out.push_back(std::string(1, c));
      ++i;
    } else {
      break;
    }
  }
  return i;
}

// Splits one whitespace-free chunk (no standalone characters) into PTB tokens.
void split_chunk(const std::string& w, Tokens& out) {
  size_t begin = peel_front(w, out), end = w.size();
  Tokens tail;  // trailing punctuation, innermost last
  while (end > begin) {
    char c = w[end - 1];
    if (c == '.') {
      size_t k = 0;
      while (end - k > begin && w[end - k - 1] == '.') ++k;
      if (k == 1 && end - 1 > begin && keeps_period(w.substr(begin, end - 1 - begin))) break;
      if (k >= 3)
        tail.push_back("...");
      else
        tail.insert(tail.end(), k, ".");
      end -= k;
    } else if (c == '-' || c == '\'' || c == ',' || c == ':' || c == '!' || c == '?' || c == '/' || c == '`') {
      if (c == '\'' && is_clitic(lowercase(w.substr(begin, end - begin)))) break;
      bool dash2 = c == '-' && end - begin >= 2 && w[end - 2] == '-';
      tail.push_back(dash2 ? "--" : std::string(1, c));
      end -= dash2 ? 2 : 1;
    } else {
      break;
    }
  }
  split_core(w.substr(begin, end - begin), out);
  out.insert(out.end(), tail.rbegin(), tail.rend());
}

bool dropped(const std::string& t) {
  static const char* const punct[] = {"''", "'", "``", "`", ".", "?", "!", ",", ":", "-", "--", "...", ";"};
  for (const char* p : punct)
    if (t == p) return true;
  return false;
}

}  // namespace

std::vector<std::string> coco_tokenize(const std::string& text) {
  Tokens words = split_ws(text), raw;
  for (const std::string& w : words) {
    std::string chunk;
    for (size_t i = 0; i < w.size();) {
      size_t len = 0;
      if (const char* tok = standalone(w, i, &len)) {
        split_chunk(chunk, raw);
        chunk.clear();
        raw.push_back(tok);
        i += len;
      } else {
        chunk += w[i++];
      }
    }
    split_chunk(chunk, raw);
  }
  Tokens out;
  for (const auto& t : raw)
    if (!dropped(t)) out.push_back(lowercase(t));
  return out;
}

}  // namespace lowrank::data
