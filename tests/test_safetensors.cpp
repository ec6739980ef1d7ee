// safetensors reading (F32/F16/BF16), writing (atomic, F32), and the errors for broken files.
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "tensor/safetensors.h"
#include "test_util.h"

using namespace lowrank;
using namespace lowrank::testing;
namespace fs = std::filesystem;

namespace {

std::string le64(uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return s;
}

// A safetensors file made by hand: header length, header text, data bytes.
std::string make_file(const std::string& header, const std::string& data) {
  return le64(header.size()) + header + data;
}

std::string u16_bytes(const std::vector<uint16_t>& v) {
  std::string s;
  for (uint16_t x : v) {
    s.push_back(static_cast<char>(x & 0xff));
    s.push_back(static_cast<char>(x >> 8));
  }
  return s;
}

std::string f32_bytes(const std::vector<float>& v) {
  std::string s(v.size() * 4, '\0');
  if (!v.empty()) std::memcpy(s.data(), v.data(), s.size());
  return s;
}

float float_from_bits(uint32_t bits) {  // a float32 from its bit pattern
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

uint32_t bits_of(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

void check_bit_exact(const Tensor& got, const Tensor& want) {
  REQUIRE(got.shape() == want.shape());
  std::vector<float> a = got.to_vector(), b = want.to_vector();
  for (size_t i = 0; i < a.size(); ++i) {
    INFO("element " << i);
    CHECK(bits_of(a[i]) == bits_of(b[i]));
  }
}

// Values of t equal `expect` exactly.
void check_exact(const Tensor& t, const std::vector<float>& expect) {
  std::vector<float> v = t.to_vector();
  REQUIRE(v.size() == expect.size());
  for (size_t i = 0; i < v.size(); ++i) {
    INFO("element " << i);
    CHECK(v[i] == expect[i]);
  }
}

}  // namespace

TEST_CASE("safetensors: round trip of 0-D to 4-D, empty and strided tensors is bit-exact") {
  TempDir tmp("roundtrip");
  Rng rng(7);
  std::map<std::string, Tensor> ts;
  ts["scalar"] = Tensor::from({3.25f}, Shape{});
  ts["vec"] = Tensor::randn({5}, rng);
  ts["mat"] = Tensor::randn({3, 4}, rng);
  ts["cube"] = Tensor::randn({2, 3, 4}, rng);
  ts["hyper"] = Tensor::randn({2, 1, 3, 2}, rng);
  ts["empty"] = Tensor::zeros({0, 3});
  ts["transposed"] = Tensor::randn({4, 3}, rng).transpose(0, 1);  // non-contiguous view
  // Finite extremes only: saving refuses NaN and infinity (tests/test_safetensors_guard.cpp); reading
  // them is checked on hand-made files below.
  ts["special"] = Tensor::from({-0.f, std::numeric_limits<float>::lowest(), std::numeric_limits<float>::denorm_min(),
                                -std::numeric_limits<float>::denorm_min(), std::numeric_limits<float>::max()},
                               {5});

  SUBCASE("without metadata") {
    const std::string path = tmp.file("a.safetensors");
    save_safetensors(path, ts);
    SafetensorsFile f = load_safetensors(path);
    CHECK(f.metadata.empty());
    REQUIRE(f.tensors.size() == ts.size());
    for (const auto& kv : ts) {  // not a structured binding: clang 14 cannot capture those (INFO)
      const std::string& name = kv.first;
      const Tensor& t = kv.second;
      INFO("tensor " << name);
      REQUIRE(f.tensors.count(name) == 1);
      CHECK(f.tensors.at(name).is_contiguous());
      check_bit_exact(f.tensors.at(name), t);
    }
    CHECK(f.tensors.at("scalar").ndim() == 0);
    CHECK(f.tensors.at("empty").shape() == Shape{0, 3});

    // Layout: 8-byte aligned data section, names sorted, F32 everywhere.
    const std::string raw = read_bytes(path);
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(raw[i]);
    CHECK(n % 8 == 0);
    const std::string header = raw.substr(8, n);
    CHECK(header.find("\"cube\"") < header.find("\"empty\""));
    CHECK(header.find("\"empty\"") < header.find("\"vec\""));
    CHECK(contains(header, "\"__metadata__\":{\"lowrank.crc32\":"));  // the checksums, not returned
    CHECK_FALSE(contains(header, "F16"));
    int64_t floats = 0;
    for (const auto& kv : ts) floats += kv.second.numel();
    CHECK(raw.size() == 8 + n + static_cast<uint64_t>(floats) * 4);
  }

  SUBCASE("with metadata") {
    const std::string path = tmp.file("b.safetensors");
    std::map<std::string, std::string> meta{{"format", "pt"}, {"step", "1200"}, {"note", "r=8, \"quoted\""}};
    save_safetensors(path, ts, meta);
    SafetensorsFile f = load_safetensors(path);
    CHECK(f.metadata == meta);
    for (const auto& [name, t] : ts) check_bit_exact(f.tensors.at(name), t);
  }

  SUBCASE("no tensors at all") {
    const std::string path = tmp.file("c.safetensors");
    save_safetensors(path, {}, {{"k", "v"}});
    SafetensorsFile f = load_safetensors(path);
    CHECK(f.tensors.empty());
    CHECK(f.metadata.at("k") == "v");
  }
}

TEST_CASE("safetensors: half and bfloat16 conversion by hand") {
  CHECK(tensor::half_to_float(0x3C00) == 1.0f);
  CHECK(tensor::half_to_float(0xC100) == -2.5f);
  CHECK(tensor::half_to_float(0x7BFF) == 65504.0f);
  CHECK(tensor::half_to_float(0x0001) == std::ldexp(1.0f, -24));     // smallest subnormal
  CHECK(tensor::half_to_float(0x03FF) == std::ldexp(1023.0f, -24));  // largest subnormal
  CHECK(tensor::half_to_float(0x0400) == std::ldexp(1.0f, -14));     // smallest normal
  CHECK(tensor::half_to_float(0x8001) == -std::ldexp(1.0f, -24));
  CHECK(bits_of(tensor::half_to_float(0x8000)) == 0x80000000u);  // -0
  CHECK(tensor::half_to_float(0x7C00) == std::numeric_limits<float>::infinity());
  CHECK(tensor::half_to_float(0xFC00) == -std::numeric_limits<float>::infinity());
  CHECK(std::isnan(tensor::half_to_float(0x7E00)));
  CHECK(std::isnan(tensor::half_to_float(0x7C01)));  // signalling-NaN payload stays a NaN
  CHECK(tensor::half_to_float(0x3555) == 0.333251953125f);
  // Every finite half converts exactly: compare with a slow reference formula.
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const uint32_t e = (h >> 10) & 0x1f, m = h & 0x3ff;
    if (e == 0x1f) continue;
    float want =
        e == 0 ? std::ldexp(static_cast<float>(m), -24) : std::ldexp(1.0f + m / 1024.0f, static_cast<int>(e) - 15);
    if (h & 0x8000) want = -want;
    if (tensor::half_to_float(static_cast<uint16_t>(h)) != want ||
        std::signbit(want) != std::signbit(tensor::half_to_float(static_cast<uint16_t>(h)))) {
      FAIL("half 0x" << std::hex << h);
    }
  }
  CHECK(tensor::bfloat16_to_float(0x3F80) == 1.0f);
  CHECK(tensor::bfloat16_to_float(0xC020) == -2.5f);
  CHECK(tensor::bfloat16_to_float(0x4049) == 3.140625f);
  CHECK(tensor::bfloat16_to_float(0x0001) == std::ldexp(1.0f, -133));  // float subnormal
  CHECK(tensor::bfloat16_to_float(0xFF80) == -std::numeric_limits<float>::infinity());
  CHECK(std::isnan(tensor::bfloat16_to_float(0x7FC0)));
}

TEST_CASE("safetensors: float to bfloat16 rounds to nearest, ties to even") {
  CHECK(tensor::float_to_bfloat16(1.0f) == 0x3F80);
  CHECK(tensor::float_to_bfloat16(-2.5f) == 0xC020);
  CHECK(tensor::float_to_bfloat16(float_from_bits(0x3F808000u)) == 0x3F80);       // tie -> even (down)
  CHECK(tensor::float_to_bfloat16(float_from_bits(0x3F818000u)) == 0x3F82);       // tie -> even (up)
  CHECK(tensor::float_to_bfloat16(float_from_bits(0x3F808001u)) == 0x3F81);       // above the tie
  CHECK(tensor::float_to_bfloat16(float_from_bits(0x3F807FFFu)) == 0x3F80);       // below the tie
  CHECK(tensor::float_to_bfloat16(std::numeric_limits<float>::max()) == 0x7F80);  // rounds to inf
  CHECK(tensor::float_to_bfloat16(-std::numeric_limits<float>::infinity()) == 0xFF80);
  CHECK(std::isnan(tensor::bfloat16_to_float(tensor::float_to_bfloat16(std::numeric_limits<float>::quiet_NaN()))));
  CHECK(std::isnan(tensor::bfloat16_to_float(tensor::float_to_bfloat16(float_from_bits(0x7F800001u)))));
  // Every bfloat16 value converts back to itself (the round trip through float32 is exact).
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = tensor::bfloat16_to_float(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    if (tensor::float_to_bfloat16(f) != h) FAIL("bfloat16 0x" << std::hex << h);
  }
}

TEST_CASE("safetensors: saving as BF16 halves the data and reads back rounded") {
  TempDir tmp("bf16");
  Rng rng(3);
  std::map<std::string, Tensor> ts{{"w", Tensor::randn({3, 5}, rng)}, {"b", Tensor::randn({4}, rng)}};
  const std::string f32 = tmp.file("f32.safetensors"), bf16 = tmp.file("bf16.safetensors");
  save_safetensors(f32, ts, {{"k", "v"}});
  save_safetensors(bf16, ts, {{"k", "v"}}, "BF16");
  SafetensorsFile f = load_safetensors(bf16);
  CHECK(f.metadata.at("k") == "v");
  for (const auto& kv : ts) {  // not a structured binding: clang 14 cannot capture those (INFO)
    const std::string& name = kv.first;
    const Tensor& t = kv.second;
    INFO("tensor " << name);
    const std::vector<float> want = t.to_vector(), got = f.tensors.at(name).to_vector();
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < want.size(); ++i)
      CHECK(got[i] == tensor::bfloat16_to_float(tensor::float_to_bfloat16(want[i])));
  }
  CHECK(error_of([&] {
          save_safetensors(tmp.file("x.safetensors"), ts, {}, "F16");
        }).find("cannot save as dtype 'F16'") != std::string::npos);
}

TEST_CASE("safetensors: reads F16, BF16 and F32 from a hand-made file") {
  TempDir tmp("halves");
  const std::string path = tmp.file("mixed.safetensors");
  // Data section: f16 (2x3) at [0, 12), bf16 (4,) at [12, 20), f32 scalar at [20, 24),
  // then an overlapping F16 view of the first 4 bytes listed out of order, which the spec tolerates.
  const std::string data = u16_bytes({0x3C00, 0xC100, 0x7BFF, 0x0001, 0x8000, 0x7C00}) +
                           u16_bytes({0x3F80, 0xC020, 0x4049, 0x0001}) + f32_bytes({-7.5f});
  std::string header = R"({"__metadata__":{"format":"pt"},)"
                       R"("w_bf16":{"dtype":"BF16","shape":[4],"data_offsets":[12,20]},)"
                       R"("w_f16":{"dtype":"F16","shape":[2,3],"data_offsets":[0,12]},)"
                       R"("s":{"dtype":"F32","shape":[],"data_offsets":[20,24]},)"
                       R"("alias":{"dtype":"F16","shape":[1,2],"data_offsets":[0,4]}})";
  header.append((8 - header.size() % 8) % 8, ' ');
  write_bytes(path, make_file(header, data));

  SafetensorsFile f = load_safetensors(path);
  CHECK(f.metadata.at("format") == "pt");
  REQUIRE(f.tensors.size() == 4);
  const Tensor h = f.tensors.at("w_f16");
  CHECK(h.shape() == Shape{2, 3});
  std::vector<float> hv = h.to_vector();
  CHECK(hv[0] == 1.0f);
  CHECK(hv[1] == -2.5f);
  CHECK(hv[2] == 65504.0f);
  CHECK(hv[3] == std::ldexp(1.0f, -24));
  CHECK(bits_of(hv[4]) == 0x80000000u);
  CHECK(hv[5] == std::numeric_limits<float>::infinity());
  check_exact(f.tensors.at("w_bf16"), {1.0f, -2.5f, 3.140625f, std::ldexp(1.0f, -133)});
  CHECK(f.tensors.at("s").ndim() == 0);
  CHECK(f.tensors.at("s").item() == -7.5f);
  check_exact(f.tensors.at("alias"), {1.0f, -2.5f});
}

TEST_CASE("safetensors: corrupt and unsupported files give errors naming the file and tensor") {
  TempDir tmp("corrupt");
  const std::string good_header = R"({"weight":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}})";
  const std::string good_data = f32_bytes({1, 2, 3, 4});

  SUBCASE("missing file") {
    const std::string path = tmp.file("nope.safetensors");
    const std::string msg = error_of([&] { load_safetensors(path); });
    CHECK(contains(msg, path));
    CHECK(contains(msg, "cannot open"));
  }
  SUBCASE("shorter than 8 bytes") {
    const std::string path = tmp.file("short.safetensors");
    write_bytes(path, "abc");
    const std::string msg = error_of([&] { load_safetensors(path); });
    CHECK(contains(msg, path));
    CHECK(contains(msg, "shorter than the 8-byte header length"));
  }
  SUBCASE("header length past the end") {
    const std::string path = tmp.file("hlen.safetensors");
    write_bytes(path, le64(1000) + good_header + good_data);
    const std::string msg = error_of([&] { load_safetensors(path); });
    CHECK(contains(msg, path));
    CHECK(contains(msg, "header length 1000"));
    write_bytes(path, le64(~0ull) + good_header);
    CHECK(contains(error_of([&] { load_safetensors(path); }), "runs past the end of the file"));
  }
  SUBCASE("invalid JSON") {
    const std::string path = tmp.file("json.safetensors");
    write_bytes(path, make_file(R"({"weight": {"dtype": "F32", )", good_data));
    const std::string msg = error_of([&] { load_safetensors(path); });
    CHECK(contains(msg, path));
    CHECK(contains(msg, "invalid JSON"));
    write_bytes(path, make_file("[1, 2]", ""));
    CHECK(contains(error_of([&] { load_safetensors(path); }), "not an object"));
  }
  SUBCASE("unsupported dtype") {
    const std::string path = tmp.file("dtype.safetensors");
    write_bytes(path, make_file(R"({"ids":{"dtype":"I64","shape":[2],"data_offsets":[0,16]}})", good_data));
    const std::string msg = error_of([&] { load_safetensors(path); });
    CHECK(contains(msg, path));
    CHECK(contains(msg, "tensor 'ids'"));
    CHECK(contains(msg, "unsupported dtype 'I64'"));
  }
  SUBCASE("truncated data") {
    const std::string path = tmp.file("trunc.safetensors");
    std::map<std::string, Tensor> ts{{"a", Tensor::zeros({4})}, {"b.weight", Tensor::zeros({3, 3})}};
    save_safetensors(path, ts);
    fs::resize_file(path, fs::file_size(path) - 4);
    const std::string msg = error_of([&] { load_safetensors(path); });
    CHECK(contains(msg, path));
    CHECK(contains(msg, "tensor 'b.weight'"));
    CHECK(contains(msg, "truncated"));
  }
  SUBCASE("offsets that disagree with shape x dtype") {
    const std::string path = tmp.file("span.safetensors");
    write_bytes(path, make_file(R"({"w":{"dtype":"F32","shape":[3,2],"data_offsets":[0,16]}})", good_data));
    const std::string msg = error_of([&] { load_safetensors(path); });
    CHECK(contains(msg, path));
    CHECK(contains(msg, "tensor 'w'"));
    CHECK(contains(msg, "needs 24"));
    write_bytes(path, make_file(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}})", good_data));
    CHECK(contains(error_of([&] { load_safetensors(path); }), "end before they begin"));
  }
  SUBCASE("malformed entries and too many dims") {
    const std::string path = tmp.file("entry.safetensors");
    write_bytes(path, make_file(R"({"w":{"dtype":"F32","shape":[1,1,1,1,4],"data_offsets":[0,16]}})", good_data));
    std::string msg = error_of([&] { load_safetensors(path); });
    CHECK(contains(msg, "tensor 'w'"));
    CHECK(contains(msg, "at most 4 dims"));
    write_bytes(path, make_file(R"({"w":{"dtype":"F32","shape":[-4],"data_offsets":[0,16]}})", good_data));
    CHECK(contains(error_of([&] { load_safetensors(path); }), "negative"));
    write_bytes(path, make_file(R"({"w":{"dtype":"F32","shape":[4]}})", good_data));
    CHECK(contains(error_of([&] { load_safetensors(path); }), "data_offsets"));
    write_bytes(path, make_file(R"({"__metadata__":{"n":3}})", ""));
    CHECK(contains(error_of([&] { load_safetensors(path); }), "metadata 'n' is not a string"));
    // A shape whose byte count overflows 64 bits is refused rather than wrapped around.
    write_bytes(path,
                make_file(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,16]}})", good_data));
    CHECK(contains(error_of([&] { load_safetensors(path); }), "too large"));
    // Zero elements, but 2^62·4 overflows numel's and the strides' int64 products: refused, naming the file.
    write_bytes(
        path, make_file(R"({"w":{"dtype":"F32","shape":[4611686018427387904,4,0],"data_offsets":[0,0]}})", good_data));
    msg = error_of([&] { load_safetensors(path); });
    CHECK(contains(msg, path));
    CHECK(contains(msg, "tensor 'w'"));
    CHECK(contains(msg, "overflows int64"));
  }
  SUBCASE("the good file itself loads") {
    const std::string path = tmp.file("good.safetensors");
    write_bytes(path, make_file(good_header, good_data));
    check_exact(load_safetensors(path).tensors.at("weight"), {1, 2, 3, 4});
  }
}

TEST_CASE("safetensors: saving is atomic and leaves no temporary file") {
  TempDir tmp("atomic");
  const std::string path = tmp.file("ckpt.safetensors");
  Rng rng(3);
  save_safetensors(path, {{"big", Tensor::randn({64, 64}, rng)}, {"x", Tensor::randn({3}, rng)}});
  const auto big_size = fs::file_size(path);

  // Overwriting with a much smaller file replaces the old one whole (no stale tail).
  Tensor small = Tensor::from({1.5f, -2.f}, {2});
  save_safetensors(path, {{"only", small}}, {{"v", "2"}});
  CHECK(fs::file_size(path) < big_size);
  SafetensorsFile f = load_safetensors(path);
  CHECK(f.tensors.size() == 1);
  check_bit_exact(f.tensors.at("only"), small);
  CHECK(f.metadata.at("v") == "2");
  CHECK(tmp.entries() == std::vector<std::string>{"ckpt.safetensors"});

  // A target that cannot be replaced (a directory) fails, names the path, and cleans up.
  const std::string dir_target = tmp.file("is_a_dir");
  fs::create_directories(dir_target);
  std::string msg = error_of([&] { save_safetensors(dir_target, {{"only", small}}); });
  CHECK(contains(msg, dir_target));
  for (const auto& name : tmp.entries()) CHECK_FALSE(contains(name, ".tmp."));

  // A folder that does not exist: nothing created, error names the path.
  const std::string missing = tmp.file("no_such_dir/ckpt.safetensors");
  msg = error_of([&] { save_safetensors(missing, {{"only", small}}); });
  CHECK(contains(msg, missing));
  CHECK_FALSE(fs::exists(tmp.dir / "no_such_dir"));

  // Bad input fails before touching the existing file.
  msg = error_of([&] { save_safetensors(path, {{"bad", Tensor()}}); });
  CHECK(contains(msg, "tensor 'bad'"));
  CHECK(load_safetensors(path).tensors.count("only") == 1);
  CHECK(tmp.entries().size() == 2);  // ckpt.safetensors and is_a_dir
}

TEST_CASE("safetensors: take checks presence and shape") {
  SafetensorsFile f;
  f.tensors["h.0.w"] = Tensor::zeros({2, 3});
  CHECK(tensor::take(f, "h.0.w", {2, 3}, "model.safetensors").shape() == Shape{2, 3});
  CHECK(error_of([&] {
          tensor::take(f, "h.1.w", {2, 3}, "model.safetensors");
        }) == "model.safetensors: tensor 'h.1.w' missing");
  CHECK(error_of([&] {
          tensor::take(f, "h.0.w", {3, 2}, "model.safetensors");
        }) == "model.safetensors: tensor 'h.0.w' has shape (2, 3), expected (3, 2)");
}

TEST_CASE("safetensors: reads the Hugging Face-written tiny GPT-2 fixture") {
  const std::string path = std::string(LOWRANK_SOURCE_DIR) + "/tests/fixtures/tiny_gpt2/model.safetensors";
  SafetensorsFile f = load_safetensors(path);
  CHECK(f.metadata.at("format") == "pt");
  CHECK(f.tensors.size() == 28);  // tied lm_head is not stored separately
  CHECK(f.tensors.count("lm_head.weight") == 0);
  CHECK(tensor::take(f, "transformer.wte.weight", {101, 32}, path).numel() == 3232);
  tensor::take(f, "transformer.wpe.weight", {32, 32}, path);
  tensor::take(f, "transformer.ln_f.weight", {32}, path);
  for (int l = 0; l < 2; ++l) {
    const std::string h = "transformer.h." + std::to_string(l) + ".";
    tensor::take(f, h + "attn.c_attn.weight", {32, 96}, path);  // HF Conv1D layout (in, out)
    tensor::take(f, h + "attn.c_attn.bias", {96}, path);
    tensor::take(f, h + "attn.c_proj.weight", {32, 32}, path);
    tensor::take(f, h + "mlp.c_fc.weight", {32, 128}, path);
    tensor::take(f, h + "mlp.c_proj.weight", {128, 32}, path);
    tensor::take(f, h + "ln_2.bias", {32}, path);
  }
  // Weights were drawn from N(0, 0.2): a sane spread, nothing NaN.
  std::vector<float> w = f.tensors.at("transformer.wte.weight").to_vector();
  double ss = 0;
  int non_finite = 0;
  for (float v : w) {
    non_finite += !std::isfinite(v);
    ss += double(v) * v;
  }
  CHECK(non_finite == 0);
  CHECK(std::sqrt(ss / w.size()) == doctest::Approx(0.2).epsilon(0.1));
}
