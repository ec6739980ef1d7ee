// Loading GPT-2's tokenizer files: encoder.json (token string -> id) and vocab.bpe (merge list).
// Token strings are written in GPT-2's byte->unicode alphabet (bytes_to_unicode in encoder.py);
// they are turned back into raw bytes here once, so encoding and decoding work on bytes and ids.
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "data/bpe.h"
#include "data/utf8.h"
#include "tensor/error.h"

namespace lowrank::data {
namespace {

std::string read_file(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  LR_CHECK(in, "Gpt2Bpe: cannot open ", what, " '", path, "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Inverse of gpt2_byte_to_unicode() as a lookup over the 324 code points it can produce.
std::vector<int> unicode_to_byte() {
  std::vector<int> inv(512, -1);
  const auto fwd = gpt2_byte_to_unicode();
  for (int b = 0; b < 256; ++b) inv[fwd[b]] = b;
  return inv;
}

}  // namespace

std::array<char32_t, 256> gpt2_byte_to_unicode() {
  // encoder.py: bs = [!..~] + [¡..¬] + [®..ÿ] keep their own code point; every other byte b, in
  // increasing order, gets 256 + n. This keeps BPE tokens free of control chars and spaces.
  std::array<char32_t, 256> table{};
  char32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    table[b] = printable ? static_cast<char32_t>(b) : next++;
  }
  return table;
}

void Gpt2Bpe::load_encoder(const std::string& path, std::unordered_map<std::string, int32_t>& token_ids) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(path, "encoder file"));
  } catch (const nlohmann::json::exception& e) {
    throw Error(cat("Gpt2Bpe: '", path, "' is not valid JSON: ", e.what()));
  }
  LR_CHECK(j.is_object() && !j.empty(), "Gpt2Bpe: '", path, "' must be a JSON object {token: id}");
  const auto n = static_cast<int64_t>(j.size());
  const std::vector<int> to_byte = unicode_to_byte();
  id_to_bytes_.assign(n, std::string());
  std::vector<bool> seen(n, false);
  for (auto it = j.begin(); it != j.end(); ++it) {
    LR_CHECK(it->is_number_integer(), "Gpt2Bpe: '", path, "': id of token '", it.key(), "' is not an integer");
    const int64_t id = it->get<int64_t>();
    LR_CHECK(id >= 0 && id < n && !seen[id], "Gpt2Bpe: '", path, "': token '", it.key(), "' has id ", id,
             ", ids must be unique and in [0, ", n, ")");
    seen[id] = true;
    token_ids.emplace(it.key(), static_cast<int32_t>(id));
    const std::string& tok = it.key();
    std::string& bytes = id_to_bytes_[id];
    for (size_t i = 0; i < tok.size();) {
      size_t len;
      const char32_t cp = utf8::decode(tok, i, len);
      LR_CHECK(cp < to_byte.size() && to_byte[cp] >= 0, "Gpt2Bpe: '", path, "': token '", tok,
               "' has a character outside GPT-2's byte alphabet");
      bytes += static_cast<char>(to_byte[cp]);
      i += len;
    }
  }
  const auto fwd = gpt2_byte_to_unicode();
  for (int b = 0; b < 256; ++b) {
    auto it = token_ids.find(utf8::encode(fwd[b]));
    LR_CHECK(it != token_ids.end(), "Gpt2Bpe: '", path, "' lacks the single-byte token for byte ", b);
    byte_to_id_[b] = it->second;
  }
  auto eot = token_ids.find(kEndOfText);
  LR_CHECK(eot != token_ids.end(), "Gpt2Bpe: '", path, "' has no ", kEndOfText, " token");
  eos_id_ = eot->second;
}

void Gpt2Bpe::load_merges(const std::string& path, const std::unordered_map<std::string, int32_t>& token_ids) {
  std::istringstream in(read_file(path, "merges file"));
  std::string line;
  int64_t line_no = 0;
  int32_t rank = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    // encoder.py drops the first line ("#version: 0.2") and the empty one after the final newline.
    if (line.empty() || (line_no == 1 && line.rfind("#version", 0) == 0)) continue;
    const size_t sp = line.find(' ');
    LR_CHECK(sp != std::string::npos && sp > 0 && sp + 1 < line.size() && line.find(' ', sp + 1) == std::string::npos,
             "Gpt2Bpe: '", path, "' line ", line_no, ": expected 'left right', got '", line, "'");
    const std::string left = line.substr(0, sp), right = line.substr(sp + 1);
    auto l = token_ids.find(left), r = token_ids.find(right), m = token_ids.find(left + right);
    LR_CHECK(l != token_ids.end() && r != token_ids.end() && m != token_ids.end(), "Gpt2Bpe: '", path, "' line ",
             line_no, ": merge '", line, "' uses a token missing from the encoder");
    // Assigning (not emplacing) keeps the last rank of a repeated rule, like dict(zip(merges, range(n))).
    merges_[(static_cast<uint64_t>(l->second) << 32) | static_cast<uint32_t>(r->second)] = Merge{rank++, m->second};
  }
  LR_CHECK(rank > 0, "Gpt2Bpe: '", path, "' holds no merge rules");
}

}  // namespace lowrank::data
