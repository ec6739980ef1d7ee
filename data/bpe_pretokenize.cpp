// GPT-2's pre-tokenisation regex (openai/gpt-2 src/encoder.py, also HF GPT2Tokenizer):
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// re-implemented as a scanner, because std::regex has no \p{..} classes and is slow. findall()
// tries the alternatives in order at the position where the previous match ended and takes the
// first that matches; every alternative consumes at least one character, so each position yields
// exactly one piece. The class tables come from the `regex` module itself (data/unicode_tables.h).
#include "data/bpe_pretokenize.h"

#include <algorithm>
#include <array>
#include <iterator>

#include "data/unicode_tables.h"
#include "data/utf8.h"

namespace lowrank::data {
namespace {

template <size_t N>
bool in_table(const unicode::CodePointRange (&table)[N], char32_t cp) {
  // First range whose upper end is >= cp; cp is in the table iff that range starts at or below it.
  const auto* it = std::lower_bound(std::begin(table), std::end(table), cp,
                                    [](const unicode::CodePointRange& r, char32_t c) { return r.hi < c; });
  return it != std::end(table) && it->lo <= cp;
}

CharClass classify_slow(char32_t cp) {
  if (cp == utf8::kInvalid) return CharClass::Other;
  if (in_table(unicode::kLetter, cp)) return CharClass::Letter;
  if (in_table(unicode::kNumber, cp)) return CharClass::Number;
  if (in_table(unicode::kWhitespace, cp)) return CharClass::Space;
  return CharClass::Other;
}

// A code point sequence with the byte offset of each code point (off has n + 1 entries).
struct Decoded {
  std::vector<char32_t> cp;
  std::vector<CharClass> cls;
  std::vector<size_t> off;
  size_t size() const { return cp.size(); }
};

Decoded decode_text(std::string_view text) {
  Decoded d;
  d.cp.reserve(text.size());
  d.cls.reserve(text.size());
  d.off.reserve(text.size() + 1);
  size_t i = 0;
  while (i < text.size()) {
    size_t len;
    const char32_t cp = utf8::decode(text, i, len);
    d.cp.push_back(cp);
    d.cls.push_back(char_class(cp));
    d.off.push_back(i);
    i += len;
  }
  d.off.push_back(text.size());
  return d;
}

size_t run_end(const Decoded& d, size_t i, CharClass c) {
  while (i < d.size() && d.cls[i] == c) ++i;
  return i;
}

// 's|'t|'re|'ve|'m|'ll|'d : case-sensitive ASCII; returns the end of the match, or 0 for none.
size_t match_contraction(const Decoded& d, size_t i) {
  if (d.cp[i] != U'\'' || i + 1 >= d.size()) return 0;
  const char32_t a = d.cp[i + 1];
  if (a == U's' || a == U't' || a == U'm' || a == U'd') return i + 2;
  if (i + 2 >= d.size()) return 0;
  const char32_t b = d.cp[i + 2];
  if ((a == U'r' && b == U'e') || (a == U'v' && b == U'e') || (a == U'l' && b == U'l')) return i + 3;
  return 0;
}

// The end of the regex match that starts at code point i.
size_t match_at(const Decoded& d, size_t i) {
  if (size_t j = match_contraction(d, i)) return j;
  // ' ?\p{L}+', ' ?\p{N}+', ' ?[^\s\p{L}\p{N}]+': an optional literal U+0020 that is kept only
  // when a non-space run follows it, then a maximal run of one class.
  const size_t k = (d.cp[i] == U' ' && i + 1 < d.size() && d.cls[i + 1] != CharClass::Space) ? i + 1 : i;
  if (d.cls[k] != CharClass::Space) return run_end(d, k, d.cls[k]);
  // '\s+(?!\S)': the greedy run backtracks one char when a non-space follows it, so that the last
  // space goes with the next word (" x" stays one piece). A single space before a non-space fails
  // that rule (\s+ cannot shrink to zero) and is taken whole by the final '\s+'.
  const size_t j = run_end(d, i, CharClass::Space);
  if (j < d.size() && j - i > 1) return j - 1;
  return j;
}

}  // namespace

CharClass char_class(char32_t cp) {
  // ASCII is most of the text: answer it from a table built once from the generated ranges.
  static const std::array<CharClass, 128> ascii = [] {
    std::array<CharClass, 128> t{};
    for (char32_t c = 0; c < 128; ++c) t[c] = classify_slow(c);
    return t;
  }();
  return cp < 128 ? ascii[cp] : classify_slow(cp);
}

std::vector<std::string_view> gpt2_pretokenize(std::string_view text) {
  const Decoded d = decode_text(text);
  std::vector<std::string_view> pieces;
  pieces.reserve(d.size() / 4 + 1);
  size_t i = 0;
  while (i < d.size()) {
    const size_t j = match_at(d, i);
    pieces.push_back(text.substr(d.off[i], d.off[j] - d.off[i]));
    i = j;
  }
  return pieces;
}

}  // namespace lowrank::data
