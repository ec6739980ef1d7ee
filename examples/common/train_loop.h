#pragma once
// The fine-tuning loop shared by finetune, finetune_e2e, ablation and subspace. One optimizer step:
//   zero_grad -> (batch -> forward -> masked loss -> backward) x accum -> clip -> AdamW step
// With accum > 1 each micro-batch's loss is scaled by 1/accum, so the gradient is the mean of the
// micro-batches' (each itself a mean over its trained tokens).
//
// Exact resume: a training checkpoint (--save-every, --stop-after) holds the trainable tensors, AdamW's
// moments, the step, the micro-batches drawn so far, the dropout RNG's state, the log (every loss, the
// curve) and the best valid loss's tensors. Resuming rebuilds the run from the same options, loads
// these, and replays the batch order to where it stopped (drawing indices only): the remaining steps
// see the same batches and dropout masks, so the losses equal the uninterrupted run's bit for bit.
//
// Under mpirun -np N (data_parallel.h, docs/data_parallel.md) each rank trains on its B/N slice of every
// batch, scales its loss by its share of the batch's trained tokens, and the gradients are summed
// before clipping, so the step is the one-process step of the whole batch; rank 0 alone writes.
#include <cmath>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "examples/common/batches.h"
#include "examples/common/data_parallel.h"
#include "examples/common/finetune_train.h"
#include "examples/common/train_log.h"
#include "optim/adamw.h"
#include "optim/finetune_checkpoint.h"

namespace lowrank::examples {

struct CheckpointOptions {
  std::string path;         // the training checkpoint written by save_every / stop_after ("": none)
  int64_t save_every = 0;   // steps between checkpoints (0: none)
  int64_t stop_after = 0;   // stop once this many steps are done, with a checkpoint (0: run to the end)
  std::string resume;       // a checkpoint to continue from ("": start fresh)
  std::string fingerprint;  // the options that shape the run; a checkpoint of another run is refused
};

// The options that shape a run's trajectory, as one JSON line: a checkpoint records it and a resume
// must match it (the thread count and the evaluation cadence may change between the two).
inline std::string run_fingerprint(const FinetuneOptions& o, const lora::MethodConfig& mc, const std::string& init,
                                   const std::string& adapter, const std::string& data) {
  nlohmann::json j = {{"init", init},
                      {"adapter", adapter},
                      {"data", data},
                      {"method", mc.method},
                      {"rank", mc.lora.r},
                      {"alpha", mc.lora.alpha},
                      {"targets", mc.lora.targets},
                      {"dropout", mc.lora.dropout},
                      {"adapter_dim", mc.adapter_dim},
                      {"prefix_len", mc.prefix_len},
                      {"batch_size", o.batch_size},
                      {"accum", o.accum},
                      {"steps", o.steps},
                      {"epochs", o.epochs},
                      {"warmup", o.warmup},
                      {"decay", o.decay},
                      {"lr", o.lr},
                      {"weight_decay", o.weight_decay},
                      {"label_smoothing", o.label_smoothing},
                      {"clip", o.clip},
                      {"max_len", o.max_len},
                      {"seed", o.seed}};
  // the LoRA variants enter only when set, so the runs before them keep their fingerprints
  if (mc.lora.use_rslora) j["use_rslora"] = true;
  if (mc.lora.init_lora_weights != "gaussian") j["init_lora_weights"] = mc.lora.init_lora_weights;
  if (mc.lora.use_dora) j["use_dora"] = true;
  if (o.loraplus_lr_ratio != 0.f && o.loraplus_lr_ratio != 1.f) j["loraplus_lr_ratio"] = o.loraplus_lr_ratio;
  if (o.precision != tensor::Precision::fp32) j["precision"] = tensor::precision_name(o.precision);
  return j.dump();
}

// Trains m on `train` for train_steps(o) steps (valid: the curve's and the best step's split, or
// nullptr). Returns what the log gathered; the model ends with its last step's weights.
inline TrainResult train_loop(FinetuneModel& m, const data::SftDataset& train, const data::SftDataset* valid,
                              const FinetuneOptions& o, const CheckpointOptions& ck = {}) {
  nn::GPT& model = *m.model;
  optim::AdamW& opt = *m.opt;  // state only for the method's trainable tensors
  const int64_t steps = train_steps(o, train.size());
  const optim::Schedule sched = make_schedule(o, steps);
  const bool parallel = optim::dist::size() > 1;
  check_batch_split(o.batch_size);
  optim::dist::check_same("training setups",
                          {{"run", ck.fingerprint}, {"train examples", std::to_string(train.size())}});
  EpochBatches<data::SftDataset> batches(train, o.batch_size, o.seed, parallel ? rank_slice : nullptr);
  Rng drop_rng(o.seed + 1), rank_rng;
  TrainLog log(steps, o, valid);
  int64_t drawn = 0, step = 0;
  if (!ck.resume.empty()) {  // a failed load leaves the model, optimizer and log as they are
    std::vector<Tensor> best;
    TrainLog::State logged;
    const optim::FinetuneState s =
        optim::load_finetune(ck.resume, trainable_tensors(model), opt, ck.fingerprint, steps, best,
                             [&](const std::string& t) { logged = TrainLog::parse_state(t); });
    drop_rng.set_state(s.dropout_rng);
    log.restore(std::move(logged), s.step, std::move(best));
    for (drawn = 0; drawn < s.batches_drawn; ++drawn) batches.skip();
    step = s.step;
  }
  broadcast_state(model.named_parameters(), &opt);  // every rank starts from rank 0's bits
  for (; step < steps; ++step) {
    opt.zero_grad();
    if (parallel && optim::dist::rank() > 0) rank_rng = Rng(rank_dropout_seed(o.seed, optim::dist::rank(), step));
    Rng& rng = parallel && optim::dist::rank() > 0 ? rank_rng : drop_rng;
    float l = 0.f;
    for (int64_t k = 0; k < o.accum; ++k, ++drawn) {
      const data::SftBatch b = batches.next();
      // This rank's share of the global batch's trained tokens (1 alone), and the batch's size.
      std::vector<double> global = {static_cast<double>(b.tokens), static_cast<double>(b.B),
                                    static_cast<double>(b.B * b.T)};
      optim::dist::allreduce_sum(global);
      const float share = parallel && global[0] > 0 ? static_cast<float>(b.tokens / global[0]) : 1.f;
      Tensor loss = sft_loss(model, b, o.label_smoothing, nn::Context{true, &rng});  // forward
      l += loss.item() * share / static_cast<float>(o.accum);
      const float weight = share / static_cast<float>(o.accum);
      autograd::backward(weight == 1.f ? loss : autograd::scale(loss, weight));
      log.count(static_cast<int64_t>(global[1]), global[2]);
    }
    if (parallel) {  // the whole batch's gradient and loss on every rank
      sum_gradients(model.named_parameters());
      l = static_cast<float>(optim::dist::allreduce_sum(static_cast<double>(l)));
    }
    LR_CHECK(std::isfinite(l), "loss is ", l, " at step ", step + 1, " (lower --lr)");
    if (o.clip > 0.f) optim::clip_grad_norm(model.named_parameters(), o.clip);
    opt.step(sched.lr_at(step));
    log.update(step, l, model);
    const bool stop = ck.stop_after > 0 && step + 1 == ck.stop_after && step + 1 < steps;
    if (optim::dist::is_root() && !ck.path.empty() &&
        (stop || (ck.save_every > 0 && (step + 1) % ck.save_every == 0))) {
      const std::filesystem::path dir = std::filesystem::path(ck.path).parent_path();
      if (!dir.empty()) std::filesystem::create_directories(dir);
      optim::save_finetune(ck.path, trainable_tensors(model), log.best(), opt,
                           {ck.fingerprint, step + 1, drawn, drop_rng.state(), log.state()});
    }
    if (stop) return log.finish(++step, model);
  }
  return log.finish(step, model);
}

}  // namespace lowrank::examples
