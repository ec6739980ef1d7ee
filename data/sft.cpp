// The chat template, the tokenized fine-tuning dataset and its batches (data/sft.h).
#include "data/sft.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "data/batches.h"
#include "tensor/error.h"

namespace lowrank::data {

namespace {
std::string at(const std::string& where) { return where.empty() ? "" : where + ": "; }

// "Assistant:" untrained, then " {content}" + EOS trained; other roles are one untrained line.
void check_chat(const std::vector<ChatMessage>& messages, const std::string& where) {
  LR_CHECK(!messages.empty(), at(where), "field 'messages' is empty");
  for (size_t i = 0; i < messages.size(); ++i) {
    const std::string& role = messages[i].role;
    LR_CHECK(role == "system" || role == "user" || role == "assistant", at(where), "field 'messages[", i,
             "].role' is '", role, "', expected system, user or assistant");
  }
}
}  // namespace

std::vector<SftSegment> render_chat(const std::vector<ChatMessage>& messages, const std::string& where) {
  check_chat(messages, where);
  LR_CHECK(messages.back().role == "assistant", at(where), "field 'messages[", messages.size() - 1, "].role' is '",
           messages.back().role, "': the last message must be the assistant's (it is what is trained)");
  std::vector<SftSegment> out;
  std::string pending;  // untrained text not yet pushed
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    if (m.role != "assistant") {
      pending += (m.role == "system" ? "System: " : "User: ") + m.content + "\n";
      continue;
    }
    LR_CHECK(!m.content.empty(), at(where), "field 'messages[", i,
             "].content' is empty (an assistant turn is trained)");
    out.push_back({pending + "Assistant:", false, false});
    out.push_back({" " + m.content, true, true});
    pending = "\n";
  }
  return out;
}

std::string chat_prompt(const std::vector<ChatMessage>& messages, const std::string& where) {
  check_chat(messages, where);
  std::string s;
  for (const ChatMessage& m : messages) {
    if (m.role == "assistant")
      s += "Assistant: " + m.content + "<|endoftext|>\n";
    else
      s += (m.role == "system" ? "System: " : "User: ") + m.content + "\n";
  }
  return s + "Assistant:";
}

int64_t SftEncoded::num_trained() const {
  // tokens[0] has no input before it: never a target.
  return trained.empty() ? 0 : std::accumulate(trained.begin() + 1, trained.end(), int64_t{0});
}

SftDataset::SftDataset(const std::vector<SftExample>& examples, const Tokenizer& tok, int64_t max_len, int32_t eos_id)
    : max_len_(max_len), eos_id_(eos_id) {
  LR_CHECK(max_len >= 1, "SftDataset: max_len ", max_len, " < 1");
  data_.reserve(examples.size());
  for (size_t i = 0; i < examples.size(); ++i) {
    SftEncoded e;
    for (const SftSegment& s : examples[i].segments) {
      for (int32_t id : tok.encode(s.text)) e.tokens.push_back(id), e.trained.push_back(s.trained);
      if (s.eos) e.tokens.push_back(eos_id), e.trained.push_back(s.trained);
    }
    const std::vector<SftSegment>& seg = examples[i].segments;
    if (seg.empty() || !seg.back().eos)  // every example is closed by EOS, trained as its last segment
      e.tokens.push_back(eos_id), e.trained.push_back(!seg.empty() && seg.back().trained);
    // The first target is tokens[1] (input position 0); input position t predicts tokens[t + 1].
    const auto first = std::find(e.trained.begin() + 1, e.trained.end(), uint8_t{1});
    const std::string name = examples[i].where.empty() ? cat("SftDataset: example ", i) : examples[i].where;
    LR_CHECK(first != e.trained.end(), name, " has no trained token");
    const int64_t context = first - e.trained.begin();
    LR_CHECK(context <= max_len, name, " has a context of ", context, " tokens: no completion token fits in max_len ",
             max_len, " (the model's context or --max-len)");
    if (static_cast<int64_t>(e.tokens.size()) - 1 > max_len) ++truncated_;
    data_.push_back(std::move(e));
  }
}

std::vector<std::vector<int64_t>> SftDataset::epoch_batches(int64_t B, tensor::Rng& rng, bool drop_last) const {
  return shuffled_batches(size(), B, rng, drop_last, "SftDataset");
}

SftBatch SftDataset::batch(const std::vector<int64_t>& indices) const {
  LR_CHECK(!indices.empty(), "SftDataset: empty batch");
  SftBatch b;
  b.B = static_cast<int64_t>(indices.size());
  for (int64_t i : indices) b.T = std::max<int64_t>(b.T, static_cast<int64_t>(example(i).tokens.size()) - 1);
  b.T = std::min(b.T, max_len_);
  const size_t N = static_cast<size_t>(b.B * b.T);
  b.inputs.assign(N, eos_id_);
  b.targets.assign(N, eos_id_);
  b.mask.assign(N, 0.f);
  for (int64_t r = 0; r < b.B; ++r) {
    const SftEncoded& e = example(indices[static_cast<size_t>(r)]);
    const int64_t n_in = std::min<int64_t>(static_cast<int64_t>(e.tokens.size()) - 1, b.T);  // right truncation
    for (int64_t t = 0; t < n_in; ++t) {
      const size_t k = static_cast<size_t>(r * b.T + t);
      b.inputs[k] = e.tokens[static_cast<size_t>(t)];
      b.targets[k] = e.tokens[static_cast<size_t>(t + 1)];
      if (e.trained[static_cast<size_t>(t + 1)]) {
        b.mask[k] = 1.f;
        ++b.tokens;
      }
    }
  }
  return b;
}

int64_t SftDataset::num_eval_batches(int64_t B) const { return num_batches(size(), B, "SftDataset::num_eval_batches"); }

SftBatch SftDataset::eval_batch(int64_t i, int64_t B) const {
  return batch(eval_batch_indices(size(), i, B, "SftDataset"));
}

SftSplit split_validation(std::vector<SftExample> all, double frac, const std::string& what) {
  LR_CHECK(frac >= 0.0 && frac < 1.0, "--val-frac ", frac, " must be in [0, 1)");
  const int64_t n = static_cast<int64_t>(all.size());
  // - 1e-6: --val-frac arrives as a float, and 0.1f is 0.1000000015 (ceil(0.1f * 60) would be 7).
  const int64_t n_val = frac > 0.0 ? std::max<int64_t>(1, static_cast<int64_t>(std::ceil(frac * n - 1e-6))) : 0;
  LR_CHECK(n_val < n, "--val-frac ", frac, " takes ", n_val, " of the ", n, " examples of ", what,
           " for validation, leaving nothing to train on");
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  tensor::Rng rng(0x5EED);  // fixed: the validation examples do not change with --seed
  for (int64_t i = n - 1; i > 0; --i) std::swap(order[i], order[rng.randint(i + 1)]);
  std::vector<uint8_t> is_val(static_cast<size_t>(n), 0);
  for (int64_t k = 0; k < n_val; ++k) is_val[static_cast<size_t>(order[k])] = 1;
  SftSplit s;
  for (int64_t i = 0; i < n; ++i) (is_val[i] ? s.valid : s.train).push_back(std::move(all[static_cast<size_t>(i)]));
  return s;
}

}  // namespace lowrank::data
