// GLUE data: the real SST-2 / MRPC / RTE splits parse to the counts their READMEs publish
// (data/assets/glue-*/README.md), parsing errors name file and line, the single/pair encoding with
// its separators and longest-first truncation, padded batches, seeded shuffles and subsets, and
// accuracy / F1 on hand-counted examples.
#include <array>
#include <fstream>
#include <set>

#include "data/bpe.h"
#include "data/glue.h"
#include "test_util.h"

using namespace lowrank;
using namespace lowrank::testing;
using data::GlueExample;

namespace {
const std::string kGlue = LOWRANK_GLUE_DIR;

// ByteTokenizer (test_util.h): separator '\n' as for GPT-2 BPE, padding its EOS 255.
constexpr int32_t kSep = '\n', kPad = 255;

std::array<int64_t, 2> label_counts(const std::vector<GlueExample>& ex) {
  std::array<int64_t, 2> n{0, 0};
  for (const GlueExample& e : ex) ++n.at(static_cast<size_t>(e.label));
  return n;
}
}  // namespace

TEST_CASE("glue: the real splits have the README's example and label counts") {
  struct Split {
    std::string task, file;
    size_t n;
    int64_t label0, label1;  // sst2/mrpc: 0 negative, 1 positive; rte: 0 entailment, 1 not_entailment
  };
  for (const Split& s : {Split{"sst2", "train", 67349, 29780, 37569}, Split{"sst2", "dev", 872, 428, 444},
                         Split{"mrpc", "train", 3668, 1194, 2474}, Split{"mrpc", "dev", 408, 129, 279},
                         Split{"rte", "train", 2490, 1249, 1241}, Split{"rte", "dev", 277, 146, 131}}) {
    CAPTURE(s.task);
    CAPTURE(s.file);
    const auto ex = data::load_glue(s.task, kGlue + "/" + s.task + "/" + s.file + ".tsv");
    CHECK(ex.size() == s.n);
    CHECK(label_counts(ex) == std::array<int64_t, 2>{s.label0, s.label1});
  }
  // First rows as the READMEs print them: surrounding whitespace stripped, MRPC's BOM skipped.
  const auto sst2 = data::load_glue("sst2", kGlue + "/sst2/dev.tsv");
  CHECK(sst2[0].a == "it 's a charming and often affecting journey .");
  CHECK(sst2[0].b.empty());
  CHECK(sst2[0].label == 1);
  const auto mrpc = data::load_glue("mrpc", kGlue + "/mrpc/train.tsv");
  CHECK(mrpc[0].a.rfind("Amrozi accused his brother", 0) == 0);
  CHECK(mrpc[0].b.rfind("Referring to him as only", 0) == 0);
  const auto rte = data::load_glue("rte", kGlue + "/rte/train.tsv");
  CHECK(rte[0].b == "Weapons of Mass Destruction Found in Iraq.");
  CHECK(rte[0].label == 1);  // not_entailment
  CHECK(data::glue_task("mrpc").report_f1);
  CHECK(!data::glue_task("sst2").pair);
}

TEST_CASE("glue: malformed files fail naming the file and the line") {
  TempDir tmp("glue");
  auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(tmp.file(name), std::ios::binary) << text;
    return tmp.file(name);
  };
  const std::string fields = write("fields.tsv", "sentence\tlabel\ngood\t1\nno label here\n");
  CHECK(error_of([&] {
          data::load_glue("sst2", fields);
        }).find("fields.tsv:3: 1 tab-separated fields, the header has 2") != std::string::npos);
  const std::string label = write("label.tsv", "sentence\tlabel\ngood\tpositive\n");
  CHECK(error_of([&] { data::load_glue("sst2", label); }).find("label.tsv:2: label 'positive' is not one of 0, 1") !=
        std::string::npos);
  const std::string rte = write("rte.tsv", "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailed\n");
  CHECK(error_of([&] { data::load_glue("rte", rte); }).find("is not one of entailment, not_entailment") !=
        std::string::npos);
  const std::string column = write("column.tsv", "text\tlabel\ngood\t1\n");
  CHECK(error_of([&] { data::load_glue("sst2", column); }).find("column.tsv:1: header has no column 'sentence'") !=
        std::string::npos);
  const std::string empty = write("empty.tsv", "sentence\tlabel\n  \t0\n");
  CHECK(error_of([&] { data::load_glue("sst2", empty); }).find("empty.tsv:2: empty sentence") != std::string::npos);
  CHECK(error_of([&] { data::load_glue("sst2", write("header.tsv", "sentence\tlabel\n")); }).find("no examples") !=
        std::string::npos);
  CHECK(error_of([&] { data::load_glue("cola", fields); }).find("unknown GLUE task 'cola' (one of sst2, mrpc, rte)") !=
        std::string::npos);
  CHECK(error_of([&] { data::load_glue("sst2", tmp.file("missing.tsv")); }).find("missing.tsv") != std::string::npos);
  // A CRLF file and a BOM parse like the plain one.
  const auto crlf = data::load_glue("sst2", write("crlf.tsv", "\xEF\xBB\xBFsentence\tlabel\r\n fine \t1\r\n"));
  REQUIRE(crlf.size() == 1);
  CHECK(crlf[0].a == "fine");
  CHECK(crlf[0].label == 1);
}

TEST_CASE("glue: encoding a sentence or a pair as lines of text, longest-first truncation") {
  ByteTokenizer tok;
  CHECK(data::encode_glue(tok, {"abc", "", 0}, 10, nullptr, kSep) == std::vector<int32_t>{'a', 'b', 'c'});
  CHECK(data::encode_glue(tok, {"ab", "c", 1}, 10, nullptr, kSep) == std::vector<int32_t>{'a', 'b', kSep, 'c'});
  bool cut = false;
  // a = 6 bytes, b = 2: 5 text tokens fit beside the separator in 6; the longer (a) loses 3.
  CHECK(data::encode_glue(tok, {"abcdef", "xy", 0}, 6, &cut, kSep) ==
        std::vector<int32_t>{'a', 'b', 'c', kSep, 'x', 'y'});
  CHECK(cut);
  CHECK(data::encode_glue(tok, {"abcdef", "", 0}, 4, &cut, kSep) == std::vector<int32_t>{'a', 'b', 'c', 'd'});
  CHECK(data::encode_glue(tok, {"ab", "", 0}, 4, &cut, kSep).size() == 2);
  CHECK(!cut);
  CHECK(error_of([&] {
          data::encode_glue(tok, {"ab", "cd", 0}, 2, nullptr, kSep);
        }).find("max_len 2") != std::string::npos);
  // With GPT-2 BPE a pair is exactly the BPE of the two lines of text.
  static const data::Gpt2Bpe bpe = data::Gpt2Bpe::from_dir(LOWRANK_SOURCE_DIR "/data/assets/gpt2-bpe");
  CHECK(bpe.encode("\n") == std::vector<int32_t>{data::kGlueSep});
  CHECK(data::encode_glue(bpe, {"Hello world", "", 0}, 64) == std::vector<int32_t>{15496, 995});
  CHECK(data::encode_glue(bpe, {"Hello world", "It is.", 0}, 64) == bpe.encode("Hello world\nIt is."));
}

TEST_CASE("glue: batches are right padded with lengths, epochs are seeded permutations, subsets") {
  ByteTokenizer tok;
  std::vector<GlueExample> ex = {{"abcd", "", 1}, {"a", "", 0}, {"abcdefghij", "", 1}, {"ab", "", 0}};
  data::GlueDataset ds(ex, tok, 6, kSep, kPad);
  CHECK(ds.num_truncated() == 1);
  data::GlueBatch b = ds.batch({1, 0, 2});
  CHECK(b.B == 3);
  CHECK(b.T == 6);  // the longest row, cut to max_len
  CHECK(b.lengths == std::vector<int32_t>{1, 4, 6});
  CHECK(b.labels == std::vector<int32_t>{0, 1, 1});
  CHECK(b.tokens == 11);
  auto row = [&](int64_t r) { return std::vector<int32_t>(b.ids.begin() + r * 6, b.ids.begin() + (r + 1) * 6); };
  CHECK(row(0) == std::vector<int32_t>{'a', kPad, kPad, kPad, kPad, kPad});
  CHECK(row(1) == std::vector<int32_t>{'a', 'b', 'c', 'd', kPad, kPad});
  CHECK(row(2) == std::vector<int32_t>{'a', 'b', 'c', 'd', 'e', 'f'});
  CHECK(ds.eval_batch(1, 3).B == 1);  // the short last batch
  Rng r1(5), r2(5);
  auto e1 = ds.epoch_batches(2, r1, true), e2 = ds.epoch_batches(2, r2, true);
  CHECK(e1 == e2);
  REQUIRE(e1.size() == 2);
  std::set<int64_t> seen;
  for (const auto& bi : e1) seen.insert(bi.begin(), bi.end());
  CHECK(seen.size() == 4);
  CHECK(ds.epoch_batches(3, r1, true).size() == 1);
  CHECK(ds.epoch_batches(3, r1, false).size() == 2);
  // Subsets: fixed by the seed, in file order, everything when n covers the set.
  std::vector<GlueExample> many;
  for (int i = 0; i < 50; ++i) many.push_back({std::to_string(i), "", i % 2});
  auto s1 = data::glue_subset(many, 10, 3), s2 = data::glue_subset(many, 10, 3), s3 = data::glue_subset(many, 10, 4);
  REQUIRE(s1.size() == 10);
  std::vector<std::string> t1, t3;
  for (size_t i = 0; i < 10; ++i) {
    CHECK(s1[i].a == s2[i].a);
    t1.push_back(s1[i].a);
    t3.push_back(s3[i].a);
    if (i > 0) CHECK(std::stoi(s1[i].a) > std::stoi(s1[i - 1].a));
  }
  CHECK(t1 != t3);
  CHECK(data::glue_subset(many, 0, 3).size() == 50);
  CHECK(data::glue_subset(many, 99, 3).size() == 50);
}

TEST_CASE("glue: accuracy and positive-class F1 on hand-counted predictions") {
  // gold 1 0 0 1 1 0, pred 1 1 0 0 1 0: TP 2, FP 1, FN 1, 4 of 6 right -> F1 = 4 / 6.
  data::ClassificationScores s = data::classification_scores({1, 1, 0, 0, 1, 0}, {1, 0, 0, 1, 1, 0});
  CHECK(s.tp == 2);
  CHECK(s.fp == 1);
  CHECK(s.fn == 1);
  CHECK(s.accuracy == doctest::Approx(4.0 / 6.0));
  CHECK(s.f1 == doctest::Approx(4.0 / 6.0));
  // Always predicting the majority class 0: accuracy 0.75 but F1 0 (why GLUE adds F1 for MRPC).
  data::ClassificationScores z = data::classification_scores({0, 0, 0, 0}, {0, 0, 0, 1});
  CHECK(z.accuracy == doctest::Approx(0.75));
  CHECK(z.f1 == 0.0);
  CHECK(data::classification_scores({0, 1}, {1, 1}, 0).f1 == 0.0);  // positive class chosen by the caller
  CHECK(data::classification_scores({1, 1, 1}, {1, 0, 1}).f1 == doctest::Approx(0.8));  // 2·2 / (4 + 1)
  CHECK(error_of([] {
          data::classification_scores({1}, {1, 0});
        }).find("1 predictions for 2 labels") != std::string::npos);
  CHECK(error_of([] { data::classification_scores({}, {}); }).find("no examples") != std::string::npos);
}
