#pragma once
// Learning-rate schedules: linear warmup, then linear or cosine decay to min_lr at total_steps.
#include <cstdint>
#include <string>

namespace lowrank::optim {

struct Schedule {
  float base_lr = 1e-3f;
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;
  std::string decay = "cosine";  // "cosine" | "linear" | "constant"
  float min_lr = 0.f;

  float lr_at(int64_t step) const;  // step counts from 0
  void validate() const;            // throws naming the bad field
};

}  // namespace lowrank::optim
