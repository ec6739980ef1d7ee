#pragma once
// SHA-256 (FIPS 180-4), for checking that a shipped file is the one its README names
// (data/assets/*/README.md give the sha256 of every committed checkpoint).
//   std::string hex = lowrank::data::sha256_file("data/assets/gpt-e2e-base5/gpt-e2e-base5.safetensors");
#include <string>

namespace lowrank::data {

// Lower-case hex digest (64 characters) of `bytes`.
std::string sha256_hex(const std::string& bytes);
// Lower-case hex digest of the file's contents; throws lowrank::Error naming the file if it cannot be read.
std::string sha256_file(const std::string& path);

}  // namespace lowrank::data
