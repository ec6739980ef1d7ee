// The guards of safetensors saving and loading (tensor/safetensors_guard.h): a non-finite tensor is
// never written (a good file stays), per-tensor checksums catch corrupt data, and the temporary
// files of dead processes are removed by the next save.
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <string>

#include "tensor/safetensors.h"
#include "test_util.h"

using namespace lowrank;
using namespace lowrank::testing;
namespace fs = std::filesystem;

namespace {

long dead_pid() {  // the pid of a child that has exited and been reaped
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) ::_exit(0);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return pid;
}

}  // namespace

TEST_CASE("safetensors guard: a NaN or infinity is refused and the good file is kept") {
  TempDir tmp("finite");
  const std::string path = tmp.file("ckpt.safetensors");
  Rng rng(1);
  Tensor good = Tensor::randn({4, 5}, rng);
  save_safetensors(path, {{"w", good}});
  const std::string before = read_bytes(path);
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    Tensor diverged = good.clone();
    diverged.data()[7] = bad;
    diverged.data()[11] = -bad;
    const std::string msg = error_of([&] { save_safetensors(path, {{"a", good}, {"w", diverged}}); });
    CHECK(contains(msg, path));
    CHECK(contains(msg, "tensor 'w'"));
    CHECK(contains(msg, "2 non-finite values"));
    CHECK(contains(msg, "flat index 7"));
    CHECK(read_bytes(path) == before);  // byte for byte the last good checkpoint
    CHECK(tmp.entries() == std::vector<std::string>{"ckpt.safetensors"});
    CHECK(contains(error_of([&] { save_safetensors(path, {{"w", diverged}}, {}, "BF16"); }), "non-finite"));
  }
}

TEST_CASE("safetensors guard: F32 files carry checksums that catch corrupt data") {
  TempDir tmp("crc");
  const std::string path = tmp.file("ckpt.safetensors");
  Rng rng(2);
  Tensor a = Tensor::randn({8, 3}, rng), b = Tensor::randn({5}, rng);
  save_safetensors(path, {{"a", a}, {"b", b}}, {{"note", "x"}});
  SafetensorsFile f = load_safetensors(path);
  CHECK(f.metadata.size() == 1);  // the checksum entry is consumed, the caller's metadata kept
  CHECK(f.metadata.at("note") == "x");
  const std::string bytes = read_bytes(path);
  CHECK(contains(bytes, "lowrank.crc32"));

  // One flipped bit in the data section (the last byte belongs to tensor 'b', saved after 'a').
  std::string bad = bytes;
  bad.back() = static_cast<char>(bad.back() ^ 0x01);
  write_bytes(path, bad);
  std::string msg = error_of([&] { load_safetensors(path); });
  CHECK(contains(msg, path));
  CHECK(contains(msg, "tensor 'b' is corrupt"));

  // A checksum entry that does not cover a tensor, or is not JSON, is an error too.
  const std::string other = tmp.file("other.safetensors");
  save_safetensors(other, {{"a", a}});
  std::string text = read_bytes(other);
  const size_t at = text.find("\\\"a\\\"");  // the key inside the escaped metadata string
  REQUIRE(at != std::string::npos);
  text[at + 2] = 'z';  // {"z": ...}: tensor 'a' has no checksum now
  write_bytes(other, text);
  CHECK(contains(error_of([&] { load_safetensors(other); }), "tensor 'a' has no checksum"));

  // BF16 exports carry none (their README pins their sha256), and the key is reserved.
  save_safetensors(path, {{"a", a}}, {}, "BF16");
  CHECK_FALSE(contains(read_bytes(path), "lowrank.crc32"));
  CHECK(load_safetensors(path).metadata.empty());
  CHECK(contains(error_of([&] { save_safetensors(path, {{"a", a}}, {{"lowrank.crc32", "{}"}}); }), "reserved"));
}

TEST_CASE("safetensors guard: a save removes the temporary files of dead processes only") {
  TempDir tmp("stale");
  const std::string path = tmp.file("ckpt.safetensors");
  const std::string dead = path + ".tmp." + std::to_string(dead_pid());
  const std::string alive = path + ".tmp." + std::to_string(static_cast<long>(::getppid()));
  const std::string unrelated = tmp.file("other.safetensors.tmp.1");
  for (const std::string& p : {dead, alive, unrelated}) write_bytes(p, "partial");
  save_safetensors(path, {{"w", Tensor::from({1.f, 2.f}, {2})}});
  CHECK_FALSE(fs::exists(dead));
  CHECK(fs::exists(alive));      // a save in progress in another (live) process is left alone
  CHECK(fs::exists(unrelated));  // another file's temporaries are that file's business
  CHECK(fs::exists(path));
}
