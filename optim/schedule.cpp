#include "optim/schedule.h"

#include <algorithm>
#include <cmath>

#include "tensor/error.h"

namespace lowrank::optim {

void Schedule::validate() const {
  LR_CHECK(decay == "cosine" || decay == "linear" || decay == "constant", "schedule: unknown decay '", decay,
           "' (cosine, linear or constant)");
  LR_CHECK(total_steps > 0 && warmup_steps >= 0, "schedule: need total_steps > 0 and warmup_steps >= 0");
}

float Schedule::lr_at(int64_t step) const {
  if (step < warmup_steps) return base_lr * static_cast<float>(step + 1) / static_cast<float>(warmup_steps);
  if (decay == "constant") return base_lr;
  const int64_t span = std::max<int64_t>(1, total_steps - warmup_steps);
  const float frac = std::min(1.f, static_cast<float>(step - warmup_steps) / static_cast<float>(span));
  const float shape = decay == "linear" ? 1.f - frac : 0.5f * (1.f + std::cos(static_cast<float>(M_PI) * frac));
  return min_lr + (base_lr - min_lr) * shape;
}

}  // namespace lowrank::optim
