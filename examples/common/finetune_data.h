#pragma once
// finetune's data (data/sft.h): the train file, the validation file or a split of the train file,
// tokenized once with the model's window, and the counts a user should see (examples, tokens, what
// was cut).
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "data/sft.h"
#include "data/tokenizer.h"
#include "tensor/error.h"

namespace lowrank::examples {

struct FinetuneDataOptions {
  std::string train, valid;  // files; valid "": split val_frac of train
  double val_frac = 0.05;
  data::SftFormat format = data::SftFormat::Auto;
  int64_t max_len = 0;  // tokens per example; checked against the model's window by the caller
};

struct FinetuneData {
  data::SftFormat format = data::SftFormat::Auto;
  std::unique_ptr<data::SftDataset> train, valid;  // valid: null when there is no validation
  std::string identity;                            // names the data in a checkpoint's fingerprint
};

// Trained tokens of a dataset (the tokens its loss averages over, one epoch).
inline int64_t trained_tokens(const data::SftDataset& ds) {
  int64_t n = 0;
  for (int64_t i = 0; i < ds.size(); ++i) n += ds.example(i).num_trained();
  return n;
}

inline FinetuneData load_finetune_data(const FinetuneDataOptions& o, const data::Tokenizer& tok) {
  data::SftFile train = data::load_sft(o.train, o.format);
  std::vector<data::SftExample> valid;
  if (!o.valid.empty()) {
    data::SftFile v = data::load_sft(o.valid, o.format == data::SftFormat::Auto ? train.format : o.format);
    valid = std::move(v.examples);
  } else if (o.val_frac > 0.0) {
    data::SftSplit s = data::split_validation(std::move(train.examples), o.val_frac, o.train);
    train.examples = std::move(s.train);
    valid = std::move(s.valid);
  }
  FinetuneData d;
  d.format = train.format;
  d.train = std::make_unique<data::SftDataset>(train.examples, tok, o.max_len, tok.eos_id());
  if (!valid.empty()) d.valid = std::make_unique<data::SftDataset>(valid, tok, o.max_len, tok.eos_id());
  std::error_code ec;
  d.identity = o.train + " (" + std::to_string(std::filesystem::file_size(o.train, ec)) + " bytes, " +
               data::sft_format_name(d.format) + ")" +
               (o.valid.empty() ? " val-frac " + std::to_string(o.val_frac) : " valid " + o.valid);
  return d;
}

// One line per split; a counted warning when examples were cut to max_len.
inline void print_data(const FinetuneData& d) {
  auto line = [&](const char* name, const data::SftDataset& ds) {
    std::printf("%s: %lld examples, %lld trained tokens (%s)\n", name, static_cast<long long>(ds.size()),
                static_cast<long long>(trained_tokens(ds)), data::sft_format_name(d.format));
    if (ds.num_truncated() > 0)
      std::fprintf(
          stderr, "warning: %lld of %lld %s examples are longer than --max-len %lld tokens and were cut on the right\n",
          static_cast<long long>(ds.num_truncated()), static_cast<long long>(ds.size()), name,
          static_cast<long long>(ds.max_len()));
  };
  line("train", *d.train);
  if (d.valid)
    line("valid", *d.valid);
  else
    std::printf("valid: none (--val-frac 0): no validation loss, the last step's weights are exported\n");
}

}  // namespace lowrank::examples
