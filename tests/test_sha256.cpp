// data::sha256: the FIPS 180-4 / NIST example digests, a multi-block message, and a file.
#include <fstream>

#include "data/sha256.h"
#include "test_util.h"

using namespace lowrank;
using namespace lowrank::testing;

TEST_CASE("sha256: NIST example digests") {
  CHECK(data::sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(data::sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(data::sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  CHECK(data::sha256_hex(std::string(1000000, 'a')) ==
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_CASE("sha256: a file hashes like its bytes, a missing file is an error naming it") {
  TempDir tmp("sha256");
  std::string bytes;
  for (int i = 0; i < 200000; ++i) bytes += static_cast<char>((i * 7919) & 0xff);  // > one read buffer
  const std::string path = tmp.file("blob.bin");
  std::ofstream(path, std::ios::binary) << bytes;
  CHECK(data::sha256_file(path) == data::sha256_hex(bytes));
  CHECK(error_of([&] { data::sha256_file(tmp.file("none.bin")); }).find("none.bin: cannot open") != std::string::npos);
}
