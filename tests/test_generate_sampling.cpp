// The pieces of generate below the CLI: top-p (nucleus) sampling's kept set and draws, and the
// stream's hold-back of split UTF-8 characters and of possible stop-string starts. The CLI itself and
// the KV-cache sampler against nn::sample: test_cli_generate.cpp.
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "examples/common/text_stream.h"
#include "nn/sample.h"
#include "test_util.h"

using namespace lowrank;
using namespace lowrank::testing;

TEST_CASE("own data: generate's top-p keeps exactly the smallest set whose probability reaches p") {
  const std::vector<float> logits = {std::log(0.1f), std::log(0.4f), std::log(0.2f), std::log(0.3f)};
  const auto kept = [&](float p) {
    nn::SampleOptions o;
    o.top_p = p;
    std::vector<int32_t> ids;
    const std::vector<double> w = nn::sampling_weights(logits, o);
    for (size_t v = 0; v < w.size(); ++v)
      if (w[v] > 0) ids.push_back(static_cast<int32_t>(v));
    return ids;
  };
  CHECK(kept(0.05f) == std::vector<int32_t>{1});
  CHECK(kept(0.35f) == std::vector<int32_t>{1});
  CHECK(kept(0.45f) == std::vector<int32_t>{1, 3});
  CHECK(kept(0.65f) == std::vector<int32_t>{1, 3});
  CHECK(kept(0.75f) == std::vector<int32_t>{1, 2, 3});
  CHECK(kept(0.95f) == std::vector<int32_t>{0, 1, 2, 3});
  CHECK(kept(1.f) == std::vector<int32_t>{0, 1, 2, 3});
  nn::SampleOptions o;  // equal probabilities: p = 0.5 is reached by exactly two, ties to the lower ids
  o.top_p = 0.5f;
  const std::vector<double> w = nn::sampling_weights({0.f, 0.f, 0.f, 0.f}, o);
  REQUIRE(w.size() == 4);
  CHECK((w[0] > 0 && w[1] > 0 && w[2] == 0 && w[3] == 0));
  o.top_p = 0.35f;  // only id 1 (0.4) is left to draw
  Rng rng(2);
  for (int i = 0; i < 300; ++i) CHECK(nn::sample_id(logits, o, rng) == 1);
}

TEST_CASE("own data: generate's stream holds back split UTF-8 characters and possible stop-string starts") {
  ByteTokenizer tok;  // one id per byte: "é" arrives in two ids
  std::FILE* f = std::tmpfile();
  REQUIRE(f != nullptr);
  const auto shown = [f] {
    std::fflush(f);
    std::string s(static_cast<size_t>(std::ftell(f)), '\0');
    std::rewind(f);
    const size_t n = std::fread(s.data(), 1, s.size(), f);
    s.resize(n);
    return s;
  };
  examples::TextStream st(tok, {"END"}, f);
  const std::string text = "caf\xc3\xa9 EN";
  for (size_t i = 0; i < text.size(); ++i) {
    CHECK(st.add(static_cast<unsigned char>(text[i])));
    if (i == 3) CHECK(shown() == "caf");
  }
  CHECK(shown() == "caf\xc3\xa9 ");  // "EN" may start "END"
  CHECK_FALSE(st.add('D'));
  CHECK(st.stopped());
  CHECK(st.text() == "caf\xc3\xa9 ");
  st.finish();
  CHECK(shown() == st.text());
  std::fclose(f);
}
