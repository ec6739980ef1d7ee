#include "data/glue.h"
#include "data/batches.h"

#include <algorithm>
#include <numeric>
#include <sstream>

#include "data/text.h"
#include "tensor/error.h"
#include "tensor/strings.h"

namespace lowrank::data {

namespace {

struct TaskColumns {
  std::string a, b, label;                // header names; b empty for single-sentence tasks
  std::vector<std::string> label_values;  // label text of class 0, 1, ...
};

const std::vector<GlueTask>& tasks() {
  static const std::vector<GlueTask> t = {{"sst2", false, 2, false}, {"mrpc", true, 2, true}, {"rte", true, 2, false}};
  return t;
}

TaskColumns columns_of(const std::string& task) {
  if (task == "sst2") return {"sentence", "", "label", {"0", "1"}};
  if (task == "mrpc") return {"#1 String", "#2 String", "Quality", {"0", "1"}};
  return {"sentence1", "sentence2", "label", {"entailment", "not_entailment"}};
}

std::vector<std::string> split_tabs(const std::string& line) {
  std::vector<std::string> f;
  size_t start = 0;
  for (size_t tab; (tab = line.find('\t', start)) != std::string::npos; start = tab + 1)
    f.push_back(line.substr(start, tab - start));
  f.push_back(line.substr(start));
  return f;
}

size_t column(const std::vector<std::string>& header, const std::string& name, const std::string& path) {
  auto it = std::find(header.begin(), header.end(), name);
  LR_CHECK(it != header.end(), path, ":1: header has no column '", name, "'");
  return static_cast<size_t>(it - header.begin());
}

}  // namespace

std::vector<std::string> glue_task_names() {
  std::vector<std::string> names;
  for (const GlueTask& t : tasks()) names.push_back(t.name);
  return names;
}

const GlueTask& glue_task(const std::string& name) {
  for (const GlueTask& t : tasks())
    if (t.name == name) return t;
  std::string list;
  for (const std::string& n : glue_task_names()) list += (list.empty() ? "" : ", ") + n;
  throw Error(cat("unknown GLUE task '", name, "' (one of ", list, ")"));
}

std::vector<GlueExample> load_glue(const std::string& task, const std::string& path) {
  const GlueTask& t = glue_task(task);
  const TaskColumns cols = columns_of(t.name);
  std::string text = read_file(path);
  if (text.rfind("\xEF\xBB\xBF", 0) == 0) text.erase(0, 3);  // MRPC's UTF-8 BOM
  std::istringstream in(text);
  std::string line;
  LR_CHECK(std::getline(in, line), path, ": empty file (expected a header line)");
  const std::vector<std::string> header = split_tabs(strip(line));
  const size_t ia = column(header, cols.a, path), il = column(header, cols.label, path);
  const size_t ib = t.pair ? column(header, cols.b, path) : 0;
  std::vector<GlueExample> out;
  for (size_t lineno = 2; std::getline(in, line); ++lineno) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const std::vector<std::string> f = split_tabs(line);
    LR_CHECK(f.size() == header.size(), path, ":", lineno, ": ", f.size(), " tab-separated fields, the header has ",
             header.size());
    GlueExample ex{strip(f[ia]), t.pair ? strip(f[ib]) : "", -1};
    const std::string label = strip(f[il]);
    for (size_t k = 0; k < cols.label_values.size(); ++k)
      if (label == cols.label_values[k]) ex.label = static_cast<int32_t>(k);
    LR_CHECK(ex.label >= 0, path, ":", lineno, ": label '", label, "' is not one of ", cols.label_values[0], ", ",
             cols.label_values[1]);
    LR_CHECK(!ex.a.empty() && (!t.pair || !ex.b.empty()), path, ":", lineno, ": empty sentence");
    out.push_back(std::move(ex));
  }
  LR_CHECK(!out.empty(), path, ": no examples after the header");
  return out;
}

std::vector<GlueExample> glue_subset(const std::vector<GlueExample>& examples, int64_t n, uint64_t seed) {
  const int64_t N = static_cast<int64_t>(examples.size());
  if (n <= 0 || n >= N) return examples;
  std::vector<int64_t> order(static_cast<size_t>(N));
  std::iota(order.begin(), order.end(), 0);
  tensor::Rng rng(seed);
  for (int64_t i = N - 1; i > 0; --i) std::swap(order[i], order[rng.randint(i + 1)]);  // Fisher-Yates
  order.resize(static_cast<size_t>(n));
  std::sort(order.begin(), order.end());
  std::vector<GlueExample> out;
  for (int64_t i : order) out.push_back(examples[static_cast<size_t>(i)]);
  return out;
}

std::vector<int32_t> encode_glue(const Tokenizer& tok, const GlueExample& ex, int64_t max_len, bool* truncated,
                                 int32_t sep_id) {
  const bool pair = !ex.b.empty();
  const int64_t budget = max_len - (pair ? 1 : 0);  // text tokens that fit beside the separator
  LR_CHECK(budget >= (pair ? 2 : 1), "encode_glue: max_len ", max_len, " leaves no room for the text");
  std::vector<int32_t> a = tok.encode(ex.a), b = pair ? tok.encode(ex.b) : std::vector<int32_t>{};
  const bool cut = static_cast<int64_t>(a.size() + b.size()) > budget;
  while (static_cast<int64_t>(a.size() + b.size()) > budget) (a.size() >= b.size() ? a : b).pop_back();
  if (truncated) *truncated = cut;
  if (pair) {
    a.push_back(sep_id);
    a.insert(a.end(), b.begin(), b.end());
  }
  return a;
}

GlueDataset::GlueDataset(const std::vector<GlueExample>& examples, const Tokenizer& tok, int64_t max_len,
                         int32_t sep_id, int32_t pad_id)
    : max_len_(max_len), pad_id_(pad_id) {
  ids_.reserve(examples.size());
  for (const GlueExample& ex : examples) {
    bool cut = false;
    ids_.push_back(encode_glue(tok, ex, max_len, &cut, sep_id));
    labels_.push_back(ex.label);
    truncated_ += cut ? 1 : 0;
  }
}

std::vector<std::vector<int64_t>> GlueDataset::epoch_batches(int64_t B, tensor::Rng& rng, bool drop_last) const {
  return shuffled_batches(size(), B, rng, drop_last, "GlueDataset");
}

GlueBatch GlueDataset::batch(const std::vector<int64_t>& indices) const {
  LR_CHECK(!indices.empty(), "GlueDataset: empty batch");
  GlueBatch g;
  g.B = static_cast<int64_t>(indices.size());
  for (int64_t i : indices) g.T = std::max<int64_t>(g.T, static_cast<int64_t>(ids(i).size()));
  g.ids.assign(static_cast<size_t>(g.B * g.T), pad_id_);
  for (int64_t r = 0; r < g.B; ++r) {
    const std::vector<int32_t>& s = ids(indices[static_cast<size_t>(r)]);
    std::copy(s.begin(), s.end(), g.ids.begin() + r * g.T);
    g.lengths.push_back(static_cast<int32_t>(s.size()));
    g.labels.push_back(label(indices[static_cast<size_t>(r)]));
    g.tokens += static_cast<int64_t>(s.size());
  }
  return g;
}

int64_t GlueDataset::num_eval_batches(int64_t B) const {
  return num_batches(size(), B, "GlueDataset::num_eval_batches");
}

GlueBatch GlueDataset::eval_batch(int64_t i, int64_t B) const {
  return batch(eval_batch_indices(size(), i, B, "GlueDataset"));
}

ClassificationScores classification_scores(const std::vector<int32_t>& predicted, const std::vector<int32_t>& gold,
                                           int32_t positive) {
  LR_CHECK(predicted.size() == gold.size(), "classification_scores: ", predicted.size(), " predictions for ",
           gold.size(), " labels");
  LR_CHECK(!gold.empty(), "classification_scores: no examples");
  ClassificationScores s;
  int64_t correct = 0;
  for (size_t i = 0; i < gold.size(); ++i) {
    correct += predicted[i] == gold[i] ? 1 : 0;
    s.tp += predicted[i] == positive && gold[i] == positive ? 1 : 0;
    s.fp += predicted[i] == positive && gold[i] != positive ? 1 : 0;
    s.fn += predicted[i] != positive && gold[i] == positive ? 1 : 0;
  }
  s.n = static_cast<int64_t>(gold.size());
  s.accuracy = static_cast<double>(correct) / static_cast<double>(s.n);
  const int64_t denom = 2 * s.tp + s.fp + s.fn;
  s.f1 = denom > 0 ? 2.0 * static_cast<double>(s.tp) / static_cast<double>(denom) : 0.0;
  return s;
}

}  // namespace lowrank::data
