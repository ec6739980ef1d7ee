#pragma once
// Fine-tuning checkpoints for exact resume (finetune, finetune_e2e --save-every / --stop-after /
// --resume): only what trains is stored, so a LoRA checkpoint of GPT-2 is a few MB, not the base.
//   "param.<name>"  each trainable tensor
//   "best.<name>"   the same tensors at the best valid loss so far (absent before the first evaluation)
//   "opt.m.<name>", "opt.v.<name>"  AdamW's moments
// and metadata: format "lowrank-finetune", the run's fingerprint (the options that shape it), the step,
// the micro-batches drawn, the dropout RNG's state and the run's log (JSON). One safetensors file,
// written atomically (a temp file and a rename).
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "nn/module.h"
#include "optim/adamw.h"

namespace lowrank::optim {

struct FinetuneState {
  std::string fingerprint;
  int64_t step = 0;           // optimizer steps done
  int64_t batches_drawn = 0;  // micro-batches drawn from the epoch order
  std::string dropout_rng;    // tensor::Rng::state()
  std::string log;            // a JSON object (the caller's)
};

// trainable: the run's trainable tensors by name; best: empty, or one tensor per trainable one.
void save_finetune(const std::string& path, const std::vector<nn::NamedTensor>& trainable,
                   const std::vector<Tensor>& best, const AdamW& opt, const FinetuneState& state);

// Reads path and checks it against this run before anything changes: the format, the fingerprint, every
// trainable tensor (name and shape), the optimizer state, the step (at most max_step) and batch counts, the RNG state and
// that the log is a JSON object that check_log accepts (it throws lowrank::Error otherwise). Then copies the tensors into `trainable` and the moments into opt, and
// returns the state; `best` receives the best tensors (empty when the file has none). On an error
// (lowrank::Error naming the file) nothing was changed.
FinetuneState load_finetune(const std::string& path, const std::vector<nn::NamedTensor>& trainable, AdamW& opt,
                            const std::string& fingerprint, int64_t max_step, std::vector<Tensor>& best,
                            const std::function<void(const std::string&)>& check_log);

}  // namespace lowrank::optim
