#pragma once
// What a fine-tuning run reports while it trains (examples/common/train_loop.h): a progress bar with the
// smoothed loss (EMA 0.95), tokens/s and ETA; every step's loss; a point of the learning curve (valid
// loss) every eval_every steps, whose evaluation time is not training time; the best valid loss, with a
// copy of the trainable tensors at that step (what finetune exports); at the end the final valid loss.
// Its state goes into a training checkpoint (state / parse_state + restore), so a resumed run reports
// what the uninterrupted one would.
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/sft.h"
#include "examples/common/cli.h"
#include "examples/common/finetune_train.h"
#include "examples/common/results.h"

namespace lowrank::examples {

class TrainLog {
 public:
  TrainLog(int64_t steps, const FinetuneOptions& o, const data::SftDataset* valid) : o_(o), valid_(valid), bar_(steps) {
    r_.steps = steps;
  }

  void count(const data::SftBatch& b) { count(b.B, static_cast<double>(b.B * b.T)); }  // a micro-batch trained
  void count(int64_t examples, double tokens) {  // the whole batch's, over every rank
    tokens_ += tokens;
    r_.examples += examples;
  }

  // After step `step` (from 0), whose loss was l.
  void update(int64_t step, float l, nn::GPT& model) {
    loss_avg_ = r_.losses.empty() ? l : 0.95 * loss_avg_ + 0.05 * l;
    r_.losses.push_back(l);
    bar_.update(step + 1 - bar_offset_, loss_avg_, tokens_ / (timer_.seconds() + seconds_before_ - eval_s_));
    if (o_.eval_every > 0 && (step + 1) % o_.eval_every == 0 && step + 1 < r_.steps) {
      Timer et;
      evaluate(step + 1, model);
      std::fprintf(stderr, "\nstep %ld: %ld examples, valid loss %.4f (perplexity %.2f)\n", static_cast<long>(step + 1),
                   static_cast<long>(r_.examples), r_.curve.back().valid_loss, std::exp(r_.curve.back().valid_loss));
      eval_s_ += et.seconds();
    }
  }

  // step: the last step done (r_.steps, or where --stop-after stopped).
  TrainResult finish(int64_t step, nn::GPT& model) {
    bar_.finish();
    r_.seconds = timer_.seconds() + seconds_before_ - eval_s_;
    r_.tokens_per_s = r_.seconds > 0 ? tokens_ / r_.seconds : 0.0;
    r_.final_loss = static_cast<float>(loss_avg_);
    evaluate(step, model);
    r_.valid_loss = r_.curve.back().valid_loss;
    r_.best = best_;
    return r_;
  }

  const std::vector<Tensor>& best() const { return best_; }  // the trainable tensors at best_step

  // Checkpoint state: everything but the best tensors (the checkpoint stores those itself).
  std::string state() const { return to_json().dump(); }
  nlohmann::json to_json() const {
    return {{"losses", r_.losses},
            {"curve", curve_json(r_.curve)},
            {"examples", r_.examples},
            {"best_step", r_.best_step},
            {"best_valid_loss", std::isnan(r_.best_valid_loss) ? nlohmann::json() : nlohmann::json(r_.best_valid_loss)},
            {"loss_avg", loss_avg_},
            {"tokens", tokens_},
            {"seconds", timer_.seconds() + seconds_before_ - eval_s_}};
  }
  // The log of a checkpoint: parse_state checks it (lowrank::Error on anything malformed), restore
  // takes it over; first_step is where the run resumes, best the checkpoint's best tensors.
  struct State {
    std::vector<float> losses;
    std::vector<CurvePoint> curve;
    int64_t examples = 0, best_step = 0;
    double best_valid_loss = NAN, loss_avg = NAN, tokens = 0, seconds = 0;
  };
  static State parse_state(const std::string& text) {
    try {
      const nlohmann::json j = nlohmann::json::parse(text);
      auto num = [](const nlohmann::json& v) { return v.is_null() ? NAN : v.get<double>(); };
      State s;
      s.losses = j.at("losses").get<std::vector<float>>();
      for (const auto& p : j.at("curve"))
        s.curve.push_back({p.at("step").get<int64_t>(), p.at("examples").get<int64_t>(), num(p.at("train_loss")),
                           num(p.at("valid_loss"))});
      s.examples = j.at("examples").get<int64_t>();
      s.best_step = j.at("best_step").get<int64_t>();
      s.best_valid_loss = num(j.at("best_valid_loss"));
      s.loss_avg = num(j.at("loss_avg"));
      s.tokens = j.at("tokens").get<double>();
      s.seconds = j.at("seconds").get<double>();
      return s;
    } catch (const nlohmann::json::exception& e) {
      throw Error(cat("malformed training log (", e.what(), ")"));
    }
  }
  void restore(State s, int64_t first_step, std::vector<Tensor> best) {
    r_.losses = std::move(s.losses);
    r_.curve = std::move(s.curve);
    r_.examples = s.examples;
    r_.best_step = s.best_step;
    r_.best_valid_loss = s.best_valid_loss;
    loss_avg_ = s.loss_avg;
    tokens_ = s.tokens;
    seconds_before_ = s.seconds;
    r_.first_step = first_step;
    best_ = std::move(best);
    bar_ = ProgressBar(r_.steps - first_step);
    bar_offset_ = first_step;
  }

 private:
  void evaluate(int64_t step, nn::GPT& model) {
    const double v = valid_ && valid_->size() > 0 ? eval_loss(model, *valid_, o_.batch_size, o_.eval_batches) : NAN;
    r_.curve.push_back({step, r_.examples, loss_avg_, v});
    if (std::isfinite(v) && !(v >= r_.best_valid_loss)) {  // NaN best: the first point is the best so far
      r_.best_valid_loss = v;
      r_.best_step = step;
      best_.clear();
      for (const nn::NamedTensor& p : trainable_tensors(model)) best_.push_back(p.tensor.clone());
    }
  }

  const FinetuneOptions& o_;
  const data::SftDataset* valid_;
  ProgressBar bar_;
  Timer timer_;
  TrainResult r_;
  std::vector<Tensor> best_;
  double loss_avg_ = NAN, tokens_ = 0.0, eval_s_ = 0.0, seconds_before_ = 0.0;
  int64_t bar_offset_ = 0;  // a resumed run's bar counts its own steps
};

}  // namespace lowrank::examples
