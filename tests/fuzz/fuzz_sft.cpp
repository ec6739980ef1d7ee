// Fuzzes finetune's data reader (data/sft.h, data/jsonl.h): data::parse_sft of the input as a .jsonl
// file (or a .txt file, by the input's first byte), then what training does with the examples: the
// real GPT-2 BPE encodes them into an SftDataset and every evaluation batch is built.
//
// The reader promises: a malformed line, a missing or non-string field, an empty prompt, completion or
// text, a record in none of the formats, a malformed message list and an empty file are each a
// lowrank::Error naming the file; what it accepts has at least one segment per example and a trained
// one among them. The dataset refuses (an Error) an example with no trained target inside max_len, and
// its batches are (B, T) with T <= max_len and `tokens` = the sum of the loss mask.
#include <memory>
#include <numeric>
#include <string>

#include "data/bpe.h"
#include "data/sft.h"
#include "fuzz_util.h"

using namespace lowrank;

namespace {

void check_examples(const data::SftFile& f) {
  if (f.format == data::SftFormat::Auto) fuzz::finding("parse_sft returned the format 'auto'");
  for (const data::SftExample& e : f.examples) {
    bool trained = false;
    for (const data::SftSegment& s : e.segments) trained = trained || s.trained;
    if (!trained) fuzz::finding("an example without a trained segment accepted");
  }
}

void check_batches(const data::SftDataset& ds) {
  const int64_t B = 3;
  for (int64_t i = 0; i < ds.num_eval_batches(B); ++i) {
    const data::SftBatch b = ds.eval_batch(i, B);
    const size_t cells = static_cast<size_t>(b.B * b.T);
    if (b.T > ds.max_len() || b.inputs.size() != cells || b.targets.size() != cells || b.mask.size() != cells)
      fuzz::finding("an SFT batch of the wrong shape");
    if (std::accumulate(b.mask.begin(), b.mask.end(), 0.0) != static_cast<double>(b.tokens))
      fuzz::finding("an SFT batch whose tokens differ from its mask");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const data::Gpt2Bpe bpe = data::Gpt2Bpe::from_dir(std::string(LOWRANK_SOURCE_DIR) + "/data/assets/gpt2-bpe");
  if (size == 0) return 0;
  const std::string name = data[0] % 4 == 0 ? "d.txt" : "d.jsonl";
  const std::string bytes(fuzz::as_view(data + 1, size - 1));
  data::SftFile f;
  if (!fuzz::loads([&] { f = data::parse_sft(bytes, name); })) return 0;
  check_examples(f);
  const int64_t max_len = 2 + static_cast<int64_t>(size % 47);  // short windows cut examples, as training does
  std::unique_ptr<data::SftDataset> ds;
  if (fuzz::loads([&] { ds = std::make_unique<data::SftDataset>(f.examples, bpe, max_len, bpe.eos_id()); }))
    check_batches(*ds);
  return 0;
}
