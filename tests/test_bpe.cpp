// GPT-2 byte-level BPE (data/bpe.h) against ids from HF's GPT2Tokenizer (tests/fixtures/bpe_golden.json,
// made by tools/gen_tokenizer_fixtures.py), plus the char-level tokenizer (data/char_tokenizer.h).
#include <doctest/doctest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "data/bpe.h"
#include "data/bpe_pretokenize.h"
#include "data/char_tokenizer.h"
#include "data/utf8.h"
#include "tensor/error.h"
#include "test_util.h"

using namespace lowrank;
using namespace lowrank::data;
using lowrank::testing::read_bytes;

namespace {

const std::string kSource = LOWRANK_SOURCE_DIR;
const std::string kAssets = kSource + "/data/assets/gpt2-bpe";

// Loading parses 1.5 MB of JSON and merges, so the tests share one instance (also exercising its cache).
const Gpt2Bpe& gpt2() {
  static const Gpt2Bpe tok = Gpt2Bpe::from_dir(kAssets);
  return tok;
}

const nlohmann::json& golden() {
  static const nlohmann::json j = nlohmann::json::parse(read_bytes(kSource + "/tests/fixtures/bpe_golden.json"));
  return j;
}

// A fresh path in the temp folder, removed when the guard goes out of scope.
struct TempPath {
  std::string path;
  explicit TempPath(const std::string& name) {
    path = (std::filesystem::temp_directory_path() /
            ("lowrank_test_" + std::to_string(std::random_device{}()) + "_" + name))
               .string();
  }
  ~TempPath() { std::remove(path.c_str()); }
  void write(const std::string& text) const { std::ofstream(path, std::ios::binary) << text; }
};

// Random valid UTF-8: mostly ASCII (spaces, letters, punctuation), some Latin-1, BMP and astral.
std::string random_utf8(std::mt19937& rng, int max_chars) {
  std::string s;
  const int n = std::uniform_int_distribution<int>(0, max_chars)(rng);
  for (int i = 0; i < n; ++i) {
    const int kind = std::uniform_int_distribution<int>(0, 9)(rng);
    char32_t cp;
    if (kind < 5)
      cp = std::uniform_int_distribution<char32_t>(0, 0x7F)(rng);
    else if (kind < 7)
      cp = std::uniform_int_distribution<char32_t>(0x80, 0x7FF)(rng);
    else if (kind < 9)
      cp = std::uniform_int_distribution<char32_t>(0x800, 0xFFFD)(rng);
    else
      cp = std::uniform_int_distribution<char32_t>(0x10000, 0x10FFFF)(rng);
    if (cp >= 0xD800 && cp <= 0xDFFF) cp = U' ';
    utf8::append(s, cp);
  }
  return s;
}

std::vector<int32_t> ids_of(const nlohmann::json& j) { return j.get<std::vector<int32_t>>(); }

}  // namespace

TEST_CASE("bpe: golden ids match HF GPT2Tokenizer for every fixture string") {
  const auto& cases = golden().at("cases");
  REQUIRE(cases.size() >= 300);
  int mismatches = 0;
  for (const auto& c : cases) {
    const std::string text = c.at("text").get<std::string>();
    const std::vector<int32_t> want = ids_of(c.at("ids")), got = gpt2().encode(text);
    if (got != want) {
      ++mismatches;
      std::ostringstream g, w;
      for (int32_t id : got) g << id << ' ';
      for (int32_t id : want) w << id << ' ';
      FAIL_CHECK("mismatch for " << nlohmann::json(text).dump() << "\n  got:  " << g.str() << "\n  want: " << w.str());
    }
  }
  MESSAGE((cases.size() - mismatches) << " / " << cases.size() << " golden strings match (transformers "
                                      << golden().at("transformers_version").get<std::string>() << ")");
  CHECK(mismatches == 0);
}

TEST_CASE("bpe: Hello world, vocab size, eos id, name") {
  const Gpt2Bpe& tok = gpt2();
  CHECK(tok.encode("Hello world") == std::vector<int32_t>{15496, 995});
  CHECK(tok.encode(" Hello world") == std::vector<int32_t>{18435, 995});
  CHECK(tok.decode({15496, 995}) == "Hello world");
  CHECK(tok.vocab_size() == 50257);
  CHECK(tok.eos_id() == 50256);
  CHECK(tok.name() == "gpt2-bpe");
  CHECK(tok.encode("<|endoftext|>") == std::vector<int32_t>{50256});
  CHECK(tok.encode("a<|endoftext|>b") == std::vector<int32_t>{64, 50256, 65});
  CHECK(tok.decode({50256}) == "<|endoftext|>");
  CHECK(tok.encode("").empty());
  CHECK(tok.decode({}).empty());
}

TEST_CASE("bpe: byte-to-unicode table and pre-tokenizer follow encoder.py") {
  const auto table = gpt2_byte_to_unicode();
  CHECK(table['!'] == U'!');
  CHECK(table[' '] == 0x120);  // 'Ġ'
  CHECK(table[0] == 0x100);
  CHECK(table[0xAD] == 0x143);  // the soft hyphen is the last non-printable byte
  using V = std::vector<std::string_view>;
  CHECK(gpt2_pretokenize("Hello  world") == V{"Hello", " ", " world"});
  CHECK(gpt2_pretokenize("a\n\nb") == V{"a", "\n", "\n", "b"});
  CHECK(gpt2_pretokenize("I'll've 'S ok") == V{"I", "'ll", "'ve", " '", "S", " ok"});
  CHECK(gpt2_pretokenize(" 123abc!! ") == V{" 123", "abc", "!!", " "});
  CHECK(gpt2_pretokenize("\t x  ") == V{"\t", " x", "  "});
  CHECK(gpt2_pretokenize("\xC2\xA0x") == V{"\xC2\xA0", "x"});          // U+00A0 is \s but not a literal space
  CHECK(gpt2_pretokenize("a\xFF\xFE b") == V{"a", "\xFF\xFE", " b"});  // invalid bytes: punctuation-like
  CHECK(char_class(U'é') == CharClass::Letter);
  CHECK(char_class(U'٣') == CharClass::Number);
  CHECK(char_class(0x3000) == CharClass::Space);
  CHECK(char_class(0x1C) == CharClass::Other);  // str.isspace() says yes, the regex module's \s says no
  CHECK(char_class(0x200B) == CharClass::Other);
}

TEST_CASE("bpe: decode(encode(s)) == s for fixture strings, random UTF-8 and raw bytes") {
  const Gpt2Bpe& tok = gpt2();
  for (const auto& c : golden().at("cases")) {
    const std::string text = c.at("text").get<std::string>();
    CHECK_MESSAGE(tok.decode(tok.encode(text)) == text, nlohmann::json(text).dump());
  }
  std::mt19937 rng(7);
  for (int i = 0; i < 2000; ++i) {
    const std::string s = random_utf8(rng, i < 1900 ? 40 : 3000);
    const std::string back = tok.decode(tok.encode(s));
    CHECK_MESSAGE(back == s, "random string #" << i << " of " << s.size() << " bytes");
  }
  // Not required of GPT-2, but byte-level BPE handles any bytes: invalid UTF-8 comes back as is.
  for (int i = 0; i < 200; ++i) {
    std::string s(std::uniform_int_distribution<int>(1, 64)(rng), '\0');
    for (char& ch : s) ch = static_cast<char>(std::uniform_int_distribution<int>(0, 255)(rng));
    CHECK(tok.decode(tok.encode(s)) == s);
  }
  CHECK(tok.decode({tok.encode("😀")[0]}).size() < std::string("😀").size());  // a partial character
}

TEST_CASE("bpe: out-of-range ids in decode throw") {
  CHECK_THROWS_AS(gpt2().decode({15496, 50257}), Error);
  CHECK_THROWS_AS(gpt2().decode({-1}), Error);
  CHECK_THROWS_WITH_AS(gpt2().token_bytes(99999), doctest::Contains("out of range"), Error);
}

TEST_CASE("bpe: missing or corrupt files throw an error naming the file") {
  const std::string enc = kAssets + "/encoder.json", merges = kAssets + "/vocab.bpe";
  const std::string missing = kSource + "/no/such/encoder.json";
  CHECK_THROWS_WITH_AS(Gpt2Bpe(missing, merges), doctest::Contains(missing.c_str()), Error);
  CHECK_THROWS_WITH_AS(Gpt2Bpe(enc, kSource + "/no/such/vocab.bpe"), doctest::Contains("/no/such/vocab.bpe"), Error);
  CHECK_THROWS_WITH_AS(Gpt2Bpe::from_dir(kSource + "/nowhere"), doctest::Contains("nowhere/encoder.json"), Error);

  TempPath bad_json("encoder.json");
  bad_json.write("{\"a\": 0, ");
  CHECK_THROWS_WITH_AS(Gpt2Bpe(bad_json.path, merges), doctest::Contains(bad_json.path.c_str()), Error);
  bad_json.write("{\"a\": \"zero\"}");
  CHECK_THROWS_WITH_AS(Gpt2Bpe(bad_json.path, merges), doctest::Contains(bad_json.path.c_str()), Error);

  TempPath bad_merges("vocab.bpe");
  bad_merges.write("#version: 0.2\nĠ t\nthis line has three\n");
  CHECK_THROWS_WITH_AS(Gpt2Bpe(enc, bad_merges.path), doctest::Contains((bad_merges.path + "' line 3").c_str()), Error);
  bad_merges.write("#version: 0.2\nĠ t\nnot_a_token x\n");
  CHECK_THROWS_WITH_AS(Gpt2Bpe(enc, bad_merges.path), doctest::Contains(bad_merges.path.c_str()), Error);
}

TEST_CASE("bpe: concurrent encodes share the cache safely and agree with a serial run") {
  const auto& cases = golden().at("cases");
  std::vector<std::string> texts;
  for (const auto& c : cases) texts.push_back(c.at("text").get<std::string>());
  const Gpt2Bpe tok = Gpt2Bpe::from_dir(kAssets);  // a cold cache, filled by all threads at once
  std::vector<std::vector<std::vector<int32_t>>> results(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (const std::string& s : texts) results[t].push_back(tok.encode(s));
    });
  for (auto& th : threads) th.join();
  for (int t = 0; t < 4; ++t)
    for (size_t i = 0; i < texts.size(); ++i) CHECK(results[t][i] == ids_of(cases[i].at("ids")));
}

TEST_CASE("bpe: all of TinyShakespeare encodes to HF's 338,025 ids, quickly") {
  const auto& ref = golden().at("tinyshakespeare");
  std::string text;
  for (const std::string& p :
       {kSource + "/data/assets/tinyshakespeare/input.txt", kSource + "/../shared/data/tinyshakespeare/input.txt"})
    if (text.empty()) text = read_bytes(p);
  if (text.empty()) {
    MESSAGE("TinyShakespeare input.txt not found next to the source tree; skipped");
    return;
  }
  REQUIRE(text.size() == ref.at("bytes").get<size_t>());
  const Gpt2Bpe tok = Gpt2Bpe::from_dir(kAssets);  // cold cache: time the real work
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<int32_t> ids = tok.encode(text);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  MESSAGE("encoded " << text.size() << " bytes into " << ids.size() << " ids in " << secs << " s");
  CHECK(ids.size() == ref.at("num_ids").get<size_t>());
  uint64_t h = 0;
  for (int32_t id : ids) h = h * 1000003u + static_cast<uint64_t>(id) + 1u;
  CHECK(std::to_string(h) == ref.at("ids_hash").get<std::string>());
  const std::vector<int32_t> first = ids_of(ref.at("first_ids"));
  CHECK(std::vector<int32_t>(ids.begin(), ids.begin() + first.size()) == first);
  CHECK(tok.decode(ids) == text);
}

TEST_CASE("char tokenizer: sorted code-point vocabulary, round trip, unknown characters") {
  const std::string text = "hello, wörld! 😀\nhello";
  const CharTokenizer tok = CharTokenizer::from_text(text);
  CHECK(tok.name() == "char");
  CHECK(tok.eos_id() == -1);
  CHECK(tok.vocab_size() == 13);  // \n space ! , d e h l o r w ö 😀
  CHECK(tok.chars().front() == U'\n');
  CHECK(tok.chars().back() == 0x1F600);
  CHECK(std::is_sorted(tok.chars().begin(), tok.chars().end()));
  const std::vector<int32_t> ids = tok.encode(text);
  CHECK(ids.size() == 21);  // one id per code point (the text has 25 bytes)
  CHECK(tok.decode(ids) == text);
  CHECK(tok.encode("lol") == std::vector<int32_t>{7, 8, 7});
  CHECK_THROWS_WITH_AS(tok.encode("hex"), doctest::Contains("'x'"), Error);
  CHECK_THROWS_AS(tok.decode({13}), Error);
  CHECK_THROWS_AS(tok.decode({-1}), Error);
  CHECK_THROWS_AS(CharTokenizer::from_text("bad \xFF byte"), Error);
  CHECK_THROWS_AS(CharTokenizer(std::vector<char32_t>{U'a', U'a'}), Error);
}

TEST_CASE("char tokenizer: save/load keeps the vocabulary, bad files name the path") {
  const std::string text = "First Citizen:\nBefore we proceed any further, hear me speak.\n\t\"quoted\" \\ ünïcödé\x01";
  const CharTokenizer tok = CharTokenizer::from_text(text);
  TempPath file("vocab.json");
  tok.save(file.path);
  const CharTokenizer again = CharTokenizer::load(file.path);
  CHECK(again.chars() == tok.chars());
  CHECK(again.encode(text) == tok.encode(text));
  CHECK(again.decode(tok.encode(text)) == text);

  const std::string missing = kSource + "/no/such/vocab.json";
  CHECK_THROWS_WITH_AS(CharTokenizer::load(missing), doctest::Contains(missing.c_str()), Error);
  file.write("{\"type\": \"char\", \"chars\": [\"a\", \"bc\"]}");
  CHECK_THROWS_WITH_AS(CharTokenizer::load(file.path), doctest::Contains(file.path.c_str()), Error);
  file.write("{\"type\": \"char\", \"chars\": [\"a\", \"a\"]}");
  CHECK_THROWS_WITH_AS(CharTokenizer::load(file.path), doctest::Contains("twice"), Error);
  file.write("not json");
  CHECK_THROWS_WITH_AS(CharTokenizer::load(file.path), doctest::Contains(file.path.c_str()), Error);
}
