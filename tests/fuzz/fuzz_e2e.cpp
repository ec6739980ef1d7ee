// Fuzzes the E2E NLG loader (data/e2e.h): data::load_e2e of the input as a train/valid/test file,
// then what training does with what it returns: the real GPT-2 BPE encodes it into an E2EDataset
// and every evaluation batch is built.
//
// load_e2e promises: a line without exactly one "||", with an empty MR or an empty reference (blank
// lines included) is a lowrank::Error naming the file and the 1-based line; whitespace is stripped
// from both ends of a line only. The harness checks those properties of every example it returns,
// and that each batch is (B, T) with T <= max_len and `tokens` = the sum of its loss mask.
#include <memory>
#include <numeric>
#include <string>

#include "data/bpe.h"
#include "data/e2e.h"
#include "fuzz_util.h"

using namespace lowrank;

namespace {

void check_example(const data::E2EExample& ex) {
  const char* ws = " \t\r\n\f\v";
  if (ex.mr.empty() || ex.ref.empty()) fuzz::finding("empty MR or reference accepted");
  if ((ex.mr + "||" + ex.ref).find("||") != ex.mr.size() || ex.ref.find("||") != std::string::npos)
    fuzz::finding("an example whose line has more than one \"||\"");
  if (std::string(ws).find(ex.mr.front()) != std::string::npos ||
      std::string(ws).find(ex.ref.back()) != std::string::npos)
    fuzz::finding("whitespace left at the ends of a line");
}

void check_batches(const data::E2EDataset& ds) {
  const int64_t B = 4;
  for (int64_t i = 0; i < ds.num_eval_batches(B); ++i) {
    const data::E2EBatch b = ds.eval_batch(i, B);
    const size_t cells = static_cast<size_t>(b.B * b.T);
    if (b.T > ds.max_len() || b.inputs.size() != cells || b.targets.size() != cells || b.mask.size() != cells)
      fuzz::finding("an E2E batch of the wrong shape");
    if (std::accumulate(b.mask.begin(), b.mask.end(), 0.0) != static_cast<double>(b.tokens))
      fuzz::finding("an E2E batch whose tokens differ from its mask");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const data::Gpt2Bpe bpe = data::Gpt2Bpe::from_dir(std::string(LOWRANK_SOURCE_DIR) + "/data/assets/gpt2-bpe");
  const std::string path = fuzz::write_file("e2e.txt", fuzz::as_view(data, size));
  std::vector<data::E2EExample> examples;
  if (!fuzz::loads([&] { examples = data::load_e2e(path); })) return 0;
  for (const data::E2EExample& ex : examples) check_example(ex);
  data::group_by_mr(examples);
  const int64_t max_len = 4 + static_cast<int64_t>(size % 61);  // short ones cut references, as training does
  std::unique_ptr<data::E2EDataset> ds;
  // A context longer than max_len leaves no completion token: the dataset refuses it (an Error).
  if (fuzz::loads([&] { ds = std::make_unique<data::E2EDataset>(examples, bpe, max_len); })) check_batches(*ds);
  return 0;
}
