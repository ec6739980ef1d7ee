// The shared helpers of tensor/strings.h and tensor/file_io.h.
#include <string>
#include <vector>

#include "data/text.h"
#include "tensor/error.h"
#include "tensor/file_io.h"
#include "tensor/strings.h"
#include "test_util.h"

using namespace lowrank;
using namespace lowrank::testing;

TEST_CASE("strings: ends_with and strip (Python's str.strip() for ASCII whitespace)") {
  CHECK(ends_with("h.0.attn.bias", "bias"));
  CHECK(ends_with("bias", "bias"));
  CHECK(ends_with("x", ""));
  CHECK_FALSE(ends_with("ias", "bias"));
  CHECK_FALSE(ends_with("bias.x", "bias"));
  CHECK(strip("  a b\t\r\n") == "a b");
  CHECK(strip("\f\v") == "");
  CHECK(strip("") == "");
  CHECK(strip("x") == "x");
}

TEST_CASE("file_io: write_file_atomic replaces a file whole, leaves no temporary, and names the path on failure") {
  TempDir tmp("file_io");
  const std::string path = tmp.file("out.json");
  write_file_atomic(path, std::string(1000, 'a'));
  write_file_atomic(path, "short\n");
  CHECK(data::read_file(path) == "short\n");
  // Pieces through the sink arrive in order.
  write_file_atomic(path, [](const ByteSink& write) {
    write("ab", 2);
    write("", 0);
    write("c", 1);
  });
  CHECK(data::read_file(path) == "abc");
  CHECK(tmp.entries() == std::vector<std::string>{"out.json"});

  // A missing folder: the error names the path; a throwing fill leaves the old file and no temporary.
  const std::string missing = tmp.file("no_such_dir/out.json");
  CHECK(contains(error_of([&] { write_file_atomic(missing, "x"); }), missing));
  CHECK_THROWS(write_file_atomic(path, [](const ByteSink& write) {
    write("half", 4);
    throw Error("stop");
  }));
  CHECK(data::read_file(path) == "abc");
  CHECK(tmp.entries() == std::vector<std::string>{"out.json"});
  // A folder in the way cannot be replaced.
  const std::string dir = tmp.file("a_dir");
  std::filesystem::create_directories(dir);
  const std::string msg = error_of([&] { write_file_atomic(dir, "x", "config"); });
  CHECK(contains(msg, dir + ": cannot save config: rename"));
}
