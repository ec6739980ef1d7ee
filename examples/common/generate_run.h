#pragma once
// The decoding side of examples/generate.cpp: one prompt (streamed) or a list of requests (batched),
// under one set of decoding settings, each result cut at the stop strings.
//  * greedy and beam over many requests: nn::beam_decode_batch (prompts of equal length share one
//    forward per step, generate.h), in chunks of `decode_batch` requests for the progress bar;
//  * sampling: nn::sample_cached (KV cache), one request after the other, request i drawing from its
//    own Rng(request_seed(seed, i)), so its text does not depend on the other requests;
//  * one prompt, greedy or sampled: nn::sample_cached (greedy is temperature 0: the argmax) with each
//    id printed as it comes (TextStream); beam search prints the best hypothesis at the end.
// A stop string ends a sampled generation at once; a greedy or beam result is cut afterwards (the
// tokens before the stop are the same either way for greedy; beam search ranks whole hypotheses).
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "data/generate_requests.h"
#include "data/tokenizer.h"
#include "examples/common/cli.h"
#include "examples/common/text_stream.h"
#include "lora/adapter_set.h"
#include "nn/generate.h"
#include "nn/sample.h"

namespace lowrank::examples {

struct GenerateSettings {
  std::string mode = "greedy";     // greedy | sample | beam
  nn::DecodeOptions decode;        // beam_size, length_penalty, no_repeat_ngram_size, eos_id (greedy, beam)
  nn::SampleOptions sample;        // temperature, top_k, top_p, no_repeat_ngram_size, stop_id (sample)
  std::vector<std::string> stops;  // --stop
  uint64_t seed = 1;
  int64_t decode_batch = 8;  // requests per batched search
};

struct Completion {
  std::string text;           // cut before the first stop string
  int64_t tokens = 0;         // generated ids up to the end or the stop (EOS not counted)
  std::string finish_reason;  // "eos" | "stop" | "length"
};

// Request i's own sampling stream: a splitmix64 step over (seed, i), so neighbouring requests (and
// neighbouring seeds) start far apart in the generator's state space.
inline uint64_t request_seed(uint64_t seed, uint64_t i) {
  uint64_t z = seed * 0x9e3779b97f4a7c15ULL + (i + 1) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Greedy or sampled continuation of one prompt through the KV cache; with `out`, streamed as it grows.
inline Completion sample_one(nn::GPT& model, const data::Tokenizer& tok, const std::vector<int32_t>& prompt,
                             int64_t max_new, const GenerateSettings& s, uint64_t index, std::FILE* out) {
  nn::SampleOptions o = s.sample;
  o.max_new_tokens = max_new;
  o.stop_id = s.decode.eos_id;
  o.no_repeat_ngram_size = s.decode.no_repeat_ngram_size;
  if (s.mode == "greedy") o.temperature = 0.f;  // argmax: nn::greedy's choice, with no Rng draw
  Rng rng(request_seed(s.seed, index));
  TextStream text(tok, s.stops, out);
  const std::vector<int32_t> ids =
      nn::sample_cached(model, prompt, o, rng, [&](int32_t id) { return id != o.stop_id && text.add(id); });
  text.finish();
  const bool eos = !ids.empty() && ids.back() == o.stop_id;
  return {text.text(), text.tokens(), text.stopped() ? "stop" : eos ? "eos" : "length"};
}

// A finished search's best hypothesis, cut at the stop strings.
inline Completion from_hypothesis(const data::Tokenizer& tok, const nn::Hypothesis& h,
                                  const std::vector<std::string>& stops) {
  TextStream text(tok, stops);
  for (int32_t id : h.tokens)
    if (!text.add(id)) break;
  return {text.text(), text.tokens(), text.stopped() ? "stop" : h.finished ? "eos" : "length"};
}

// Greedy or beam search over the requests that share one max_new_tokens, decode_batch at a time. With
// slots (request -> adapter slot of a lora::AdapterSet, -1: the base), each batch mixes adapters.
inline void search_requests(nn::GPT& model, const data::Tokenizer& tok, const std::vector<data::GenerateRequest>& reqs,
                            const std::vector<size_t>& idx, const GenerateSettings& s, std::vector<Completion>& out,
                            const std::function<void(size_t)>& done, const std::vector<int32_t>* slots) {
  nn::DecodeOptions o = s.decode;
  o.max_new_tokens = reqs[idx.front()].max_new_tokens;
  if (s.mode == "greedy") o.beam_size = 1;
  const size_t per = static_cast<size_t>(s.decode_batch);
  for (size_t start = 0; start < idx.size(); start += per) {
    std::vector<std::vector<int32_t>> prompts;
    std::vector<int32_t> adapters;
    for (size_t j = start; j < std::min(idx.size(), start + per); ++j) {
      prompts.push_back(reqs[idx[j]].tokens);
      if (slots) adapters.push_back((*slots)[idx[j]]);
    }
    const int64_t rows = s.decode_batch * o.beam_size;
    const std::vector<nn::Hypothesis> hyps = slots ? nn::beam_decode_batch(model, prompts, adapters, o, rows)
                                                   : nn::beam_decode_batch(model, prompts, o, rows);
    for (size_t j = 0; j < hyps.size(); ++j) out[idx[start + j]] = from_hypothesis(tok, hyps[j], s.stops);
    done(hyps.size());
  }
}

// Every request's completion, in request order; `done(n)` after every n finished requests. With a set,
// each request runs with the adapter it names ("" : the base): greedy and beam in mixed batches (no
// adapter merged), sampling one adapter after the other, each merged in turn (AdapterSet::activate).
inline std::vector<Completion> run_requests(nn::GPT& model, const data::Tokenizer& tok,
                                            const std::vector<data::GenerateRequest>& reqs, const GenerateSettings& s,
                                            const std::function<void(size_t)>& done, lora::AdapterSet* set = nullptr) {
  std::vector<Completion> out(reqs.size());
  if (s.mode == "sample") {
    std::map<std::string, std::vector<size_t>> by_adapter;  // one activate per adapter
    for (size_t i = 0; i < reqs.size(); ++i) by_adapter[reqs[i].adapter].push_back(i);
    for (const auto& [name, idx] : by_adapter) {
      if (set) set->activate(name);
      for (size_t i : idx) {
        out[i] = sample_one(model, tok, reqs[i].tokens, reqs[i].max_new_tokens, s, i, nullptr);
        done(1);
      }
    }
    if (set) set->activate("");
    return out;
  }
  std::vector<int32_t> slots;
  if (set) {
    set->activate("");
    for (const data::GenerateRequest& r : reqs) slots.push_back(r.adapter.empty() ? -1 : set->slot(r.adapter));
  }
  std::map<int64_t, std::vector<size_t>> by_limit;  // one search per max_new_tokens, in request order
  for (size_t i = 0; i < reqs.size(); ++i) by_limit[reqs[i].max_new_tokens].push_back(i);
  for (const auto& group : by_limit)
    search_requests(model, tok, reqs, group.second, s, out, done, set ? &slots : nullptr);
  return out;
}

}  // namespace lowrank::examples
