#pragma once
// Generated ids -> text, for generate: stop strings and streaming.
//
// BPE ids are byte strings (data/bpe.h: decode concatenates them), so the completion grows by whole
// tokens but not by whole characters: a multi-byte UTF-8 character can be split across two tokens.
// Streaming therefore shows only complete characters and holds back an incomplete tail. It also holds
// back any tail that could be the start of a stop string, so that a stop string that completes with a
// later token was never shown: what was printed is always a prefix of the final completion.
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "data/tokenizer.h"

namespace lowrank::examples {

// The length of s's longest prefix that does not end inside a UTF-8 character: a lead byte whose
// continuation bytes have not all arrived yet is held back (invalid bytes pass, they never complete).
inline size_t utf8_complete_prefix(const std::string& s) {
  const size_t n = s.size();
  for (size_t back = 1; back <= 4 && back <= n; ++back) {
    const auto c = static_cast<unsigned char>(s[n - back]);
    if ((c & 0xC0) == 0x80) continue;  // a continuation byte: look further back for its lead
    const size_t need = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
    return back < need ? n - back : n;
  }
  return n;
}

// The longest k < |stop| such that s ends with stop's first k bytes, over all stops.
inline size_t stop_prefix_tail(const std::string& s, const std::vector<std::string>& stops) {
  size_t hold = 0;
  for (const std::string& stop : stops)
    for (size_t k = std::min(stop.size() - 1, s.size()); k > hold; --k)
      if (s.compare(s.size() - k, k, stop, 0, k) == 0) {
        hold = k;
        break;
      }
  return hold;
}

// A completion as it grows token by token. With `out`, every add() prints what became safe to show
// (see above) and flushes, and finish() prints the rest.
class TextStream {
 public:
  TextStream(const data::Tokenizer& tok, std::vector<std::string> stops, std::FILE* out = nullptr)
      : tok_(tok), stops_(std::move(stops)), out_(out) {}

  // Appends id's bytes. Returns false once a stop string has appeared: the text is then cut right
  // before its earliest occurrence, and later ids are ignored.
  bool add(int32_t id) {
    if (stopped_) return false;
    const size_t old = text_.size();
    text_ += tok_.decode({id});
    ++tokens_;
    size_t cut = std::string::npos;
    for (const std::string& stop : stops_) {
      const size_t from = old >= stop.size() ? old - stop.size() + 1 : 0;  // it must end in the new bytes
      cut = std::min(cut, text_.find(stop, from));
    }
    if (cut != std::string::npos) {
      text_.resize(cut);
      stopped_ = true;
      emit(text_.size());
      return false;
    }
    emit(std::min(utf8_complete_prefix(text_), text_.size() - stop_prefix_tail(text_, stops_)));
    return true;
  }

  void finish() { emit(text_.size()); }

  const std::string& text() const { return text_; }
  bool stopped() const { return stopped_; }
  int64_t tokens() const { return tokens_; }  // ids added up to (and including) the one that stopped

 private:
  void emit(size_t upto) {
    if (!out_ || upto <= printed_) return;
    std::fwrite(text_.data() + printed_, 1, upto - printed_, out_);
    std::fflush(out_);
    printed_ = upto;
  }

  const data::Tokenizer& tok_;
  std::vector<std::string> stops_;
  std::FILE* out_;
  std::string text_;
  size_t printed_ = 0;
  int64_t tokens_ = 0;
  bool stopped_ = false;
};

}  // namespace lowrank::examples
