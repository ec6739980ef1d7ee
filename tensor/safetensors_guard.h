#pragma once
// The guards around safetensors files (internal to tensor/safetensors.cpp, kept apart for size):
// no non-finite values written, per-tensor CRC-32 checksums, and the temporary files of dead
// processes removed. See tensor/safetensors.h for what callers are promised.
#include <string>
#include <utility>
#include <vector>

#include "tensor/safetensors.h"

namespace lowrank::tensor::detail {

inline constexpr const char* kChecksumKey = "lowrank.crc32";  // the "__metadata__" key holding them

// Throws, naming path and tensor, when the contiguous CPU tensor t holds a NaN or an infinity:
// a diverged model is never written (over a good checkpoint or anywhere else).
void check_finite(const std::string& path, const std::string& name, const Tensor& t);

// The kChecksumKey value: a JSON object {"<name>": "<crc32 hex>"} of each tensor's float32 values.
std::string checksum_json(const std::vector<std::pair<std::string, Tensor>>& items);

// Checks every tensor of f against the kChecksumKey entry of its metadata (then removed from it, so
// callers see the metadata they wrote). A file without the entry is not checked (older files, other
// writers); a malformed entry, a tensor without a checksum or a mismatch throws naming the tensor.
void verify_checksums(const std::string& path, SafetensorsFile& f);

// Removes "<path>.tmp.<pid>" files whose process no longer runs (a save killed midway leaves one).
void remove_stale_temporaries(const std::string& path);

}  // namespace lowrank::tensor::detail
