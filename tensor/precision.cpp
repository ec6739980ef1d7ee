#include "tensor/precision.h"

#include <atomic>

#include "tensor/error.h"

namespace lowrank::tensor {

namespace {
std::atomic<Precision> g_precision{Precision::fp32};
}  // namespace

Precision precision() { return g_precision.load(std::memory_order_relaxed); }
void set_precision(Precision p) { g_precision.store(p, std::memory_order_relaxed); }

const char* precision_name(Precision p) { return p == Precision::bf16 ? "bf16" : "fp32"; }

Precision parse_precision(const std::string& s) {
  if (s == "fp32") return Precision::fp32;
  if (s == "bf16") return Precision::bf16;
  throw Error(cat("unknown precision '", s, "' (expected fp32 or bf16)"));
}

}  // namespace lowrank::tensor
