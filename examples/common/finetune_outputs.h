#pragma once
// What finetune leaves in its --out folder, and the table it prints at the end:
//   adapter.safetensors  the LoRA adapter (lowrank's format), at the best valid loss
//   model.safetensors    ft / ft-top2 / bitfit: the whole fine-tuned model (a base for generate)
//   metrics.json         the run: options, data, every step's loss, the curve, the best step, speed
//   curve.svg            the smoothed training loss and the valid loss of every evaluation
//   checkpoint.safetensors  the training state (--save-every, --stop-after), for --resume
// plus --save-peft DIR (a peft adapter directory) and --export-merged DIR (a Hugging Face GPT-2
// directory with the adapter merged in).
#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "examples/common/cli.h"
#include "examples/common/svg_lines.h"
#include "examples/common/train_loop.h"
#include "lora/lora.h"
#include "nn/checkpoint.h"
#include "nn/hf_gpt2.h"

namespace lowrank::examples {

// Methods whose trained model is a plain GPT (a file generate and finetune --init read).
inline bool plain_gpt_method(const std::string& method) {
  return method == "ft" || method == "ft-top2" || method == "bitfit";
}

// Puts the best valid loss's tensors into the model (the weights the outputs carry); a no-op without
// validation. Returns the step whose weights the model now has.
inline int64_t use_best_weights(nn::GPT& model, const TrainResult& r) {
  if (r.best.empty()) return static_cast<int64_t>(r.losses.size());  // steps done, resumed ones included
  const std::vector<nn::NamedTensor> params = trainable_tensors(model);
  for (size_t i = 0; i < params.size(); ++i) {
    Tensor dst = params[i].tensor;
    dst.copy_(r.best[i]);
  }
  return r.best_step;
}

// The training loss smoothed as the progress bar shows it (EMA 0.95), at most 400 points, and the
// valid loss of every evaluation.
inline void write_curve_svg(const std::string& path, const TrainResult& r) {
  svg::Series train{"train loss (EMA)", {}, {}}, valid{"valid loss", {}, {}};
  const size_t every = std::max<size_t>(1, r.losses.size() / 400);
  double ema = 0.0;
  for (size_t i = 0; i < r.losses.size(); ++i) {
    ema = i == 0 ? r.losses[0] : 0.95 * ema + 0.05 * r.losses[i];
    if ((i + 1) % every == 0 || i + 1 == r.losses.size())
      train.x.push_back(static_cast<double>(i + 1)), train.y.push_back(ema);
  }
  for (const CurvePoint& p : r.curve)
    if (std::isfinite(p.valid_loss)) valid.x.push_back(static_cast<double>(p.step)), valid.y.push_back(p.valid_loss);
  std::vector<svg::Series> series = {train};
  if (!valid.x.empty()) series.push_back(valid);
  svg::write_line_chart(path, "finetune: learning curve", "step", "loss (nats per trained token)", series);
}

inline nlohmann::json result_json(const TrainResult& r, int64_t exported_step) {
  auto num = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(); };
  return {{"steps", r.steps},
          {"examples_seen", r.examples},
          {"train_seconds", r.seconds},
          {"train_tokens_per_s", r.tokens_per_s},
          {"final_train_loss", num(r.final_loss)},
          {"valid_loss", num(r.valid_loss)},
          {"valid_perplexity", num(std::exp(r.valid_loss))},
          {"best_step", r.best_step},
          {"best_valid_loss", num(r.best_valid_loss)},
          {"best_valid_perplexity", num(std::exp(r.best_valid_loss))},
          {"exported_step", exported_step},
          {"resumed_at", r.first_step},
          {"losses", r.losses},
          {"curve", curve_json(r.curve)}};
}

inline void print_summary(const TrainResult& r, int64_t exported_step, const std::string& out) {
  std::vector<std::vector<std::string>> rows = {
      {"steps", std::to_string(r.steps)},
      {"examples seen", std::to_string(r.examples)},
      {"train loss (EMA)", fixed(r.final_loss)},
      {"valid loss / perplexity",
       std::isfinite(r.valid_loss) ? fixed(r.valid_loss) + " / " + fixed(std::exp(r.valid_loss), 2) : "-"},
      {"best valid loss (step)",
       std::isfinite(r.best_valid_loss) ? fixed(r.best_valid_loss) + " (" + std::to_string(r.best_step) + ")" : "-"},
      {"exported weights", "step " + std::to_string(exported_step)},
      {"training time", format_duration(r.seconds) + ", " + fixed(r.tokens_per_s, 0) + " tokens/s"},
      {"outputs", out}};
  print_table({"run", ""}, rows);
}

}  // namespace lowrank::examples
