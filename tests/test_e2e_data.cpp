// E2E data: the real splits parse to the published counts (data/assets/e2e/README.md), the
// loralib encoding (MR, EOS separator, " " + reference, EOS), loss masks, padding, truncation and
// seeded shuffles.
#include <cstdio>
#include <fstream>
#include <set>

#include "data/bpe.h"
#include "data/e2e.h"
#include "test_util.h"

using namespace lowrank;
using namespace lowrank::testing;
using data::E2EDataset;
using data::E2EExample;

namespace {
const std::string kE2E = LOWRANK_E2E_DIR;

const data::Gpt2Bpe& bpe() {
  static const data::Gpt2Bpe tok = data::Gpt2Bpe::from_dir(LOWRANK_SOURCE_DIR "/data/assets/gpt2-bpe");
  return tok;
}

constexpr int32_t kEos = 255;

std::string write_temp(const std::string& name, const std::string& text) {
  const std::string path = std::string(P_tmpdir) + "/lowrank_test_" + name;
  std::ofstream(path, std::ios::binary) << text;
  return path;
}
}  // namespace

TEST_CASE("e2e: the real splits have 42,061 / 4,672 / 4,693 pairs and 4,862 / 547 / 630 distinct MRs") {
  const auto train = data::load_e2e(kE2E + "/train.txt");
  const auto valid = data::load_e2e(kE2E + "/valid.txt");
  const auto test = data::load_e2e(kE2E + "/test.txt");
  CHECK(train.size() == 42061);
  CHECK(valid.size() == 4672);
  CHECK(test.size() == 4693);
  CHECK(data::group_by_mr(train).size() == 4862);
  CHECK(data::group_by_mr(valid).size() == 547);
  const auto groups = data::group_by_mr(test);
  REQUIRE(groups.size() == 630);
  size_t refs = 0;
  for (const auto& g : groups) refs += g.refs.size();
  CHECK(refs == test.size());
  // First-appearance order, references in file order.
  CHECK(groups[0].mr == test[0].mr);
  CHECK(groups[0].refs[0] == "A coffee shop in the city centre area called Blue Spice .");
  CHECK(groups[0].refs[1] == "Blue Spice is a coffee shop in city centre .");

  CHECK(train[0].mr ==
        "name : The Vaults | Type : pub | price : more than £ 30 | customer rating : 5 out of 5 | "
        "near : Café Adriatic");
  CHECK(train[0].ref == "The Vaults pub near Café Adriatic has a 5 star rating . Prices start at £ 30 .");
  CHECK(valid[1].mr == "name : Alimentum | area : city centre | family friendly : no");
  CHECK(valid[1].ref == "In the city centre there is a venue name Alimentum , this is not a family - friendly venue .");
  CHECK(test[0].mr == "name : Blue Spice | Type : coffee shop | area : city centre");
}

TEST_CASE("e2e: pick_test_mrs takes every stride-th MR from the first, n of them") {
  const auto groups = data::group_by_mr(data::load_e2e(kE2E + "/test.txt"));
  REQUIRE(groups.size() == 630);
  const auto first = data::pick_test_mrs(groups, 40, 1);
  REQUIRE(first.size() == 40);
  CHECK(first[39].mr == groups[39].mr);
  const auto spread = data::pick_test_mrs(groups, 40, 16);  // the demo's MRs: 0, 16, ..., 624
  REQUIRE(spread.size() == 40);
  CHECK(spread[0].mr == groups[0].mr);
  CHECK(spread[39].mr == groups[624].mr);
  CHECK(spread[39].refs == groups[624].refs);
  int restaurants = 0;  // the first 40 MRs name one restaurant; the spread names many
  for (size_t i = 0; i < spread.size(); ++i)
    restaurants += i == 0 || spread[i].mr.substr(0, 20) != spread[i - 1].mr.substr(0, 20);
  CHECK(restaurants > 10);
  CHECK(data::pick_test_mrs(groups, 0, 16).size() == 40);  // n = 0: all there are, ceil(630 / 16)
  CHECK(data::pick_test_mrs(groups, 0, 1).size() == 630);
  CHECK(data::pick_test_mrs(groups, 1000, 700).size() == 1);
  CHECK_THROWS_WITH(data::pick_test_mrs(groups, 4, 0), doctest::Contains("stride must be >= 1"));
}

TEST_CASE("e2e: malformed lines throw naming the file and the line") {
  const std::string ok = "name : A||A is nice . \n";
  const std::vector<std::pair<std::string, std::string>> bad = {{"name : B no separator \n", "no \"||\""},
                                                                {"name : C||one||two\n", "more than one"},
                                                                {"||ref without mr\n", "empty MR"},
                                                                {"name : D||   \n", "empty reference"},
                                                                {"\n", "no \"||\""}};
  for (const auto& line_why : bad) {  // not a structured binding: clang 14 cannot capture those (CAPTURE)
    const std::string& line = line_why.first;
    const std::string& why = line_why.second;
    CAPTURE(line);
    const std::string path = write_temp("e2e_bad.txt", ok + ok + line + ok);
    const std::string err = error_of([&] { data::load_e2e(path); });
    CHECK(err.find(path + ":3:") != std::string::npos);
    CHECK(err.find(why) != std::string::npos);
    std::remove(path.c_str());
  }
  const std::string path = write_temp("e2e_ok.txt", " name : A||A is nice . \r\n" + ok);
  const auto ex = data::load_e2e(path);
  REQUIRE(ex.size() == 2);
  CHECK(ex[0].mr == "name : A");  // both ends of the line stripped (Python's str.strip)
  CHECK(ex[0].ref == "A is nice .");
  std::remove(path.c_str());
  CHECK(error_of([] { data::load_e2e("/nonexistent/e2e.txt"); }).find("/nonexistent/e2e.txt") != std::string::npos);
}

TEST_CASE("e2e: loralib's encoding with the GPT-2 BPE: bpe(mr) EOS bpe(' ' + ref) EOS") {
  const E2EExample ex{"name : Blue Spice | area : city centre", "Blue Spice is in the centre ."};
  const auto e = data::encode_e2e(bpe(), ex.mr, ex.ref);
  REQUIRE(e.context.size() >= 2);
  REQUIRE(e.completion.size() >= 2);
  CHECK(e.context.back() == 50256);
  CHECK(e.completion.back() == 50256);
  CHECK(bpe().decode({e.context.begin(), e.context.end() - 1}) == ex.mr);
  CHECK(bpe().decode({e.completion.begin(), e.completion.end() - 1}) == " " + ex.ref);
  CHECK(e.completion[0] == bpe().encode(" Blue")[0]);  // the leading space joins the first word
  CHECK(data::e2e_prompt(bpe(), ex.mr) == e.context);
}

TEST_CASE("e2e: batches shift targets, mask exactly completion + EOS, pad right with EOS") {
  ByteTokenizer tok;
  // contexts "ab"+EOS, "c"+EOS; completions " xy"+EOS, " z"+EOS
  E2EDataset ds({{"ab", "xy"}, {"c", "z"}}, tok, 64, kEos);
  REQUIRE(ds.size() == 2);
  CHECK(ds.num_truncated() == 0);
  const data::E2EBatch b = ds.batch({0, 1});
  REQUIRE(b.B == 2);
  REQUIRE(b.T == 6);  // 7 tokens in the longest sequence -> 6 inputs
  const std::vector<int32_t> in = {'a', 'b', kEos, ' ', 'x', 'y', 'c', kEos, ' ', 'z', kEos, kEos};
  const std::vector<int32_t> tg = {'b', kEos, ' ', 'x', 'y', kEos, kEos, ' ', 'z', kEos, kEos, kEos};
  const std::vector<float> mk = {0, 0, 1, 1, 1, 1, 0, 1, 1, 1, 0, 0};
  CHECK(b.inputs == in);
  CHECK(b.targets == tg);
  CHECK(b.mask == mk);
  CHECK(b.tokens == 7);
}

TEST_CASE("e2e: mask covers the completion on real data, right truncation at max_len") {
  E2EDataset ds(data::load_e2e(kE2E + "/valid.txt"), bpe(), 128);
  CHECK(ds.num_truncated() == 0);  // the longest valid example has 125 tokens (124 inputs)
  int64_t expect_tokens = 0;
  for (int64_t i = 0; i < ds.size(); ++i) expect_tokens += static_cast<int64_t>(ds.example(i).num_trained());
  int64_t got = 0;
  for (int64_t i = 0; i < ds.num_eval_batches(100); ++i) {
    const data::E2EBatch b = ds.eval_batch(i, 100);
    CHECK(b.T <= 124);
    got += b.tokens;
  }
  CHECK(got == expect_tokens);

  ByteTokenizer tok;
  E2EDataset cut({{"abcd", "xyz"}, {"a", "b"}}, tok, 7, kEos);  // 5 + 5 tokens: 9 inputs > 7
  CHECK(cut.num_truncated() == 1);
  const data::E2EBatch b = cut.batch({0, 1});
  REQUIRE(b.T == 7);
  CHECK(std::vector<int32_t>(b.targets.begin(), b.targets.begin() + 7) ==
        std::vector<int32_t>{'b', 'c', 'd', kEos, ' ', 'x', 'y'});
  CHECK(std::vector<float>(b.mask.begin(), b.mask.begin() + 7) == std::vector<float>{0, 0, 0, 0, 1, 1, 1});
  CHECK(b.tokens == 3 + 3);  // " xy" of row 0 (z and EOS cut), " b" EOS of row 1
  CHECK(error_of([&] {
          E2EDataset({{"abcdefgh", "x"}}, tok, 8, kEos);
        }).find("no completion token fits") != std::string::npos);
}

TEST_CASE("e2e: seeded epoch shuffles are deterministic permutations, eval batches are sequential") {
  ByteTokenizer tok;
  std::vector<E2EExample> ex;
  for (int i = 0; i < 23; ++i) ex.push_back({"m" + std::to_string(i), "r"});
  E2EDataset ds(ex, tok, 32, kEos);
  tensor::Rng r1(7), r2(7), r3(8);
  const auto a = ds.epoch_batches(5, r1, false);
  CHECK(a == ds.epoch_batches(5, r2, false));
  CHECK(a != ds.epoch_batches(5, r3, false));
  CHECK(a != ds.epoch_batches(5, r1, false));  // the next epoch draws a new order
  REQUIRE(a.size() == 5);
  CHECK(a.back().size() == 3);
  std::set<int64_t> seen;
  for (const auto& b : a) seen.insert(b.begin(), b.end());
  CHECK(seen.size() == 23);
  tensor::Rng r4(7);
  const auto dropped = ds.epoch_batches(5, r4, true);
  CHECK(dropped.size() == 4);
  CHECK(dropped[0] == a[0]);

  REQUIRE(ds.num_eval_batches(5) == 5);
  const data::E2EBatch last = ds.eval_batch(4, 5);
  CHECK(last.B == 3);
  CHECK(last.inputs[0] == 'm');
  CHECK(last.inputs[1] == '2');  // "m20"
  CHECK(error_of([&] { ds.eval_batch(5, 5); }).find("evaluation batch 5") != std::string::npos);
  // B = 0 divided by zero (finetune_e2e --steps 0 --batch-size 0 died of SIGFPE)
  for (int64_t B : {0, -2})
    CHECK(error_of([&] {
            ds.num_eval_batches(B);
          }).find("SftDataset::num_eval_batches: batch size B=" + std::to_string(B)) != std::string::npos);
}
