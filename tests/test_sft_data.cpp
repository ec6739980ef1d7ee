// finetune's data (data/sft.h, data/jsonl.h): the formats people bring, their loss masks, the chat
// template, the validation split and every malformed input's one-line error. Test names start with
// "own data:" (the course labs' graders select the finetune tests by that prefix).
#include <doctest/doctest.h>

#include <set>

#include "data/bpe.h"
#include "data/e2e.h"
#include "data/generate_requests.h"
#include "data/jsonl.h"
#include "data/sft.h"
#include "test_util.h"

using namespace lowrank;
using namespace lowrank::testing;

namespace {

const data::Gpt2Bpe& bpe() {
  static const data::Gpt2Bpe b = data::Gpt2Bpe::from_dir(std::string(LOWRANK_SOURCE_DIR) + "/data/assets/gpt2-bpe");
  return b;
}

data::SftFile parse(const std::string& text, const std::string& path = "d.jsonl",
                    data::SftFormat f = data::SftFormat::Auto) {
  return data::parse_sft(text, path, f);
}

std::string error_of_parse(const std::string& text, const std::string& path = "d.jsonl") {
  return error_of([&] { parse(text, path); });
}

// The trained flags of one example as a string of 0/1, with '|' between what encode returned per token.
std::string flags(const data::SftEncoded& e) {
  std::string s;
  for (uint8_t t : e.trained) s += t ? '1' : '0';
  return s;
}

}  // namespace

TEST_CASE("own data: prompt-completion trains the completion and the closing EOS, nothing else") {
  ByteTokenizer tok;
  const data::SftFile f = parse("{\"prompt\": \"ab\", \"completion\": \"xyz\", \"id\": 7}\n");
  CHECK(f.format == data::SftFormat::PromptCompletion);
  data::SftDataset ds(f.examples, tok, 32, tok.eos_id());
  REQUIRE(ds.size() == 1);
  CHECK(ds.example(0).tokens == std::vector<int32_t>{'a', 'b', 'x', 'y', 'z', 255});
  CHECK(flags(ds.example(0)) == "001111");
  const data::SftBatch b = ds.batch({0});
  CHECK(b.targets == std::vector<int32_t>{'b', 'x', 'y', 'z', 255});
  CHECK(b.mask == std::vector<float>{0, 1, 1, 1, 1});
  CHECK(b.tokens == 4);
}

TEST_CASE("own data: text and .txt train every token, .txt documents are separated by blank lines") {
  ByteTokenizer tok;
  data::SftDataset t(parse("{\"text\": \"abc\"}\n").examples, tok, 32, tok.eos_id());
  CHECK(flags(t.example(0)) == "1111");
  CHECK(t.batch({0}).tokens == 3);  // b, c, EOS: the first token has no input before it
  const data::SftFile txt = parse("first doc\nline two\n\n\n  \nsecond\r\n", "notes.txt");
  CHECK(txt.format == data::SftFormat::Txt);
  REQUIRE(txt.examples.size() == 2);
  CHECK(txt.examples[0].segments[0].text == "first doc\nline two");
  CHECK(txt.examples[1].segments[0].text == "second");
  CHECK(txt.examples[1].where == "notes.txt:6");
  CHECK(parse("{\"text\": \"x\"}", "forced.txt", data::SftFormat::Text).format == data::SftFormat::Text);
}

TEST_CASE("own data: messages train only the assistant turns, each closed by EOS") {
  ByteTokenizer tok;
  const std::string rec = R"({"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "U"},)"
                          R"( {"role": "assistant", "content": "A"}, {"role": "user", "content": "V"},)"
                          R"( {"role": "assistant", "content": "B"}]})";
  const data::SftFile f = parse(rec + "\n");
  CHECK(f.format == data::SftFormat::Messages);
  data::SftDataset ds(f.examples, tok, 128, tok.eos_id());
  const data::SftEncoded& e = ds.example(0);
  const std::string text = "System: S\nUser: U\nAssistant: A\xff\nUser: V\nAssistant: B\xff";
  CHECK(std::string(e.tokens.begin(), e.tokens.end()) == text);
  // Trained: " A" EOS and " B" EOS; "Assistant:" and every other turn are context.
  std::string expect(text.size(), '0');
  for (size_t p : {text.find(" A"), text.find(" B")}) expect.replace(p, 3, "111");
  CHECK(flags(e) == expect);
  CHECK(e.tokens.back() == 255);
  CHECK(data::chat_prompt({{"user", "hi"}}) == "User: hi\nAssistant:");
}

TEST_CASE("own data: the first record decides the format, --format forces one") {
  CHECK(parse("{\"prompt\": \"p\", \"completion\": \"c\", \"text\": \"t\"}").format ==
        data::SftFormat::PromptCompletion);
  CHECK(parse("{\"text\": \"t\", \"prompt\": \"p\"}").format == data::SftFormat::Text);
  CHECK(parse("{\"prompt\": \"p\", \"completion\": \"c\", \"text\": \"t\"}", "d.jsonl", data::SftFormat::Text)
            .examples[0]
            .segments[0]
            .text == "t");
  CHECK(data::parse_sft_format("messages") == data::SftFormat::Messages);
  CHECK(contains(error_of([] { data::parse_sft_format("csv"); }), "--format: unknown format 'csv'"));
  // A byte order mark, CRLF line ends and blank lines are accepted.
  CHECK(parse("\xEF\xBB\xBF{\"text\": \"a\"}\r\n\r\n{\"text\": \"b\"}\r\n").examples.size() == 2);
}

TEST_CASE("own data: bad records are errors naming the file, line and field") {
  CHECK(contains(error_of_parse("{\"text\": \"a\"}\n{\"text\": \"b\"\n"), "d.jsonl:2: not valid JSON"));
  CHECK(contains(error_of_parse("[1, 2]\n"), "d.jsonl:1: expected a JSON object, got array"));
  CHECK(contains(error_of_parse("{\"prompt\": \"p\", \"completion\": \"c\"}\n{\"prompt\": \"p\"}\n"),
                 "d.jsonl:2: field 'completion' is missing"));
  CHECK(contains(error_of_parse("{\"prompt\": \"p\", \"completion\": 3}\n"),
                 "d.jsonl:1: field 'completion' is number, expected a string"));
  CHECK(contains(error_of_parse("{\"prompt\": \"p\", \"completion\": \"\"}\n"),
                 "d.jsonl:1: field 'completion' is empty"));
  CHECK(contains(error_of_parse("{\"prompt\": \"\", \"completion\": \"c\"}\n"), "d.jsonl:1: field 'prompt' is empty"));
  CHECK(contains(error_of_parse("{\"text\": \"\"}\n"), "d.jsonl:1: field 'text' is empty"));
  CHECK(contains(error_of_parse("\n{\"input\": \"a\", \"output\": \"b\"}\n"),
                 "d.jsonl:2: a record in none of the formats (fields: input, output)"));
  CHECK(contains(error_of_parse(""), "d.jsonl: no records"));
  CHECK(contains(error_of_parse("\n \n", "e.txt"), "e.txt: no text"));
  const std::string m = "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}";
  CHECK(contains(error_of_parse(m + "]}"),
                 "d.jsonl:1: field 'messages[0].role' is 'user': the last message must be the assistant's"));
  CHECK(
      contains(error_of_parse(m + ", {\"role\": \"bot\", \"content\": \"x\"}]}"), "field 'messages[1].role' is 'bot'"));
  CHECK(contains(error_of_parse(m + ", {\"role\": \"assistant\"}]}"), "field 'messages[1].content' is missing"));
  CHECK(contains(error_of_parse(m + ", {\"role\": \"assistant\", \"content\": 5}]}"),
                 "field 'messages[1].content' is number, expected a string"));
  CHECK(contains(error_of_parse(m + ", {\"role\": \"assistant\", \"content\": \"\"}]}"),
                 "field 'messages[1].content' is empty"));
  CHECK(contains(error_of_parse("{\"messages\": []}"), "field 'messages' is array (empty)"));
  CHECK(contains(error_of([] { data::load_sft("/nonexistent/x.jsonl"); }), "/nonexistent/x.jsonl"));
}

TEST_CASE("own data: a prompt that fills the window is an error, longer examples are cut and counted") {
  ByteTokenizer tok;
  const data::SftFile f =
      parse("{\"prompt\": \"abcdef\", \"completion\": \"xy\"}\n{\"prompt\": \"a\", \"completion\": \"b\"}\n");
  data::SftDataset cut(f.examples, tok, 7, tok.eos_id());  // 9 tokens: 8 inputs > 7
  CHECK(cut.num_truncated() == 1);
  CHECK(cut.batch({0}).tokens == 2);  // x, y; the EOS is cut
  CHECK(contains(error_of([&] { data::SftDataset(f.examples, tok, 5, tok.eos_id()); }),
                 "d.jsonl:1 has a context of 6 tokens: no completion token fits in max_len 5"));
}

TEST_CASE("own data: the validation split is fixed by its own seed and never empties the train split") {
  std::vector<data::SftExample> all;
  for (int i = 0; i < 40; ++i) all.push_back({{{std::to_string(i), true}}, ""});
  const data::SftSplit a = data::split_validation(all, 0.05, "t.jsonl"),
                       b = data::split_validation(all, 0.05, "t.jsonl");
  CHECK(a.valid.size() == 2);  // ceil(0.05 * 40)
  CHECK(a.train.size() == 38);
  CHECK(a.valid[0].segments[0].text == b.valid[0].segments[0].text);
  std::set<std::string> seen;
  for (const auto* part : {&a.train, &a.valid})
    for (const auto& e : *part) seen.insert(e.segments[0].text);
  CHECK(seen.size() == 40);
  CHECK(data::split_validation(all, 0.0, "t.jsonl").valid.empty());
  CHECK(data::split_validation({all[0], all[1]}, 0.01, "t.jsonl").valid.size() == 1);
  CHECK(contains(error_of([&] { data::split_validation({all[0]}, 0.05, "t.jsonl"); }),
                 "--val-frac 0.05 takes 1 of the 1 examples of t.jsonl for validation, leaving nothing to train on"));
}

TEST_CASE("own data: E2E as JSON Lines encodes exactly as E2E's own loader") {
  const std::vector<data::E2EExample> ex = {{"name : Blue Spice | eatType : pub", "Blue Spice is a pub ."},
                                            {"name : Zizzi | area : riverside", "Zizzi is by the river ."}};
  std::string jsonl;
  for (const auto& e : ex) jsonl += data::e2e_jsonl_record(e).dump() + "\n";
  data::SftDataset from_jsonl(parse(jsonl).examples, bpe(), 128, bpe().eos_id());
  data::E2EDataset e2e(ex, bpe(), 128);
  for (int64_t i = 0; i < 2; ++i) {
    const data::E2EEncoded enc = data::encode_e2e(bpe(), ex[i].mr, ex[i].ref);
    std::vector<int32_t> s = enc.context;
    s.insert(s.end(), enc.completion.begin(), enc.completion.end());
    CHECK(from_jsonl.example(i).tokens == s);
    CHECK(e2e.example(i).tokens == s);
    CHECK(from_jsonl.example(i).trained == e2e.example(i).trained);
    CHECK(from_jsonl.example(i).num_trained() == static_cast<int64_t>(enc.completion.size()));
  }
}

TEST_CASE("own data: JSON Lines helpers check types and ranges") {
  const auto recs =
      data::parse_jsonl("{\"a\": \"s\", \"n\": 5, \"big\": 18446744073709551615, \"z\": null}\n", "r.jsonl");
  REQUIRE(recs.size() == 1);
  CHECK(data::jsonl_string_or(recs[0], "a", "x") == "s");
  CHECK(data::jsonl_string_or(recs[0], "z", "x") == "x");
  CHECK(data::jsonl_int_or(recs[0], "n", 1, 1, 10) == 5);
  CHECK(data::jsonl_int_or(recs[0], "missing", 3, 1, 10) == 3);
  CHECK(contains(error_of([&] { data::jsonl_int_or(recs[0], "n", 1, 6, 10); }),
                 "r.jsonl:1: field 'n' is 5, expected 6 to 10"));
  CHECK(
      contains(error_of([&] { data::jsonl_int_or(recs[0], "big", 1, 1, 10); }), "field 'big' is 18446744073709551615"));
  CHECK(contains(error_of([&] { data::jsonl_int_or(recs[0], "a", 1, 1, 10); }),
                 "field 'a' is string, expected an integer"));
}

TEST_CASE("own data: an Rng state saved mid-stream continues it exactly") {
  tensor::Rng a(42);
  for (int i = 0; i < 5; ++i) a.next_u64();
  a.normal();  // leaves a spare normal
  tensor::Rng b(7);
  b.set_state(a.state());
  for (int i = 0; i < 4; ++i) CHECK(a.normal() == b.normal());
  CHECK(a.next_u64() == b.next_u64());
  CHECK(contains(error_of([&] { b.set_state("0 0 0 0 0 0"); }), "Rng::set_state: malformed state"));
  CHECK(contains(error_of([&] { b.set_state(a.state() + "x"); }), "malformed state"));
}

TEST_CASE("own data: finetune's files are generate's requests: a completion or a last assistant turn is expected") {
  ByteTokenizer tok;
  const std::string text =
      "{\"prompt\": \"Q\", \"completion\": \" A\"}\n"
      "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\", \"content\": \"yo\"}]}\n"
      "{\"messages\": [{\"role\": \"user\", \"content\": \"hey\"}]}\n";
  const auto reqs = data::parse_requests(data::parse_jsonl(text, "r.jsonl"), tok, {}, "r.jsonl");
  REQUIRE(reqs.size() == 3);
  CHECK(reqs[0].has_expected);
  CHECK(reqs[0].expected == " A");
  CHECK(reqs[1].prompt == "User: hi\nAssistant:");
  CHECK(reqs[1].expected == "yo");
  CHECK(reqs[2].prompt == "User: hey\nAssistant:");
  CHECK(!reqs[2].has_expected);
  auto err = [&](const std::string& line) {
    return error_of([&] { data::parse_requests(data::parse_jsonl(line, "r.jsonl"), tok, {}, "r.jsonl"); });
  };
  CHECK(contains(err("{\"prompt\": \"a\", \"messages\": []}"),
                 "r.jsonl:1: a request has field 'prompt' or field 'messages', not both"));
  CHECK(contains(err("{\"messages\": [{\"role\": \"assistant\", \"content\": \"x\"}]}"),
                 "holds only the assistant's turn"));
  CHECK(contains(err("{\"messages\": [{\"role\": 1, \"content\": \"x\"}]}"), "field 'messages[0]' must be"));
  CHECK(contains(err("{\"prompt\": \"a\", \"completion\": 2}"), "field 'completion' is number"));
}
