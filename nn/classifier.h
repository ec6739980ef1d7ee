#pragma once
// Sequence classifier for GLUE-style tasks (Hu et al., 2021, Section 5.2): the GPT stack, then a
// RoBERTa-style head on one pooled position:
//   logits = out_proj(tanh(dense(h[:, p])))      names: classifier.dense, classifier.out_proj
//   pooling First: p = 0            (bidirectional encoder, config.causal = false; RoBERTa's <s>)
//   pooling Last:  p = lengths - 1  (causal GPT: only the last real token has seen the whole input,
//                                    as HF's GPT2ForSequenceClassification pools)
//   pooling Mean:  the mean of h over the real positions (padding excluded)
// Batches are right-padded; lengths tell attention which keys are padding. Encoder parameters keep
// GPT's names (no "encoder." prefix), so a train_gpt checkpoint loads into `encoder` as it is.
#include <memory>
#include <string>

#include "nn/gpt.h"

namespace lowrank::nn {

enum class Pooling {
  Auto,   // First for an encoder, Last for a causal model
  First,  // rejected for a causal model: position 0 sees only the first token
  Last,
  Mean,  // average over real tokens: every position of a causal model has seen its prefix
};

class Classifier : public Module {
 public:
  // cfg.n_classes > 0. The head is drawn from rng after the encoder.
  Classifier(const GPTConfig& cfg, Rng& rng, Device device = Device::CPU, Pooling pooling = Pooling::Auto);
  // ids (B,T) right-padded, lengths (B) in [1, T] -> logits (B, n_classes)
  Tensor forward(const std::vector<int32_t>& ids, int64_t B, int64_t T, const std::vector<int32_t>& lengths,
                 const Context& ctx);
  void collect(const std::string& prefix, std::vector<NamedTensor>& out) override;

  GPT encoder;
  std::unique_ptr<Linear> dense;     // C -> C
  std::unique_ptr<Linear> out_proj;  // C -> n_classes
  Pooling pooling;                   // First, Last or Mean (Auto resolved)
};

// A classifier over a pretrained train_gpt checkpoint (nn::save_model format): the encoder takes the
// checkpoint's config and every weight (checked by name and shape like nn::load_model), the head is
// freshly initialised from rng. dropout >= 0 replaces the checkpoint's model dropout (fine-tuning
// regularisation; the weights do not depend on it); < 0 keeps it.
std::unique_ptr<Classifier> classifier_from_gpt(const std::string& path, int64_t n_classes, Rng& rng,
                                                float dropout = -1.f, Pooling pooling = Pooling::Auto,
                                                Device device = Device::CPU);
Pooling pooling_by_name(const std::string& name);  // "auto" | "first" | "last" | "mean"; throws on others

}  // namespace lowrank::nn
