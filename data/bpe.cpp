// GPT-2 byte-level BPE: encoding with merge ranks and a per-piece cache, and byte-exact decoding.
// Reference: openai/gpt-2 src/encoder.py (Encoder.bpe / encode / decode) and HF GPT2Tokenizer.
#include "data/bpe.h"

#include <functional>
#include <mutex>
#include <queue>
#include <tuple>

#include "data/bpe_pretokenize.h"
#include "tensor/error.h"

namespace lowrank::data {

// Pieces recur constantly in natural text (" the", ","), so their BPE is memoised, like
// encoder.py's self.cache. Bounded: cleared when full, so memory stays flat on huge corpora.
struct Gpt2Bpe::Cache {
  static constexpr size_t kMaxEntries = 1 << 18;
  static constexpr size_t kMaxPieceBytes = 256;  // longer pieces are rare; don't keep them
  std::mutex mutex;
  std::unordered_map<std::string, std::vector<int32_t>> map;
};

Gpt2Bpe::Gpt2Bpe(const std::string& encoder_json_path, const std::string& vocab_bpe_path)
    : cache_(std::make_unique<Cache>()) {
  std::unordered_map<std::string, int32_t> token_ids;
  load_encoder(encoder_json_path, token_ids);
  load_merges(vocab_bpe_path, token_ids);
}

Gpt2Bpe Gpt2Bpe::from_dir(const std::string& dir) { return Gpt2Bpe(dir + "/encoder.json", dir + "/vocab.bpe"); }

Gpt2Bpe::Gpt2Bpe(Gpt2Bpe&&) noexcept = default;
Gpt2Bpe& Gpt2Bpe::operator=(Gpt2Bpe&&) noexcept = default;
Gpt2Bpe::~Gpt2Bpe() = default;

const Gpt2Bpe::Merge* Gpt2Bpe::find_merge(int32_t left, int32_t right) const {
  auto it = merges_.find((static_cast<uint64_t>(left) << 32) | static_cast<uint32_t>(right));
  return it == merges_.end() ? nullptr : &it->second;
}

// encoder.py's bpe(): repeatedly take the lowest-ranked adjacent pair and merge *all* its
// non-overlapping occurrences left to right, until no pair has a rank. Done here with a min-heap of
// candidate pairs ordered by (rank, position), O(n log n) instead of O(n^2): one "round" pops every
// entry of the current rank (leftmost first) before the pairs it creates are queued, which is
// exactly the reference's one-rank-at-a-time pass. Entries made stale by an earlier merge are
// detected by their recorded ids and skipped.
std::vector<int32_t> Gpt2Bpe::bpe_piece(std::string_view piece) const {
  struct Sym {
    int32_t id;  // -1 once merged into its left neighbour
    int32_t prev, next;
  };
  const int32_t n = static_cast<int32_t>(piece.size());
  std::vector<Sym> sym(n);
  for (int32_t i = 0; i < n; ++i) sym[i] = {byte_to_id_[static_cast<uint8_t>(piece[i])], i - 1, i + 1 < n ? i + 1 : -1};

  using Cand = std::tuple<int32_t, int32_t, int32_t, int32_t>;  // rank, left pos, left id, right id
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
  const auto push_pair = [&](int32_t l) {
    if (l < 0 || sym[l].id < 0 || sym[l].next < 0) return;
    if (const Merge* m = find_merge(sym[l].id, sym[sym[l].next].id))
      heap.emplace(m->rank, l, sym[l].id, sym[sym[l].next].id);
  };
  for (int32_t i = 0; i + 1 < n; ++i) push_pair(i);

  std::vector<int32_t> merged_at;
  while (!heap.empty()) {
    const int32_t rank = std::get<0>(heap.top());
    merged_at.clear();
    while (!heap.empty() && std::get<0>(heap.top()) == rank) {
      const auto [r, l, left_id, right_id] = heap.top();
      heap.pop();
      const int32_t rt = sym[l].next;
      if (sym[l].id != left_id || rt < 0 || sym[rt].id != right_id) continue;  // stale
      sym[l].id = find_merge(left_id, right_id)->merged;
      sym[rt].id = -1;
      sym[l].next = sym[rt].next;
      if (sym[l].next >= 0) sym[sym[l].next].prev = l;
      merged_at.push_back(l);
    }
    for (int32_t l : merged_at) {
      push_pair(sym[l].prev);
      push_pair(l);
    }
  }
  std::vector<int32_t> ids;
  for (int32_t i = n > 0 ? 0 : -1; i >= 0; i = sym[i].next) ids.push_back(sym[i].id);
  return ids;
}

void Gpt2Bpe::encode_ordinary(std::string_view text, std::vector<int32_t>& out) const {
  for (std::string_view piece : gpt2_pretokenize(text)) {
    if (piece.size() == 1) {  // a single byte is its own token
      out.push_back(byte_to_id_[static_cast<uint8_t>(piece[0])]);
      continue;
    }
    const bool cacheable = piece.size() <= Cache::kMaxPieceBytes;
    if (cacheable) {
      std::lock_guard<std::mutex> lock(cache_->mutex);
      auto it = cache_->map.find(std::string(piece));
      if (it != cache_->map.end()) {
        out.insert(out.end(), it->second.begin(), it->second.end());
        continue;
      }
    }
    std::vector<int32_t> ids = bpe_piece(piece);
    out.insert(out.end(), ids.begin(), ids.end());
    if (cacheable) {
      std::lock_guard<std::mutex> lock(cache_->mutex);
      if (cache_->map.size() >= Cache::kMaxEntries) cache_->map.clear();
      cache_->map.emplace(std::string(piece), std::move(ids));
    }
  }
}

std::vector<int32_t> Gpt2Bpe::encode(const std::string& text) const {
  // HF's GPT2Tokenizer registers <|endoftext|> as a special token: each literal occurrence becomes
  // id 50256 and the text between occurrences is tokenised independently.
  const std::string_view all(text), eot(kEndOfText);
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 1);
  size_t start = 0;
  for (;;) {
    const size_t pos = all.find(eot, start);
    encode_ordinary(all.substr(start, pos == std::string_view::npos ? std::string_view::npos : pos - start), ids);
    if (pos == std::string_view::npos) break;
    ids.push_back(eos_id_);
    start = pos + eot.size();
  }
  return ids;
}

const std::string& Gpt2Bpe::token_bytes(int32_t id) const {
  LR_CHECK(id >= 0 && id < vocab_size(), "Gpt2Bpe: token id ", id, " out of range [0, ", vocab_size(), ")");
  return id_to_bytes_[id];
}

std::string Gpt2Bpe::decode(const std::vector<int32_t>& ids) const {
  // encoder.py decodes the bytes with errors="replace"; here the raw bytes are returned as they
  // are, so invalid UTF-8 (e.g. half of an emoji) survives and encode→decode is byte-exact.
  std::string out;
  for (int32_t id : ids) out += token_bytes(id);
  return out;
}

}  // namespace lowrank::data
