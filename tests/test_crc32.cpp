// CRC-32 (tensor/crc32.h): the standard check value, chaining, and every length against a plain
// bit-at-a-time reference (the slicing-by-4 path and the byte tail).
#include <string>
#include <vector>

#include "tensor/crc32.h"
#include "test_util.h"

using namespace lowrank::tensor;

namespace {

uint32_t crc32_bitwise(const std::string& s) {  // the definition, one bit at a time
  uint32_t c = 0xFFFFFFFFu;
  for (unsigned char b : s) {
    c ^= b;
    for (int k = 0; k < 8; ++k) c = (c & 1u) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
  }
  return ~c;
}

}  // namespace

TEST_CASE("crc32: check value, empty input, hex") {
  CHECK(crc32("123456789", 9) == 0xCBF43926u);
  CHECK(crc32("", 0) == 0u);
  CHECK(crc32("a", 1) == 0xE8B7BE43u);
  CHECK(crc32_hex(0xCBF43926u) == "cbf43926");
  CHECK(crc32_hex(0x0000ABCDu) == "0000abcd");
}

TEST_CASE("crc32: equals the bitwise definition at every length and chains") {
  std::string s;
  for (int i = 0; i < 67; ++i) s.push_back(static_cast<char>((i * 131 + 7) & 0xff));
  for (size_t n = 0; n <= s.size(); ++n) {
    const std::string part = s.substr(0, n);
    CHECK(crc32(part.data(), n) == crc32_bitwise(part));
    const size_t cut = n / 3;  // any split gives the same checksum as the whole
    CHECK(crc32(part.data() + cut, n - cut, crc32(part.data(), cut)) == crc32_bitwise(part));
  }
}
