#include "tensor/random.h"

#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "tensor/error.h"

namespace lowrank::tensor {

namespace {
uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
}  // namespace

Rng::Rng(uint64_t seed) {
  for (auto& s : s_) s = splitmix64(seed);
}

uint64_t Rng::next_u64() {
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

float Rng::uniform() { return static_cast<float>(next_u64() >> 40) * (1.0f / 16777216.0f); }

float Rng::normal() {
  if (have_spare_) {
    have_spare_ = false;
    return spare_;
  }
  // Box-Muller on (0,1] x [0,1): u1 never 0 so log is finite.
  double u1 = (static_cast<double>(next_u64() >> 11) + 1.0) * (1.0 / 9007199254740992.0);
  double u2 = static_cast<double>(next_u64() >> 11) * (1.0 / 9007199254740992.0);
  double r = std::sqrt(-2.0 * std::log(u1));
  double th = 2.0 * M_PI * u2;
  spare_ = static_cast<float>(r * std::sin(th));
  have_spare_ = true;
  return static_cast<float>(r * std::cos(th));
}

int64_t Rng::randint(int64_t n) { return static_cast<int64_t>(next_u64() % static_cast<uint64_t>(n)); }

Rng Rng::split() { return Rng(next_u64()); }

std::string Rng::state() const {
  uint32_t spare_bits;
  std::memcpy(&spare_bits, &spare_, sizeof spare_bits);
  char buf[128];
  std::snprintf(buf, sizeof buf, "%016" PRIx64 " %016" PRIx64 " %016" PRIx64 " %016" PRIx64 " %d %08" PRIx32, s_[0],
                s_[1], s_[2], s_[3], have_spare_ ? 1 : 0, spare_bits);
  return buf;
}

void Rng::set_state(const std::string& state) {
  uint64_t s[4];
  int have = 0, used = 0;
  uint32_t spare_bits = 0;
  const int n = std::sscanf(state.c_str(), "%16" SCNx64 " %16" SCNx64 " %16" SCNx64 " %16" SCNx64 " %d %8" SCNx32 "%n",
                            &s[0], &s[1], &s[2], &s[3], &have, &spare_bits, &used);
  LR_CHECK(n == 6 && static_cast<size_t>(used) == state.size() && (have == 0 || have == 1) &&
               (s[0] | s[1] | s[2] | s[3]) != 0,
           "Rng::set_state: malformed state '", state, "'");
  std::memcpy(s_, s, sizeof s_);
  have_spare_ = have == 1;
  std::memcpy(&spare_, &spare_bits, sizeof spare_);
}

}  // namespace lowrank::tensor
