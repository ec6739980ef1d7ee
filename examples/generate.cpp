// generate: text from a base GPT-2 plus an optional LoRA adapter, for one prompt (streamed to stdout)
// or for a JSON Lines file of requests (batched, one output line per request). docs/generate.md.
/*   ./build/generate --init data/assets/gpt-e2e-base5/gpt-e2e-base5.safetensors \
         --prompt 'name : The Vaults | Type : pub | priceRange : more than £ 30<|endoftext|>' */
/*   ./build/generate --init path/to/hf-gpt2 --adapter out/peft-adapter --prompt-file prompt.txt \
         --decode sample --temperature 0.8 --top-p 0.9 --seed 7 --stop '\n' */
/*   ./build/generate --init base.safetensors --adapter out/e2e.safetensors --input requests.jsonl \
         --output out.jsonl --decode beam --beam 10 --length-penalty 0.9 --no-repeat-ngram 4 --json m.json */
// One prompt: stdout is the completion (then a newline), printed as it is generated for greedy and
// sampling; the run's figures go to stderr. JSONL: --output gets {"id", "prompt", "completion",
// "tokens", "finish_reason"} per request, in input order (plus "expected" and "match" for a request
// that carries its expected "completion": finetune's files score as they are), and stdout a summary
// table with the exact-match rate.
// Every option and the whole input are checked before decoding starts; errors are one line, exit 1,
// and nothing is written (--output and --json go through a temp file and a rename).
#define CXXOPTS_VECTOR_DELIMITER '\0'  // --stop values are taken whole: "," and ", " are useful stops
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>

#include "data/bpe.h"
#include "data/generate_requests.h"
#include "data/text.h"
#include "examples/common/cli.h"
#include "examples/common/generate_run.h"
#include "examples/common/model_load.h"
#include "lora/lora.h"
#include "tensor/parallel.h"

using namespace lowrank;
namespace ex = lowrank::examples;

namespace {

const std::string kSrc = LOWRANK_SOURCE_DIR;

cxxopts::Options make_options() {
  cxxopts::Options o("generate", "Generate text with a GPT-2 base and an optional LoRA adapter");
  // clang-format off
  o.add_options()
    ("init", "the base: a lowrank checkpoint (.safetensors) or a Hugging Face GPT-2 directory (required)",
     cxxopts::value<std::string>())
    ("adapter", "a LoRA adapter: lowrank's .safetensors (base hash checked) or a peft directory; NAME=PATH, "
     "repeatable, loads several on one base, which --input requests pick by name (\"adapter\"), decoded together",
     cxxopts::value<std::vector<std::string>>())
    ("prompt", "one prompt (\"<|endoftext|>\" in it is the EOS token)", cxxopts::value<std::string>())
    ("prompt-file", "one prompt: the whole file, as it is", cxxopts::value<std::string>())
    ("input", "requests, JSON Lines: {\"prompt\" or \"messages\", optional \"id\", \"max_new_tokens\", \"adapter\", \"completion\" (expected)}", cxxopts::value<std::string>())
    ("output", "with --input: one JSON line per request", cxxopts::value<std::string>()->default_value(""))
    ("decode", "greedy | sample | beam", cxxopts::value<std::string>()->default_value("greedy"))
    ("temperature", "sample: softmax temperature", cxxopts::value<float>()->default_value("1.0"))
    ("top-k", "sample: keep the k most likely tokens (0: all)", cxxopts::value<int64_t>()->default_value("0"))
    ("top-p", "sample: keep the smallest set of most likely tokens whose probability reaches p, in (0, 1]",
     cxxopts::value<float>()->default_value("1.0"))
    ("beam", "beam: beam size", cxxopts::value<int64_t>()->default_value("4"))
    ("length-penalty", "beam: score = log-prob / length^penalty", cxxopts::value<float>()->default_value("1.0"))
    ("no-repeat-ngram", "never repeat an n-gram of the generated text (0: off)", cxxopts::value<int64_t>()->default_value("0"))
    ("max-new-tokens", "tokens to generate at most (a request's \"max_new_tokens\" overrides it)",
     cxxopts::value<int64_t>()->default_value("64"))
    ("stop", "stop when the completion contains this string, cut before it (repeatable; \\n, \\t, \\\\ are escapes)",
     cxxopts::value<std::vector<std::string>>())
    ("seed", "sampling seed (request i of --input samples from its own stream of (seed, i))",
     cxxopts::value<uint64_t>()->default_value("1"))
    ("decode-batch", "greedy/beam over --input: requests per batched search", cxxopts::value<int64_t>()->default_value("8"))
    ("json", "write the run's figures (requests, tokens, tokens/s, seconds) here", cxxopts::value<std::string>()->default_value(""))
    ("device", "cpu or cuda (a GPU build)", cxxopts::value<std::string>()->default_value("cpu"))
    ("threads", "CPU threads (0: all)", cxxopts::value<int>()->default_value("0"))
    ("help", "print this help");
  // clang-format on
  return o;
}

// "\n", "\t" and "\\" in a --stop value, which a shell passes as two characters.
std::string unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\' || i + 1 == s.size()) {
      out += s[i];
      continue;
    }
    const char c = s[++i];
    if (c == 'n')
      out += '\n';
    else if (c == 't')
      out += '\t';
    else if (c == '\\')
      out += '\\';
    else
      out += std::string("\\") + c;  // not an escape: both characters as they are
  }
  return out;
}

// Options that only one --decode mode reads are refused with the others, so that `--decode greedy
// --temperature 0.7` does not silently ignore the temperature.
void check_mode_options(const cxxopts::ParseResult& a, const std::string& mode) {
  const std::map<std::string, std::string> owner = {{"temperature", "sample"},
                                                    {"top-k", "sample"},
                                                    {"top-p", "sample"},
                                                    {"beam", "beam"},
                                                    {"length-penalty", "beam"}};
  for (const auto& [opt, m] : owner)
    LR_CHECK(a.count(opt) == 0 || m == mode, "--", opt, " applies to --decode ", m, ", not ", mode);
}

ex::GenerateSettings read_settings(const cxxopts::ParseResult& a) {
  ex::GenerateSettings s;
  s.mode = a["decode"].as<std::string>();
  LR_CHECK(s.mode == "greedy" || s.mode == "sample" || s.mode == "beam", "--decode ", s.mode,
           ": expected greedy, sample or beam");
  check_mode_options(a, s.mode);
  s.sample.temperature = a["temperature"].as<float>();
  s.sample.top_k = a["top-k"].as<int64_t>();
  s.sample.top_p = a["top-p"].as<float>();
  LR_CHECK(s.sample.top_p > 0.f && s.sample.top_p <= 1.f, "--top-p ", s.sample.top_p, ": must be in (0, 1]");
  s.decode.beam_size = s.mode == "beam" ? a["beam"].as<int64_t>() : 1;
  s.decode.length_penalty = a["length-penalty"].as<float>();
  LR_CHECK(std::isfinite(s.decode.length_penalty), "--length-penalty ", s.decode.length_penalty, ": must be finite");
  s.decode.no_repeat_ngram_size = a["no-repeat-ngram"].as<int64_t>();
  LR_CHECK(s.decode.no_repeat_ngram_size >= 0, "--no-repeat-ngram ", s.decode.no_repeat_ngram_size,
           ": must be at least 0");
  s.decode.max_new_tokens = a["max-new-tokens"].as<int64_t>();
  if (a.count("stop"))
    for (const std::string& stop : a["stop"].as<std::vector<std::string>>()) s.stops.push_back(unescape(stop));
  for (const std::string& stop : s.stops) LR_CHECK(!stop.empty(), "--stop: an empty stop string");
  s.seed = a["seed"].as<uint64_t>();
  s.decode_batch = a["decode-batch"].as<int64_t>();
  return s;
}

// --adapter: one PATH (merged into the base), or NAME=PATH entries (a lora::AdapterSet), not both.
struct AdapterArgs {
  std::string path;                                        // the one adapter, or ""
  std::vector<std::pair<std::string, std::string>> named;  // (NAME, PATH)
};

AdapterArgs adapter_args(const cxxopts::ParseResult& a) {
  AdapterArgs out;
  if (!a.count("adapter")) return out;
  const std::vector<std::string> v = a["adapter"].as<std::vector<std::string>>();
  for (const std::string& x : v) {
    const size_t eq = x.find('=');
    const bool named = eq != std::string::npos && eq > 0 && x.substr(0, eq).find('/') == std::string::npos;
    if (!named) {
      LR_CHECK(v.size() == 1, "--adapter ", x, ": several adapters are given as NAME=PATH");
      out.path = x;
      continue;
    }
    const std::string name = x.substr(0, eq), path = x.substr(eq + 1);
    LR_CHECK(!path.empty(), "--adapter ", x, ": NAME=PATH with an empty PATH");
    for (const auto& n : out.named)
      LR_CHECK(n.first != name, "--adapter ", x, ": the name '", name, "' is given twice");
    out.named.emplace_back(name, path);
  }
  return out;
}

// Exactly one of --prompt, --prompt-file, --input; --output with --input only.
void check_inputs(const cxxopts::ParseResult& a) {
  LR_CHECK(a.count("init"), "--init is required (a lowrank checkpoint or a Hugging Face GPT-2 directory)");
  const size_t given = a.count("prompt") + a.count("prompt-file") + a.count("input");
  LR_CHECK(given == 1, "give exactly one of --prompt, --prompt-file, --input");
  const std::string out = a["output"].as<std::string>();
  LR_CHECK(a.count("input") == 0 || !out.empty(), "--input needs --output (the file for the completions)");
  LR_CHECK(a.count("input") == 1 || out.empty(), "--output goes with --input; one prompt's completion goes to stdout");
  ex::check_output_path("output", out);
}

std::string trim(const std::string& s) {
  const char* ws = " \t\r\n";
  const size_t b = s.find_first_not_of(ws);
  return b == std::string::npos ? "" : s.substr(b, s.find_last_not_of(ws) - b + 1);
}

// Completions may end inside a UTF-8 character (a length limit between two byte tokens): such bytes
// become U+FFFD in the JSON rather than an invalid file. Keys in the documented order (ordered_json).
std::string json_line(const nlohmann::ordered_json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

struct RunFigures {
  int64_t requests = 0, tokens = 0;
  double seconds = 0;
  std::map<std::string, int64_t> finish;  // finish_reason -> requests
  int64_t expected = 0, matched = 0;      // requests with a "completion", and those reproduced exactly
};

void write_metrics(const cxxopts::ParseResult& a, const ex::GenerateSettings& s, const RunFigures& f) {
  const std::string path = a["json"].as<std::string>();
  if (path.empty()) return;
  ex::write_json(path,
                 {{"decode", s.mode},
                  {"requests", f.requests},
                  {"tokens_generated", f.tokens},
                  {"seconds", f.seconds},
                  {"tokens_per_s", f.seconds > 0 ? f.tokens / f.seconds : 0.0},
                  {"finish_reasons", f.finish},
                  {"threads", tensor::num_threads()},
                  {"expected", f.expected},
                  {"exact_match", f.expected > 0 ? nlohmann::json(double(f.matched) / f.expected) : nlohmann::json()}});
}

// One prompt: the completion on stdout (streamed unless beam), the figures on stderr.
int one_prompt(const cxxopts::ParseResult& a, nn::GPT& model, const data::Tokenizer& tok,
               const ex::GenerateSettings& s) {
  const bool from_file = a.count("prompt-file") > 0;
  const std::string text =
      from_file ? data::read_file(a["prompt-file"].as<std::string>()) : a["prompt"].as<std::string>();
  const std::string what = from_file ? "--prompt-file " + a["prompt-file"].as<std::string>() : std::string("--prompt");
  LR_CHECK(!text.empty(), what, ": empty prompt");
  const std::vector<int32_t> prompt = tok.encode(text);
  LR_CHECK(static_cast<int64_t>(prompt.size()) <= model.config.n_positions, what, ": ", prompt.size(),
           " tokens, more than the model's context of ", model.config.n_positions);
  ex::Timer timer;
  ex::Completion c;
  if (s.mode == "beam") {
    c = ex::from_hypothesis(tok, nn::beam_decode(model, prompt, s.decode), s.stops);
    std::fwrite(c.text.data(), 1, c.text.size(), stdout);
  } else {
    c = ex::sample_one(model, tok, prompt, s.decode.max_new_tokens, s, 0, stdout);
  }
  std::fputc('\n', stdout);
  std::fflush(stdout);
  const RunFigures f{1, c.tokens, timer.seconds(), {{c.finish_reason, 1}}};
  std::fprintf(stderr, "%ld tokens in %.2f s (%.1f tokens/s), finish: %s\n", static_cast<long>(c.tokens), f.seconds,
               f.seconds > 0 ? c.tokens / f.seconds : 0.0, c.finish_reason.c_str());
  write_metrics(a, s, f);
  return 0;
}

// --input: every request checked and tokenized first, then decoded; --output written at the end.
// Every request's "adapter" is one of the set's (or none).
void check_request_adapters(const std::vector<data::GenerateRequest>& reqs, const lora::AdapterSet* set) {
  for (const data::GenerateRequest& r : reqs) {
    if (r.adapter.empty()) continue;
    LR_CHECK(set, r.where, "field 'adapter' names '", r.adapter, "', but no --adapter NAME=PATH was given");
    if (set->has(r.adapter)) continue;
    std::string known;
    for (const lora::AdapterInfo& i : set->adapters()) known += (known.empty() ? "" : ", ") + i.name;
    LR_CHECK(false, r.where, "field 'adapter': unknown adapter '", r.adapter, "' (given: ", known, ")");
  }
}

int many_prompts(const cxxopts::ParseResult& a, nn::GPT& model, const data::Tokenizer& tok,
                 const ex::GenerateSettings& s, lora::AdapterSet* set) {
  data::RequestLimits lim;
  lim.max_prompt_tokens = model.config.n_positions;
  lim.default_max_new_tokens = s.decode.max_new_tokens;
  const std::vector<data::GenerateRequest> reqs = data::read_requests(a["input"].as<std::string>(), tok, lim);
  check_request_adapters(reqs, set);
  ex::Timer timer;
  ex::ProgressBar bar(static_cast<long>(reqs.size()));
  long finished = 0;
  const std::vector<ex::Completion> out = ex::run_requests(
      model, tok, reqs, s, [&](size_t n) { bar.update(finished += static_cast<long>(n)); }, set);
  bar.finish();
  RunFigures f;
  f.seconds = timer.seconds();
  f.requests = static_cast<int64_t>(reqs.size());
  std::string lines;
  for (size_t i = 0; i < reqs.size(); ++i) {
    nlohmann::ordered_json line = {{"id", nlohmann::ordered_json::parse(reqs[i].id.dump())},
                                   {"prompt", reqs[i].prompt}};
    if (set)  // which adapter wrote it (null: the base)
      line["adapter"] = reqs[i].adapter.empty() ? nlohmann::ordered_json() : nlohmann::ordered_json(reqs[i].adapter);
    line["completion"] = out[i].text;
    line["tokens"] = out[i].tokens;
    line["finish_reason"] = out[i].finish_reason;
    if (reqs[i].has_expected) {  // exact match, ignoring the whitespace around either
      const bool match = trim(out[i].text) == trim(reqs[i].expected);
      line["expected"] = reqs[i].expected;
      line["match"] = match;
      ++f.expected;
      f.matched += match;
    }
    lines += json_line(line);
    f.tokens += out[i].tokens;
    ++f.finish[out[i].finish_reason];
  }
  ex::write_text(a["output"].as<std::string>(), lines);
  write_metrics(a, s, f);
  std::vector<std::vector<std::string>> rows = {{"requests", std::to_string(f.requests)},
                                                {"tokens generated", std::to_string(f.tokens)},
                                                {"seconds", ex::fixed(f.seconds, 2)},
                                                {"tokens/s", ex::fixed(f.seconds > 0 ? f.tokens / f.seconds : 0.0, 1)}};
  for (const auto& [reason, n] : f.finish) rows.push_back({"finish " + reason, std::to_string(n)});
  if (f.expected > 0)
    rows.push_back({"exact match",
                    std::to_string(f.matched) + " of " + std::to_string(f.expected) + " (" +
                        ex::fixed(100.0 * static_cast<double>(f.matched) / static_cast<double>(f.expected), 1) + "%)"});
  ex::print_table({"generate (" + s.mode + ")", "value"}, rows);
  return 0;
}

int generate_main(int argc, char** argv) {
  cxxopts::Options options = make_options();
  auto a = ex::parse_args(options, argc, argv);
  check_inputs(a);
  const ex::GenerateSettings s = read_settings(a);
  tensor::set_num_threads(a["threads"].as<int>());
  const tensor::Device device = ex::device_option(a);
  data::Gpt2Bpe tok = data::Gpt2Bpe::from_dir(kSrc + "/data/assets/gpt2-bpe");
  Rng rng(s.seed);
  const std::string init = a["init"].as<std::string>();
  const AdapterArgs ad = adapter_args(a);
  LR_CHECK(ad.named.empty() || a.count("input"),
           "--adapter NAME=PATH goes with --input, whose requests pick their adapter by name (\"adapter\")");
  std::unique_ptr<nn::GPT> model = ex::load_model_with_adapter(init, ad.path, device, rng);
  LR_CHECK(model->config.vocab_size == tok.vocab_size(), init, ": vocabulary ", model->config.vocab_size,
           " is not GPT-2 BPE's ", tok.vocab_size());
  // Inference only: W0 + ΔW folded into one matrix costs nothing per token (the paper, Section 4.2).
  if (!ad.path.empty()) lora::merge(*model);
  std::unique_ptr<lora::AdapterSet> set;  // several adapters: unmerged, picked per request
  if (!ad.named.empty()) {
    set = std::make_unique<lora::AdapterSet>(*model);
    for (const auto& [name, path] : ad.named) set->load(name, path);
  }
  return a.count("input") ? many_prompts(a, *model, tok, s, set.get()) : one_prompt(a, *model, tok, s);
}

}  // namespace

int main(int argc, char** argv) { return ex::run_main(argc, argv, generate_main); }
