// to_jsonl: the data sets this repository carries, as the JSON Lines that finetune reads
// (data/sft.h), so that the paper's tasks and a user's own data go through one trainer.
//   ./build/to_jsonl --from e2e --split train --out out/e2e-train.jsonl
//       {"prompt": "name : The Vaults | Type : pub ...<|endoftext|>", "completion": " The Vaults is a pub ..."}
//       E2E's encoding (data/e2e.h): finetune on this equals finetune_e2e's training, loss for loss.
//   ./build/to_jsonl --from sst2 --split train --out out/sst2-train.jsonl
//       {"prompt": "Review: a gripping film\nSentiment:", "completion": " positive"}
//   ./build/to_jsonl --from mrpc|rte ...          sentence pairs -> " yes" / " no"
//   ./build/to_jsonl --from e2e-chat --split train --limit 2000 --out out/chat.jsonl
//       a small two-turn chat set: describe the restaurant of an MR, then answer a question about one
//       of its slots ({"messages": [system, user, assistant, user, assistant]}).
// --input FILE reads another file of the same layout instead of the split's.
#include <fstream>
#include <iostream>

#include "data/e2e.h"
#include "data/glue.h"
#include "examples/common/cli.h"

using namespace lowrank;
namespace ex = lowrank::examples;

namespace {

const std::string kE2E = LOWRANK_E2E_DIR;
const std::string kGlue = LOWRANK_GLUE_DIR;

nlohmann::json glue_record(const std::string& task, const data::GlueExample& g) {
  if (task == "sst2")
    return {{"prompt", "Review: " + g.a + "\nSentiment:"}, {"completion", g.label == 1 ? " positive" : " negative"}};
  if (task == "mrpc")  // label 1: a paraphrase
    return {{"prompt", "Sentence 1: " + g.a + "\nSentence 2: " + g.b + "\nParaphrase:"},
            {"completion", g.label == 1 ? " yes" : " no"}};
  return {{"prompt", "Premise: " + g.a + "\nHypothesis: " + g.b + "\nEntailment:"},  // rte: label 0 entails
          {"completion", g.label == 0 ? " yes" : " no"}};
}

// "name : The Vaults | Type : pub | area : riverside" -> {{"name", "The Vaults"}, ...}
std::vector<std::pair<std::string, std::string>> mr_slots(const std::string& mr) {
  std::vector<std::pair<std::string, std::string>> out;
  size_t b = 0;
  while (b < mr.size()) {
    size_t e = mr.find(" | ", b);
    if (e == std::string::npos) e = mr.size();
    const std::string item = mr.substr(b, e - b);
    const size_t colon = item.find(" : ");
    if (colon != std::string::npos) out.emplace_back(item.substr(0, colon), item.substr(colon + 3));
    b = e + 3;
  }
  return out;
}

// Describe the MR, then a question about one of its slots (the i-th example asks about slot i mod
// its slots after the name), answered with the slot's value.
nlohmann::json chat_record(const data::E2EExample& e, size_t i) {
  const auto slots = mr_slots(e.mr);
  const auto& [slot, value] = slots.size() > 1 ? slots[1 + i % (slots.size() - 1)] : slots.at(0);
  auto msg = [](const char* role, const std::string& content) {
    return nlohmann::json{{"role", role}, {"content", content}};
  };
  return {{"messages",
           {msg("system", "You describe restaurants from their attributes."), msg("user", "Describe: " + e.mr),
            msg("assistant", e.ref), msg("user", "What is its " + slot + "?"), msg("assistant", value)}}};
}

std::vector<nlohmann::json> records(const std::string& from, const std::string& split, const std::string& input,
                                    int64_t limit) {
  std::vector<nlohmann::json> out;
  const bool e2e = from == "e2e" || from == "e2e-chat";
  LR_CHECK(e2e || from == "sst2" || from == "mrpc" || from == "rte", "--from: unknown data set '", from,
           "', expected e2e, e2e-chat, sst2, mrpc or rte");
  if (e2e) {
    LR_CHECK(split == "train" || split == "valid" || split == "test", "--split ", split,
             ": E2E has train, valid and test");
    const std::vector<data::E2EExample> ex = data::load_e2e(input.empty() ? kE2E + "/" + split + ".txt" : input);
    for (size_t i = 0; i < ex.size() && (limit <= 0 || static_cast<int64_t>(out.size()) < limit); ++i)
      out.push_back(from == "e2e" ? data::e2e_jsonl_record(ex[i]) : chat_record(ex[i], i));
    return out;
  }
  LR_CHECK(split == "train" || split == "dev", "--split ", split, ": GLUE has train and dev");
  for (const data::GlueExample& g :
       data::load_glue(from, input.empty() ? kGlue + "/" + from + "/" + split + ".tsv" : input)) {
    if (limit > 0 && static_cast<int64_t>(out.size()) >= limit) break;
    out.push_back(glue_record(from, g));
  }
  return out;
}

int to_jsonl_main(int argc, char** argv) {
  cxxopts::Options o("to_jsonl", "Write a data set of this repository as finetune's JSON Lines");
  // clang-format off
  o.add_options()
    ("from", "e2e|e2e-chat|sst2|mrpc|rte", cxxopts::value<std::string>())
    ("split", "train|valid|test (E2E), train|dev (GLUE)", cxxopts::value<std::string>()->default_value("train"))
    ("input", "read this file instead of the split's", cxxopts::value<std::string>()->default_value(""))
    ("limit", "write the first N records (0: all)", cxxopts::value<int64_t>()->default_value("0"))
    ("out", "the .jsonl file to write", cxxopts::value<std::string>())
    ("h,help", "show help");
  // clang-format on
  auto a = ex::parse_args(o, argc, argv);
  LR_CHECK(a.count("from") && a.count("out"), "--from and --out are required (try --help)");
  const std::string out = a["out"].as<std::string>();
  ex::check_output_path("out", out);
  LR_CHECK(a["limit"].as<int64_t>() >= 0, "--limit ", a["limit"].as<int64_t>(), " must be >= 0");
  const std::vector<nlohmann::json> recs = records(a["from"].as<std::string>(), a["split"].as<std::string>(),
                                                   a["input"].as<std::string>(), a["limit"].as<int64_t>());
  std::string text;
  for (const nlohmann::json& r : recs) text += r.dump() + "\n";
  ex::write_text(out, text);
  std::cout << "wrote " << recs.size() << " records to " << out << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return ex::run_main(argc, argv, to_jsonl_main); }
