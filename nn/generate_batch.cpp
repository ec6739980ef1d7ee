// The decoding driver: runs prompts of equal length as the rows of one forward over one KVCache.
// nn/generate.cpp holds the per-prompt rules (detail::PromptBeams); the single-prompt functions are
// this driver with a chunk of one prompt.
#include <algorithm>
#include <map>

#include "nn/generate.h"
#include "nn/generate_beams.h"
#include "tensor/error.h"

namespace lowrank::nn {

using namespace lowrank::autograd;

namespace {
// Feeds ids (rows x T) after the cached positions; log-probs (rows, V) of the token after each row.
// row_adapters (rows) or nullptr: each row's adapter (nn::Context).
std::vector<float> next_log_probs(GPT& model, KVCache& cache, const std::vector<int32_t>& ids, int64_t rows, int64_t T,
                                  const std::vector<int32_t>* row_adapters) {
  Context ctx;
  ctx.cache = &cache;
  ctx.row_adapters = row_adapters;
  Tensor h = model.hidden(ids, rows, T, ctx);  // (rows, T, C): only the last position goes through the head
  Tensor last = reshape(slice(h, 1, T - 1, 1), {rows, model.config.n_embd});  // (rows, C)
  return log_softmax(model.wte.project(last)).to_vector();  // (rows, V): the tied head, + ΔE with LoRA on wte
}

// rows == {0, 1, ..., n - 1}: a reorder would copy the cache onto itself.
bool is_identity(const std::vector<int32_t>& rows, int64_t n) {
  if (static_cast<int64_t>(rows.size()) != n) return false;
  for (size_t i = 0; i < rows.size(); ++i)
    if (rows[i] != static_cast<int32_t>(i)) return false;
  return true;
}
}  // namespace

namespace detail {

std::vector<Hypothesis> decode_chunk(GPT& model, const std::vector<const std::vector<int32_t>*>& prompts,
                                     const DecodeOptions& opt, const std::vector<int32_t>* adapters) {
  NoGradGuard no_grad;
  const int64_t n = static_cast<int64_t>(prompts.size()), V = model.config.vocab_size;
  const int64_t P = static_cast<int64_t>(prompts.front()->size());
  const int64_t limit = new_token_limit(model, P, opt);  // equal lengths: one limit, one cache position
  std::vector<PromptBeams> beams;
  beams.reserve(prompts.size());
  for (const std::vector<int32_t>* p : prompts) {
    LR_CHECK(static_cast<int64_t>(p->size()) == P, "decode_chunk: prompts of ", P, " and ", p->size(), " tokens");
    beams.emplace_back(*p, opt, limit);
  }
  if (limit > 0) {
    KVCache cache;
    std::vector<int32_t> ids;  // (n, P) row-major: one row per prompt, no padding needed
    for (const std::vector<int32_t>* p : prompts) ids.insert(ids.end(), p->begin(), p->end());
    std::vector<int32_t> row_adapters;  // the adapter of every row, when the prompts have theirs
    if (adapters) row_adapters = *adapters;
    const std::vector<int32_t>* ra = adapters ? &row_adapters : nullptr;
    std::vector<float> lp = next_log_probs(model, cache, ids, n, P, ra);  // (n, V): each prompt's single beam
    for (;;) {
      // Rows of lp: the live beams of the active prompts, prompt after prompt. Prompts that finish
      // this step drop out, so the next forward has only the survivors' rows.
      std::vector<int32_t> parents, last;
      row_adapters.clear();
      int64_t row = 0;
      for (size_t i = 0; i < beams.size(); ++i) {
        PromptBeams& b = beams[i];
        if (!b.active()) continue;
        const int64_t rows = b.rows();
        b.step(lp.data() + row * V, V);
        if (b.active()) {
          for (int32_t p : b.parents()) parents.push_back(static_cast<int32_t>(row + p));
          b.append_last_tokens(last);
          if (adapters) row_adapters.insert(row_adapters.end(), static_cast<size_t>(b.rows()), (*adapters)[i]);
        }
        row += rows;
      }
      if (parents.empty()) break;
      // Row r of the cache becomes the history of the beam fed in row r. Greedy chunks whose
      // prompts all go on keep every row in place: no copy then.
      if (!is_identity(parents, row)) cache.reorder(parents);
      lp = next_log_probs(model, cache, last, static_cast<int64_t>(last.size()), 1, ra);  // (rows, V)
    }
  }
  std::vector<Hypothesis> out;
  for (PromptBeams& b : beams) out.push_back(b.result());
  return out;
}

}  // namespace detail

namespace {
// Groups the prompts by length (equal lengths share cache positions, so no padding or masks are
// needed) and cuts each group into chunks of at most max_rows / beam_size prompts, so that a chunk's
// forward never has more than max_rows rows. Results go back to the prompts' own indices.
std::vector<Hypothesis> decode_batch(GPT& model, const std::vector<std::vector<int32_t>>& prompts,
                                     const DecodeOptions& opt, int64_t max_rows, const char* fn,
                                     const std::vector<int32_t>* adapters = nullptr) {
  detail::check_decode_inputs(model, prompts, opt, fn);
  LR_CHECK(!adapters || adapters->size() == prompts.size(), fn, ": ", adapters ? adapters->size() : 0, " adapters for ",
           prompts.size(), " prompts");
  LR_CHECK(max_rows >= opt.beam_size, fn, ": max_rows ", max_rows, " < beam_size ", opt.beam_size,
           " (the beams of one prompt must fit in one forward)");
  const size_t per_chunk = static_cast<size_t>(max_rows / opt.beam_size);
  std::map<size_t, std::vector<size_t>> by_length;  // length -> prompt indices, in input order
  for (size_t i = 0; i < prompts.size(); ++i) by_length[prompts[i].size()].push_back(i);
  std::vector<Hypothesis> out(prompts.size());
  for (const auto& group : by_length) {
    const std::vector<size_t>& idx = group.second;
    for (size_t start = 0; start < idx.size(); start += per_chunk) {
      const size_t end = std::min(idx.size(), start + per_chunk);
      std::vector<const std::vector<int32_t>*> chunk;
      std::vector<int32_t> chunk_adapters;
      for (size_t j = start; j < end; ++j) {
        chunk.push_back(&prompts[idx[j]]);
        if (adapters) chunk_adapters.push_back((*adapters)[idx[j]]);
      }
      std::vector<Hypothesis> hyps = detail::decode_chunk(model, chunk, opt, adapters ? &chunk_adapters : nullptr);
      for (size_t j = start; j < end; ++j) out[idx[j]] = std::move(hyps[j - start]);
    }
  }
  return out;
}
}  // namespace

std::vector<Hypothesis> beam_decode_batch(GPT& model, const std::vector<std::vector<int32_t>>& prompts,
                                          const DecodeOptions& opt, int64_t max_rows) {
  return decode_batch(model, prompts, opt, max_rows, "beam_decode_batch");
}

std::vector<Hypothesis> beam_decode_batch(GPT& model, const std::vector<std::vector<int32_t>>& prompts,
                                          const std::vector<int32_t>& adapters, const DecodeOptions& opt,
                                          int64_t max_rows) {
  return decode_batch(model, prompts, opt, max_rows, "beam_decode_batch", &adapters);
}

std::vector<std::vector<int32_t>> beam_search_batch(GPT& model, const std::vector<std::vector<int32_t>>& prompts,
                                                    const DecodeOptions& opt, int64_t max_rows) {
  std::vector<std::vector<int32_t>> out;
  for (Hypothesis& h : decode_batch(model, prompts, opt, max_rows, "beam_search_batch"))
    out.push_back(std::move(h.tokens));
  return out;
}

}  // namespace lowrank::nn
