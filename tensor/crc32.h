#pragma once
// CRC-32 (IEEE 802.3 polynomial 0xEDB88320, reflected, init and final xor 0xFFFFFFFF: the zlib/PNG
// checksum), for the per-tensor checksums our own checkpoints carry (tensor/safetensors.h).
//   crc32("123456789", 9) == 0xCBF43926   (the standard check value)
// Chainable: crc32(b, nb, crc32(a, na)) is the checksum of a followed by b.
#include <cstddef>
#include <cstdint>
#include <string>

namespace lowrank::tensor {

uint32_t crc32(const void* data, size_t n, uint32_t crc = 0);
std::string crc32_hex(uint32_t crc);  // 8 lower-case hex digits

}  // namespace lowrank::tensor
