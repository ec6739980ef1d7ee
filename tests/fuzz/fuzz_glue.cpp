// Fuzzes the GLUE loader (data/glue.h): data::load_glue of the input's bytes after the first as a
// TSV of the task the first byte picks (SST-2, MRPC or RTE), then what fine-tuning does with the
// examples: the real GPT-2 BPE encodes them into a GlueDataset and every evaluation batch is built.
//
// load_glue promises: a missing column, a row with the wrong number of fields, a bad or empty label
// and an empty sentence are each a lowrank::Error naming the file (and the 1-based line for a row).
// So every example it returns has a label in [0, n_classes), a non-empty first sentence and a second
// one exactly when the task is a pair task; every batch row holds 1..max_len tokens. Checked here.
#include <memory>
#include <string>

#include "data/bpe.h"
#include "data/glue.h"
#include "fuzz_util.h"

using namespace lowrank;

namespace {

void check_example(const data::GlueExample& ex, const data::GlueTask& task) {
  if (ex.label < 0 || ex.label >= task.n_classes) fuzz::finding("label " + std::to_string(ex.label) + " accepted");
  if (ex.a.empty() || ex.b.empty() == task.pair) fuzz::finding("an example with a missing or extra sentence");
}

void check_batches(const data::GlueDataset& ds) {
  const int64_t B = 3;
  for (int64_t i = 0; i < ds.num_eval_batches(B); ++i) {
    const data::GlueBatch b = ds.eval_batch(i, B);
    if (b.T > ds.max_len() || b.ids.size() != static_cast<size_t>(b.B * b.T) || b.lengths.size() != size_t(b.B))
      fuzz::finding("a GLUE batch of the wrong shape");
    for (int32_t n : b.lengths)
      if (n < 1 || n > b.T) fuzz::finding("a GLUE batch row of " + std::to_string(n) + " tokens");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const data::Gpt2Bpe bpe = data::Gpt2Bpe::from_dir(std::string(LOWRANK_SOURCE_DIR) + "/data/assets/gpt2-bpe");
  if (size < 1) return 0;
  const std::vector<std::string> names = data::glue_task_names();
  const data::GlueTask& task = data::glue_task(names[data[0] % names.size()]);
  const std::string path = fuzz::write_file("glue.tsv", fuzz::as_view(data + 1, size - 1));
  std::vector<data::GlueExample> examples;
  if (!fuzz::loads([&] { examples = data::load_glue(task.name, path); })) return 0;
  for (const data::GlueExample& ex : examples) check_example(ex, task);
  const int64_t max_len = 3 + (data[0] >> 2) % 40;
  const data::GlueDataset ds(examples, bpe, max_len);
  check_batches(ds);
  return 0;
}
