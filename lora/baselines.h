#pragma once
// The paper's baselines (Hu et al., 2021, Section 5.1), each applied to a GPT in place: every
// base parameter is frozen first, then the method's parameters are created and/or unfrozen.
// Each apply_* returns the number of trainable parameters.
//   FT            everything trains.
//   FT-Top2       only the last two transformer blocks (Li & Liang, 2021). ln_f is NOT included:
//                 "layers" are blocks, and two GPT-2 M blocks are exactly the paper's 25.19M (Table 3).
//   BitFit        every bias vector, LayerNorm biases (beta) included (Zaken et al., 2021 list
//                 b_LN among the trained terms; that is what gives RoBERTa-base's 0.1M in Table 2).
//   Adapter-H     two Houlsby adapters per block, on the attention and the MLP sublayer outputs.
//   Adapter-L     one Lin adapter per block, on the MLP sublayer output, with its own LayerNorm.
//   PreEmbed      Lp learned input vectors prepended to every sequence (GPT::prefix_embed).
//   PreLayer      Lp learned keys and values in every block's attention (prefix_k / prefix_v).
#include <cstdint>
#include <vector>

#include "nn/gpt.h"

namespace lowrank::lora {

// Houlsby et al. (2019), Fig. 2: a(x) = x + W_up gelu(W_down x + b_down) + b_up, bottleneck dim d.
// GELU as in Houlsby's reference code (google-research/adapter-bert) and GPT-2's own MLP.
// W_up, b_up start at zero, so a(x) == x exactly and the adapted model starts as the base model;
// W_down ~ N(0, 0.02²) (GPT-2's Linear init), b_down = 0. Names: "down.weight", "down.bias",
// "up.weight", "up.bias". (Houlsby also train the base LayerNorms; here everything else is frozen.)
class HoulsbyAdapter : public nn::Layer {
 public:
  HoulsbyAdapter(int64_t C, int64_t dim, const nn::Init& init);
  Tensor forward(const Tensor& x, const nn::Context& ctx) override;
  void collect(const std::string& prefix, std::vector<nn::NamedTensor>& out) override;

  nn::Linear down;  // C -> d
  nn::Linear up;    // d -> C, zero-initialised
};

// Lin et al. (2020), Section 3: a(x) = x + W_up relu(W_down LN(x) + b_down) + b_up. The LayerNorm
// (its own gain and bias, trainable, init 1 and 0) normalises the bottleneck's input only; the skip
// connection carries x unnormalised, so zero W_up, b_up again make a(x) == x. ReLU as in Lin et al.
// Names: "ln.weight", "ln.bias", then as HoulsbyAdapter.
class LinAdapter : public nn::Layer {
 public:
  LinAdapter(int64_t C, int64_t dim, float eps, const nn::Init& init);
  Tensor forward(const Tensor& x, const nn::Context& ctx) override;
  void collect(const std::string& prefix, std::vector<nn::NamedTensor>& out) override;

  nn::LayerNorm ln;
  nn::Linear down;
  nn::Linear up;
};

int64_t apply_ft(nn::GPT& model);
int64_t apply_ft_top2(nn::GPT& model);  // the last min(2, n_layer) blocks
int64_t apply_bitfit(nn::GPT& model);
int64_t apply_adapter_h(nn::GPT& model, int64_t dim, Rng& rng);
int64_t apply_adapter_l(nn::GPT& model, int64_t dim, Rng& rng);

// PreEmbed: prefix_embed (Lp, C) starts as the wte rows of Lp real tokens (Li & Liang, 2021,
// Section 7, "Initialization": real words' activations beat a random init). init_ids gives them
// (e.g. a tokenised task description); empty: Lp ids drawn uniformly from the vocabulary with rng.
int64_t apply_prefix_embed(nn::GPT& model, int64_t len, Rng& rng, const std::vector<int32_t>& init_ids = {});

// PreLayer: prefix_k / prefix_v (Lp, C) in every block start as the keys/values the frozen model
// computes for Lp real tokens (init_ids, or random ids as above) — Li & Liang's real-word init at
// every layer. Trained directly, without Li & Liang's MLP reparametrisation (which they drop after
// training anyway). Keys and values are separate, as in their past_key_values implementation:
// 2·L·Lp·C parameters (the paper's |Θ| = L·d·Lp counts one vector per position and layer).
// On the meta device the tensors are shapes only.
int64_t apply_prefix_layer(nn::GPT& model, int64_t len, Rng& rng, const std::vector<int32_t>& init_ids = {});

}  // namespace lowrank::lora
