#pragma once
// GPT-2's pre-tokenisation (the regex split that runs before BPE), implemented by hand.
#include <string_view>
#include <vector>

namespace lowrank::data {

// The classes of the pre-tokenisation regex: \p{L}, \p{N}, \s, and everything else. They partition
// the code points (no whitespace character is a letter or a number). Bytes that are not valid UTF-8
// are classed Other.
enum class CharClass : unsigned char { Letter, Number, Space, Other };
CharClass char_class(char32_t cp);

// Splits `text` exactly like GPT-2's encoder.py / HF's slow GPT2Tokenizer, i.e. like
//   regex.findall(r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+", text)
// with the Python `regex` module, on the UTF-8 decoded code points. The pieces are views into
// `text`, in order, and concatenate back to it (invalid UTF-8 bytes become one-byte Other chars).
// Special tokens such as <|endoftext|> are not handled here (see Gpt2Bpe::encode).
std::vector<std::string_view> gpt2_pretokenize(std::string_view text);

}  // namespace lowrank::data
