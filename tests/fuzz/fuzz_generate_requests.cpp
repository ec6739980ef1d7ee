// Fuzzes generate's request reader (data/generate_requests.h): the input as a JSON Lines file of
// requests, parsed and checked with the real GPT-2 BPE against a context of 4 to 67 tokens.
//
// read_requests promises: any bad line (not JSON, not an object, an unknown field, a missing, empty or
// non-string "prompt", a prompt longer than the context, a "max_new_tokens" that is not an integer in
// range) is a lowrank::Error naming the file and line; otherwise one request per non-blank line, in
// order, each with a non-empty prompt whose tokens are its encoding, 1 to the context's length of
// them, and max_new_tokens within [1, cap]. The harness checks all of that on what it returns.
#include <string>

#include "data/bpe.h"
#include "data/generate_requests.h"
#include "fuzz_util.h"

using namespace lowrank;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const data::Gpt2Bpe bpe = data::Gpt2Bpe::from_dir(std::string(LOWRANK_SOURCE_DIR) + "/data/assets/gpt2-bpe");
  const std::string path = fuzz::write_file("requests.jsonl", fuzz::as_view(data, size));
  data::RequestLimits lim;
  lim.max_prompt_tokens = 4 + static_cast<int64_t>(size % 64);
  lim.default_max_new_tokens = 5;
  lim.max_new_tokens_cap = 1000;
  std::vector<data::JsonlRecord> records;
  std::vector<data::GenerateRequest> reqs;
  if (!fuzz::loads([&] { records = data::read_jsonl(path); })) return 0;
  if (!fuzz::loads([&] { reqs = data::parse_requests(records, bpe, lim, path); })) return 0;
  if (reqs.empty() || reqs.size() != records.size()) fuzz::finding("not one request per record");
  for (size_t i = 0; i < reqs.size(); ++i) {
    const data::GenerateRequest& q = reqs[i];
    const int64_t n = static_cast<int64_t>(q.tokens.size());
    if (q.prompt.empty() || n < 1 || n > lim.max_prompt_tokens) fuzz::finding("a prompt of the wrong length accepted");
    if (q.tokens != bpe.encode(q.prompt)) fuzz::finding("a request's tokens are not its prompt's encoding");
    if (q.max_new_tokens < 1 || q.max_new_tokens > lim.max_new_tokens_cap) fuzz::finding("max_new_tokens out of range");
    if (q.where != data::jsonl_where(records[i])) fuzz::finding("a request that names the wrong line");
    if (!records[i].value.contains("id") && q.id != nlohmann::json(i)) fuzz::finding("a missing id is not the index");
  }
  return 0;
}
