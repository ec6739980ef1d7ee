#pragma once
// The compute precision policy (docs/precision.md). fp32, the default, is the reference every test
// holds the framework to. bf16 runs the GEMMs whose weight operand is frozen (requires_grad false: LoRA's
// W0, the layers a method leaves alone, the tied embedding read by a matmul) with bfloat16 operands,
// fp32 accumulation and an fp32 result (tensor/gemm_bf16.h on the CPU, cuBLAS on CUDA:
// autograd/weight_gemm.h); everything that trains (LoRA's A and B, biases, LayerNorm, a fully trained
// matrix) keeps fp32 weights and fp32 GEMMs, and so do the loss, softmax and the LayerNorm statistics.
//
// Why one setting per process and not a field of nn::Context or of each module: the decision needs two
// facts, "does this run want bf16" and "is this weight frozen". The second is already on the tensor
// (requires_grad), and the first is a property of the whole run, as the thread count is
// (tensor/parallel.h): a process trains one model at one precision. autograd::linear and matmul take
// no context (nn, lora's modules and the baselines call them directly), so threading a flag through
// every call site would touch dozens of signatures for the same answer everywhere. The setting is
// atomic, so a reader on any thread sees one value; PrecisionGuard scopes it for tests.
#include <string>

namespace lowrank::tensor {

enum class Precision { fp32, bf16 };

Precision precision();
void set_precision(Precision p);
const char* precision_name(Precision p);          // "fp32" | "bf16"
Precision parse_precision(const std::string& s);  // "fp32" | "bf16"; throws naming the value otherwise

// Sets the precision for a scope and restores the previous one when it ends.
class PrecisionGuard {
 public:
  explicit PrecisionGuard(Precision p) : prev_(precision()) { set_precision(p); }
  ~PrecisionGuard() { set_precision(prev_); }
  PrecisionGuard(const PrecisionGuard&) = delete;
  PrecisionGuard& operator=(const PrecisionGuard&) = delete;

 private:
  Precision prev_;
};

}  // namespace lowrank::tensor
