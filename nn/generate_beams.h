#pragma once
// Internals of nn/generate.h shared by the single-prompt and the batched decoders: the beam state of
// one prompt (PromptBeams) and the driver that runs several equal-length prompts as the rows of one
// forward (decode_chunk). Both public entry points go through decode_chunk, the single-prompt ones
// with a chunk of one prompt, so every per-prompt rule (bans, candidates, finished hypotheses, early
// stop, length limit) exists once.
#include <cstdint>
#include <vector>

#include "nn/generate.h"

namespace lowrank::nn::detail {

// One prompt's search. Its live beams occupy rows() consecutive rows of the chunk's forward; step()
// consumes their next-token log-probs and replaces them by the surviving extensions, whose parents()
// are indices into the previous live beams (the rows the shared KVCache must copy).
// beam_size 1 is greedy decoding: only the argmax of the single row is a candidate, so an EOS there
// ends the search (a wider beam would keep a non-EOS runner-up alive).
class PromptBeams {
 public:
  PromptBeams(const std::vector<int32_t>& prompt, const DecodeOptions& opt, int64_t limit);
  bool active() const { return active_; }
  int64_t rows() const { return static_cast<int64_t>(live_.size()); }
  // lp (rows(), V): log-probs of the token after each live beam; bans are applied in place.
  void step(float* lp, int64_t V);
  const std::vector<int32_t>& parents() const { return parents_; }
  // The newest token of every live beam, in row order: the next forward's input (rows(), 1).
  void append_last_tokens(std::vector<int32_t>& ids) const;
  // The best hypothesis; live beams compete with what they have. Call once, after the search.
  Hypothesis result();

 private:
  void ban_ngrams(float* row, const std::vector<int32_t>& generated) const;

  const std::vector<int32_t>& prompt_;
  const DecodeOptions& opt_;
  int64_t limit_;  // new tokens at most: max_new_tokens, and positions left in the model
  int64_t step_ = 0;
  bool active_;
  std::vector<Hypothesis> live_, done_;  // live best first; done best first, at most beam_size
  std::vector<int32_t> parents_;
};

// New tokens a prompt of P tokens may get: max_new_tokens, and the model's positions (the last
// generated token is never fed, so P + new - 1 <= n_positions).
int64_t new_token_limit(const GPT& model, int64_t P, const DecodeOptions& opt);

// LR_CHECKs prompts and options; errors start with fn and name the offending prompt's index.
void check_decode_inputs(const GPT& model, const std::vector<std::vector<int32_t>>& prompts, const DecodeOptions& opt,
                         const char* fn);

// Decodes prompts of one length together: one prefill (B = prompts), then one forward per step over
// the live beams of all unfinished prompts and one shared KVCache. Inputs must be checked already.
// adapters (one per prompt) or nullptr: each prompt's rows run with its adapter (Context::row_adapters).
std::vector<Hypothesis> decode_chunk(GPT& model, const std::vector<const std::vector<int32_t>*>& prompts,
                                     const DecodeOptions& opt, const std::vector<int32_t>* adapters = nullptr);

}  // namespace lowrank::nn::detail
