#pragma once
// Deterministic RNG: xoshiro256** seeded by splitmix64, Box-Muller normals.
// Implemented here (not std::normal_distribution) so a seed gives the same numbers
// with every standard library and compiler.
#include <cstdint>
#include <string>

namespace lowrank::tensor {

class Rng {
 public:
  explicit Rng(uint64_t seed = 1337);
  uint64_t next_u64();
  float uniform();  // [0, 1)
  float uniform(float lo, float hi) { return lo + (hi - lo) * uniform(); }
  float normal();              // N(0, 1)
  int64_t randint(int64_t n);  // [0, n)
  Rng split();                 // an independent stream derived from this one

  // The whole state as text (four hex words, the spare normal): a training checkpoint stores it, and
  // set_state continues the stream exactly where it was. set_state throws on a malformed string.
  std::string state() const;
  void set_state(const std::string& state);

 private:
  uint64_t s_[4];
  bool have_spare_ = false;
  float spare_ = 0.f;
};

}  // namespace lowrank::tensor
