#pragma once
// Deterministic decoding with the KV cache: greedy and beam search, as used for the LoRA paper's
// NLG evaluation (microsoft/LoRA examples/NLG/src/gpt2_beam.py: beam 10, length_penalty 0.8/0.9,
// no_repeat_ngram_size 4).
//
//   nn::DecodeOptions opt;  opt.beam_size = 10;  opt.length_penalty = 0.9f;  opt.no_repeat_ngram_size = 4;
//   std::vector<int32_t> out = nn::beam_search(model, data::e2e_prompt(bpe, mr), opt);  // no prompt, no EOS
//
// Conventions (Hugging Face's BeamSearchScorer unless said otherwise):
//  * a hypothesis' log_prob is the sum of the log-probs of its generated tokens, EOS included;
//    its score is log_prob / length^length_penalty with length = generated tokens incl. EOS;
//  * every step keeps the beam_size best non-EOS extensions of the live beams; an EOS extension
//    ranked above the last kept one becomes a finished hypothesis (the best beam_size are kept);
//  * stop when beam_size hypotheses are finished and no live beam can still beat the worst of them
//    (an exact bound: log-probs only decrease, so a live beam's best reachable score is its current
//    log_prob over the most favourable reachable length), or after max_new_tokens; live beams then
//    count as hypotheses too (length = their tokens, no EOS), as in HF and gpt2_beam.py;
//  * no_repeat_ngram_size n bans any token that would complete an n-gram already present in the
//    beam's generated tokens. The prompt is NOT searched by default (gpt2_beam.py's
//    _calc_banned_ngram_tokens only sees the generated history): HF searches the prompt too, which on
//    E2E would forbid copying any name of >= n BPE tokens from the MR. ngram_include_prompt = true
//    gives HF's behaviour;
//  * beam_size 1 is greedy decoding (HF dispatches num_beams = 1 to greedy search as well).
// Beams are the rows of one batched forward (B = live beams) over one shared KVCache that is
// reordered by the surviving beams' parent rows every step. All under autograd::NoGradGuard.
// beam_search_batch does the same for many prompts at once: the live beams of several prompts are
// the rows of one forward (see below); each prompt's search follows exactly the rules above.
// Generation also stops where the model runs out of positions (prompt + new tokens - 1 <= n_positions).
#include <cstdint>
#include <vector>

#include "nn/gpt.h"

namespace lowrank::nn {

struct DecodeOptions {
  int64_t beam_size = 1;
  float length_penalty = 1.f;
  int64_t no_repeat_ngram_size = 0;  // 0: off
  int64_t max_new_tokens = 64;
  int32_t eos_id = 50256;
  bool ngram_include_prompt = false;  // see above: false = gpt2_beam.py, true = Hugging Face
};

struct Hypothesis {
  std::vector<int32_t> tokens;  // generated ids, without the prompt and without EOS
  bool finished = false;        // ended with EOS (then length = tokens.size() + 1)
  double log_prob = 0.0;        // sum of the generated tokens' log-probs (EOS included)
  double score = 0.0;           // log_prob / length^length_penalty
};

// log_prob / length^length_penalty (length >= 1).
double length_normalized(double log_prob, int64_t length, float length_penalty);

// Tokens that would complete an n-gram already in seq, i.e. follow an earlier occurrence of seq's
// last n-1 tokens (fairseq's rule; n = 1 bans every token of seq; none if n <= 0).
std::vector<int32_t> banned_ngram_tokens(const std::vector<int32_t>& seq, int64_t n);

Hypothesis greedy_decode(GPT& model, const std::vector<int32_t>& prompt, const DecodeOptions& opt);
Hypothesis beam_decode(GPT& model, const std::vector<int32_t>& prompt, const DecodeOptions& opt);

// The tokens of the hypotheses above (without prompt and EOS).
std::vector<int32_t> greedy(GPT& model, const std::vector<int32_t>& prompt, const DecodeOptions& opt);
std::vector<int32_t> beam_search(GPT& model, const std::vector<int32_t>& prompt, const DecodeOptions& opt);

// Batched decoding: result i is what beam_decode / beam_search(model, prompts[i], opt) returns (beam
// size 1 is greedy here too), results in the order of the prompts. Prompts of equal length are
// decoded together, at most max_rows / beam_size of them per chunk: the chunk's prompts are prefilled
// in one forward (B = prompts), then every step feeds the live beams of all its unfinished prompts as
// the rows of one forward (at most max_rows rows) over one shared KVCache; finished prompts drop out.
// The GEMMs' row counts differ from the one-prompt search's, and the CPU's sgemm (OpenBLAS) rounds a
// row differently depending on the row count and the row's place among them (cuBLAS picks kernels by
// shape too): log-probs agree to float rounding, tokens are the same unless two candidates (or a beam
// and the stopping bound) are within that rounding of each other (practically tied in either search).
// Errors (lowrank::Error) name the function and the offending prompt's index; max_rows >= beam_size.
std::vector<Hypothesis> beam_decode_batch(GPT& model, const std::vector<std::vector<int32_t>>& prompts,
                                          const DecodeOptions& opt, int64_t max_rows = 80);
// Mixed adapters (lora::AdapterSet, unmerged): prompt i runs with adapter adapters[i] (a slot of the
// set, or -1 for the base) while sharing every forward with the other prompts of its chunk.
std::vector<Hypothesis> beam_decode_batch(GPT& model, const std::vector<std::vector<int32_t>>& prompts,
                                          const std::vector<int32_t>& adapters, const DecodeOptions& opt,
                                          int64_t max_rows = 80);
std::vector<std::vector<int32_t>> beam_search_batch(GPT& model, const std::vector<std::vector<int32_t>>& prompts,
                                                    const DecodeOptions& opt, int64_t max_rows = 80);

}  // namespace lowrank::nn
