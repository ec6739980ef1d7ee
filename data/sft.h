#pragma once
// Supervised fine-tuning data in the formats people bring, read into one representation: an example is
// a list of text segments, each trained (the loss covers its tokens) or not.
//
//   format              a record (one JSON object per line)                 trained on
//   prompt-completion   {"prompt": "...", "completion": "..."}              the completion
//   text                {"text": "..."}                                     every token
//   messages            {"messages": [{"role": "user", "content": "..."},   the assistant turns
//                                     {"role": "assistant", "content": "..."}]}
//   txt                 plain text, documents separated by blank lines      every token
//
// prompt-completion is the format of OpenAI's fine-tuning files and of most instruction sets; the
// completion is appended to the prompt as it is (no separator is added: a completion usually starts with
// a space). Messages are rendered by one plain template (render_chat below). Every example is closed by
// <|endoftext|> (the tokenizer's EOS id), which is trained when the example's last segment is, as in
// E2E (Hu et al., 2021, Section 5.5 follows Li & Liang's encoding: context, completion, EOS). Text that
// contains "<|endoftext|>" encodes it to the EOS id, as Hugging Face's GPT-2 tokenizer does.
//
// Errors (lowrank::Error) name the file, the 1-based line and the field: a malformed line, a missing or
// non-string field, an empty prompt or completion, a file in none of the formats.
#include <cstdint>
#include <string>
#include <vector>

#include "data/tokenizer.h"
#include "tensor/random.h"

namespace lowrank::data {

struct SftSegment {
  std::string text;
  bool trained = false;
  bool eos = false;  // the EOS id follows the text's tokens (trained with them)
};

struct SftExample {
  std::vector<SftSegment> segments;
  std::string where;  // "file:line", for errors about this example
};

enum class SftFormat { Auto, PromptCompletion, Text, Messages, Txt };
// "auto", "prompt-completion", "text", "messages", "txt"; throws listing them on anything else.
SftFormat parse_sft_format(const std::string& name);
const char* sft_format_name(SftFormat f);

struct SftFile {
  SftFormat format = SftFormat::Auto;  // the one found (never Auto)
  std::vector<SftExample> examples;
};

// The file at path. Auto: a .txt file is plain text; anything else is JSON Lines whose first record
// decides (a "messages" field, then "prompt" + "completion", then "text"); every record must then be
// of that format.
SftFile load_sft(const std::string& path, SftFormat format = SftFormat::Auto);
// The same over bytes already in memory; `path` names them in errors and decides "auto" for .txt.
SftFile parse_sft(const std::string& bytes, const std::string& path, SftFormat format = SftFormat::Auto);

// The chat template: each message on its own lines,
//   "System: {content}\n"   "User: {content}\n"   "Assistant: {content}<|endoftext|>\n"
// The assistant's " {content}<|endoftext|>" is trained; "Assistant:" and the rest are not. The EOS
// closes each assistant turn, so a model trained on it stops there; the "\n" after the last message
// is dropped. chat_prompt renders the messages and then "Assistant:": the prompt a model trained on
// this template completes. Errors name the message ("messages[2].role") after `where`.
struct ChatMessage {
  std::string role, content;  // role: system, user or assistant
};
std::vector<SftSegment> render_chat(const std::vector<ChatMessage>& messages, const std::string& where = "");
std::string chat_prompt(const std::vector<ChatMessage>& messages, const std::string& where = "");

// One example as token ids: tokens[i] is a loss target when trained[i] is 1 (i >= 1: the first token
// has no input before it).
struct SftEncoded {
  std::vector<int32_t> tokens;
  std::vector<uint8_t> trained;
  int64_t num_trained() const;
};

// A (B,T) batch, right padded. Row r holds the example's tokens s: inputs = s[0 .. n-2], targets =
// s[1 .. n-1], mask = 1 exactly where the target is trained. Padding: input and target eos_id, mask 0.
struct SftBatch {
  int64_t B = 0, T = 0;
  std::vector<int32_t> inputs, targets;  // (B,T) row-major
  std::vector<float> mask;               // (B,T)
  int64_t tokens = 0;                    // Σ mask: the tokens the loss averages over
};

class SftDataset {
 public:
  // Tokenizes every example once, each segment on its own; an example that does not end with EOS gets
  // one (trained when its last segment is). An example longer than
  // max_len + 1 tokens (max_len inputs) is cut on the right and counted (num_truncated); one whose
  // first trained target lies beyond max_len inputs (its prompt fills the window) is an error naming
  // the example.
  SftDataset(const std::vector<SftExample>& examples, const Tokenizer& tok, int64_t max_len, int32_t eos_id);

  int64_t size() const { return static_cast<int64_t>(data_.size()); }
  int64_t max_len() const { return max_len_; }
  int64_t num_truncated() const { return truncated_; }  // examples cut to max_len
  const SftEncoded& example(int64_t i) const { return data_.at(static_cast<size_t>(i)); }

  // The rows of one epoch: a Fisher-Yates permutation drawn from rng (a seed fixes it), cut into
  // batches of B; drop_last drops a final short batch.
  std::vector<std::vector<int64_t>> epoch_batches(int64_t B, tensor::Rng& rng, bool drop_last) const;
  // The examples at indices, padded to the longest of them (at most max_len).
  SftBatch batch(const std::vector<int64_t>& indices) const;
  // Evaluation: examples [i*B, min((i+1)*B, size)) in file order; the last batch may be short.
  int64_t num_eval_batches(int64_t B) const;  // throws when B < 1
  SftBatch eval_batch(int64_t i, int64_t B) const;

 private:
  std::vector<SftEncoded> data_;
  int64_t max_len_;
  int64_t truncated_ = 0;
  int32_t eos_id_;
};

// Examples [0, n) split into train and validation: `frac` of them (rounded up, at least one when
// frac > 0) drawn by a fixed seeded shuffle, so every --seed of a run validates on the same examples.
// Throws when the split leaves nothing to train on.
struct SftSplit {
  std::vector<SftExample> train, valid;
};
SftSplit split_validation(std::vector<SftExample> all, double frac, const std::string& what);

}  // namespace lowrank::data
