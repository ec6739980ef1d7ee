#include "tensor/file_io.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "tensor/error.h"

namespace lowrank {

namespace {
std::string errno_text() { return std::strerror(errno); }
}  // namespace

void write_file_atomic(const std::string& path, const std::function<void(const ByteSink&)>& fill, const char* what) {
  const std::string tmp = cat(path, ".tmp.", static_cast<long>(::getpid()));
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  LR_CHECK(f != nullptr, path, ": cannot create temporary file '", tmp, "' (", errno_text(), ")");
  std::string failure;
  const ByteSink write = [&](const void* p, size_t len) {
    if (failure.empty() && len > 0 && std::fwrite(p, 1, len, f) != len)
      failure = cat("write failed (", errno_text(), ")");
  };
  try {
    fill(write);
  } catch (...) {
    std::fclose(f);
    std::remove(tmp.c_str());
    throw;
  }
  if (failure.empty() && std::fflush(f) != 0) failure = cat("flush failed (", errno_text(), ")");
  if (failure.empty() && ::fsync(fileno(f)) != 0) failure = cat("fsync failed (", errno_text(), ")");
  if (std::fclose(f) != 0 && failure.empty()) failure = cat("close failed (", errno_text(), ")");
  if (failure.empty() && std::rename(tmp.c_str(), path.c_str()) != 0)
    failure = cat("rename of '", tmp, "' failed (", errno_text(), ")");
  if (!failure.empty()) {
    std::remove(tmp.c_str());
    throw Error(cat(path, ": cannot save ", what, ": ", failure));
  }
}

void write_file_atomic(const std::string& path, std::string_view bytes, const char* what) {
  write_file_atomic(
      path, [&](const ByteSink& write) { write(bytes.data(), bytes.size()); }, what);
}

}  // namespace lowrank
