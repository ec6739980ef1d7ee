// The README's "Use it on your own data" commands, run as written on a small file: the block's lines
// are taken from README.md itself, so the README cannot drift from the programs. The only change: each
// to_jsonl line writes its first 24 records (--limit), so that the run takes seconds, not 20 minutes.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <sstream>

#include "cli_util.h"
#include "test_util.h"

using namespace lowrank::testing;
namespace fs = std::filesystem;

namespace {

// The shell commands of the first ```sh block after `heading`, continuation lines joined.
std::vector<std::string> readme_commands(const std::string& heading) {
  const std::string readme = read_bytes(std::string(LOWRANK_SOURCE_DIR) + "/README.md");
  const size_t h = readme.find(heading);
  REQUIRE(h != std::string::npos);
  const size_t b = readme.find("```sh\n", h) + 6, e = readme.find("```", b);
  std::istringstream in(readme.substr(b, e - b));
  std::vector<std::string> out;
  std::string line, cmd;
  while (std::getline(in, line)) {
    const bool more = !line.empty() && line.back() == '\\';
    cmd += more ? line.substr(0, line.size() - 1) : line;
    if (!more) out.push_back(cmd), cmd.clear();
  }
  return out;
}

}  // namespace

TEST_CASE("own data: finetune and generate run the README's own-data commands as written (on 24 records)") {
  TempDir t("readme");
  fs::create_directory_symlink(LOWRANK_BINARY_DIR, t.dir / "build");
  fs::create_directory_symlink(std::string(LOWRANK_SOURCE_DIR) + "/data", t.dir / "data");
  const std::vector<std::string> cmds = readme_commands("## Use it on your own data");
  int ran = 0;
  for (std::string cmd : cmds) {
    if (cmd.rfind("tools/setup.sh", 0) == 0) cmd = cmd.substr(cmd.find("&& ") + 3);  // the build is this test's
    if (cmd.rfind("./build/to_jsonl", 0) == 0) cmd += " --limit 24";
    CAPTURE(cmd);
    const int rc = std::system(("cd " + t.dir.string() + " && " + cmd + " >/dev/null 2>" + t.file("err.txt")).c_str());
    CAPTURE(read_bytes(t.file("err.txt")));
    REQUIRE(rc == 0);
    ++ran;
  }
  CHECK(ran == 5);
  CHECK(fs::exists(t.file("out/sst2/adapter.safetensors")));
  CHECK(fs::exists(t.file("out/sst2/metrics.json")));
  const std::string gen = read_bytes(t.file("out/sst2-dev-gen.jsonl"));
  CHECK(std::count(gen.begin(), gen.end(), '\n') == 24);
  CHECK(contains(gen, "\"expected\""));
}
