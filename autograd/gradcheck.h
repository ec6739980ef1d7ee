#pragma once
// Finite-difference gradient checker for any op or module.
// Projects the output on a fixed random direction R, L(x) = Σ out·R (accumulated in double),
// and compares the tape's gradient dL/dx (seeded with R) to central differences
// (L(x+h) - L(x-h)) / (2h) element by element: |analytic - numeric| <= atol + rtol·max(|a|, |n|).
// Before backward every input's .grad is pre-filled with noise that is subtracted afterwards,
// so a backward that assigns (=) instead of accumulating (+=) fails the check too.
#include <functional>
#include <string>
#include <vector>

#include "autograd/tape.h"

namespace lowrank::autograd {

struct GradCheckOptions {
  float eps = 1e-2f;  // step h; float32 forward, so not smaller (rounding would dominate)
  double atol = 1e-3;
  double rtol = 1e-2;
  int max_per_input = 48;  // elements checked per input (a seeded sample when the input is larger)
  uint64_t seed = 7;
};

struct GradCheckResult {
  bool ok = true;
  int checked = 0;
  double max_abs_err = 0.0;
  std::string worst;  // "input 1 [17]: analytic 0.31 numeric 0.28"
};

// f recomputes the output from `inputs` (contiguous CPU leaves with requires_grad set).
GradCheckResult gradcheck(const std::function<Tensor()>& f, std::vector<Tensor> inputs,
                          const GradCheckOptions& opt = GradCheckOptions());

}  // namespace lowrank::autograd
