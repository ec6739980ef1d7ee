#pragma once
// Writing a file atomically: the one implementation behind safetensors, the JSON configs and the
// examples' outputs.
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace lowrank {

// Appends len bytes at data to the file being written.
using ByteSink = std::function<void(const void* data, size_t len)>;

// Writes path so that a reader, or a crash midway, never sees half a file: the bytes go to
// "<path>.tmp.<pid>" in the same folder, are flushed and fsynced, and the temporary is renamed over
// path in one step. `fill` calls the sink once per piece, so a large file is never assembled in
// memory. On failure the temporary is removed and Error("<path>: cannot save <what>: <why>") is
// thrown; an existing file at path is left as it was.
void write_file_atomic(const std::string& path, const std::function<void(const ByteSink&)>& fill,
                       const char* what = "file");
void write_file_atomic(const std::string& path, std::string_view bytes, const char* what = "file");

}  // namespace lowrank
