#pragma once
// The unmerged, mixed-adapter forward of lora::AdapterSet (lora/adapter_set.h): one batch whose rows
// use different adapters (Section 4.2 of the LoRA paper: "dynamically choose the LoRA modules to use
// for samples in a batch"), as Punica's and S-LoRA's segmented GEMMs do on GPUs.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "lora/adapter_set.h"
#include "nn/layers.h"

namespace lowrank::lora {

// What every module of one set shares: which slots hold an adapter, and which one is merged.
struct SetStatus {
  std::vector<char> loaded;     // by slot
  std::vector<char> embedding;  // by slot: the adapter adapts wte (mixed batches cannot serve it)
  std::string active;           // merged adapter ("" : none); rows need none merged
};

namespace cpu {
// One adapter's update of a module on raw host pointers: A (R, in), B (out, R), ΔW = scale · B A.
struct SegmentDelta {
  const float* A = nullptr;  // nullptr: this adapter leaves the module alone
  const float* B = nullptr;
  int64_t R = 0;
  float scale = 0.f;
};
// y (N, T, out) += scale_a · (x_a A_aᵀ) B_aᵀ for every adapter a, x_a the rows n with row_slot[n] == a
// (x (N, T, in); row_slot (N), -1 or a slot < n_slots). Each adapter's rows are gathered into one
// block (used in place when they are consecutive), so an adapter costs two GEMMs, (M, in)·(in, R)
// and (M, R)·(R, out) with M = its rows · T, wherever its rows sit in the batch.
void lora_segmented_forward(float* y, const float* x, const int32_t* row_slot, int64_t N, int64_t T, int64_t in,
                            int64_t out, const SegmentDelta* deltas, int64_t n_slots);
}  // namespace cpu

// A plain Linear sharing base's W and b (no copy).
std::unique_ptr<nn::Linear> shared_linear(const nn::Linear& base);

// A linear of the base inside an AdapterSet: W0 and b shared with the plain Linear it replaced, plus
// the set's table of adapters for this module. forward(x, ctx) is x W0ᵀ + b, plus each row's adapter
// when ctx.row_adapters is set (inference only): on the CPU cpu::lora_segmented_forward; on a GPU two
// cuBLAS GEMMs per run of consecutive rows with one adapter.
class SegmentedLinear : public nn::Linear {
 public:
  SegmentedLinear(const nn::Linear& base, std::shared_ptr<SlotTable> table, std::shared_ptr<const SetStatus> status);
  Tensor forward(const Tensor& x, const nn::Context& ctx) override;

  std::shared_ptr<SlotTable> table;
  std::shared_ptr<const SetStatus> status;
};

}  // namespace lowrank::lora
