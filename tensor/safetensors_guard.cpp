#include "tensor/safetensors_guard.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "tensor/crc32.h"
#include "tensor/error.h"

namespace lowrank::tensor::detail {

namespace {

uint32_t crc_of(const Tensor& t) {  // t: contiguous CPU float32
  return crc32(t.data(), static_cast<size_t>(t.numel()) * sizeof(float));
}

}  // namespace

void check_finite(const std::string& path, const std::string& name, const Tensor& t) {
  const float* p = t.data();
  const int64_t n = t.numel();
  int64_t bad = 0, first = -1;
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(p[i])) {
      if (first < 0) first = i;
      ++bad;
    }
  }
  LR_CHECK(bad == 0, path, ": not saved: tensor '", name, "' ", t.shape(), " holds ", bad, " non-finite value",
           bad == 1 ? "" : "s", " (the first, ", p[first], ", at flat index ", first, "); a file already at '", path,
           "' is left as it was");
}

std::string checksum_json(const std::vector<std::pair<std::string, Tensor>>& items) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [name, t] : items) j[name] = crc32_hex(crc_of(t));
  return j.dump();
}

void verify_checksums(const std::string& path, SafetensorsFile& f) {
  auto it = f.metadata.find(kChecksumKey);
  if (it == f.metadata.end()) return;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(it->second);
  } catch (const nlohmann::json::exception&) {
    throw Error(cat(path, ": metadata '", kChecksumKey, "' is not JSON"));
  }
  LR_CHECK(j.is_object(), path, ": metadata '", kChecksumKey, "' is not a JSON object");
  for (const auto& [name, t] : f.tensors) {
    auto c = j.find(name);
    LR_CHECK(c != j.end() && c->is_string(), path, ": tensor '", name, "' has no checksum in '", kChecksumKey, "'");
    const std::string have = crc32_hex(crc_of(t));
    LR_CHECK(have == c->get<std::string>(), path, ": tensor '", name, "' is corrupt: its data has CRC-32 ", have,
             ", the file's header says ", c->get<std::string>());
  }
  f.metadata.erase(it);
}

void remove_stale_temporaries(const std::string& path) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  const std::string prefix = target.filename().string() + ".tmp.";
  std::error_code ec;
  fs::directory_iterator dir(target.has_parent_path() ? target.parent_path() : fs::path("."), ec);
  if (ec) return;  // the save itself reports a missing folder
  for (const fs::directory_entry& e : dir) {
    const std::string name = e.path().filename().string();
    if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string digits = name.substr(prefix.size());
    if (digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos) continue;
    const long pid = std::stol(digits);
    if (pid <= 0 || pid == static_cast<long>(::getpid())) continue;
    // kill(pid, 0) probes without signalling: ESRCH means no such process (EPERM: alive, not ours).
    if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) fs::remove(e.path(), ec);
  }
}

}  // namespace lowrank::tensor::detail
