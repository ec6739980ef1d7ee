#pragma once
// JSON Lines: one JSON object per line (https://jsonlines.org), the format of OpenAI's fine-tuning
// files, of Alpaca-style instruction sets and of most Hugging Face SFT data sets. Used for
// `finetune --data` (data/sft.h) and for `generate`'s requests.
//
//   for (const JsonlRecord& r : read_jsonl("train.jsonl")) {
//     std::string prompt = jsonl_string(r, "prompt");   // "train.jsonl:3: field 'prompt' ..." on error
//   }
//
// Errors (lowrank::Error) name the file, the 1-based line and, where there is one, the field.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace lowrank::data {

struct JsonlRecord {
  std::string path;      // the file, for error messages
  int64_t line = 0;      // 1-based
  nlohmann::json value;  // always an object
};

// Every non-blank line of the file, parsed. A line that is not valid JSON, or valid JSON but not an
// object, is an error naming the file and line. A UTF-8 byte order mark at the start is skipped,
// "\r\n" line ends are accepted, blank (whitespace-only) lines are skipped.
std::vector<JsonlRecord> read_jsonl(const std::string& path);
// The same over text already in memory; `path` only names it in errors.
std::vector<JsonlRecord> parse_jsonl(const std::string& text, const std::string& path);

// The string field `field` of r: an error names file, line and field when it is missing or not a string.
std::string jsonl_string(const JsonlRecord& r, const char* field);
// Present and a string: its value; absent or null: `fallback`; any other type: an error.
std::string jsonl_string_or(const JsonlRecord& r, const char* field, const std::string& fallback);
// Present: an integer field within [lo, hi], else an error; absent or null: `fallback`.
int64_t jsonl_int_or(const JsonlRecord& r, const char* field, int64_t fallback, int64_t lo, int64_t hi);

// "path:line: " + what, the prefix every error above uses.
std::string jsonl_where(const JsonlRecord& r);

}  // namespace lowrank::data
