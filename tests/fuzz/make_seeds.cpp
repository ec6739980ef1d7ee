// make_seeds <out-dir> <e2e-dir> <glue-dir>: writes the seed corpus of every harness of tests/fuzz/ to
// <out-dir>/<harness>/ (tools/fuzz.sh runs it before fuzzing). The seeds are made with the library's
// own writers from the committed fixtures and data, so nothing binary is committed for them, plus one
// regression seed per defect found in the loaders that a harness covers (named regress_*; docs/reliability.md).
//
// F32 files carry CRC-32s of their tensors, so a mutated tensor byte fails the checksum before any
// deeper check; every model, training and adapter seed is therefore also written without them
// ("*_nocrc", as HF and older files are), which mutations can get past.
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "data/bpe.h"
#include "data/glue.h"
#include "data/utf8.h"
#include "fuzz_util.h"
#include "optim/adamw.h"
#include "optim/checkpoint.h"
#include "optim/finetune_checkpoint.h"

using namespace lowrank;
namespace fs = std::filesystem;

namespace {

std::string out_dir;

std::string read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(cat("make_seeds: cannot read ", path));
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void put(const std::string& harness, const std::string& name, const std::string& bytes) {
  fs::create_directories(out_dir + "/" + harness);
  std::ofstream(out_dir + "/" + harness + "/" + name, std::ios::binary) << bytes;
}

// A safetensors file as the input of a harness, from a saved one with one metadata entry changed
// ("" erases it) and the checksums dropped (without them the file is still valid: no CRC check).
std::string rewrite(const std::string& path, const std::string& key = "", const std::string& value = "") {
  SafetensorsFile f = load_safetensors(path);
  nlohmann::json header = nlohmann::json::object();
  std::string bytes;
  for (const auto& kv : f.tensors) {
    const std::vector<float> v = kv.second.to_vector();
    const Shape& s = kv.second.shape();
    const std::vector<int64_t> shape(s.d.begin(), s.d.begin() + s.ndim);
    header[kv.first] = {
        {"dtype", "F32"}, {"shape", shape}, {"data_offsets", {bytes.size(), bytes.size() + 4 * v.size()}}};
    bytes.append(reinterpret_cast<const char*>(v.data()), 4 * v.size());
  }
  if (!key.empty()) f.metadata[key] = value;
  if (!key.empty() && value.empty()) f.metadata.erase(key);
  if (!f.metadata.empty()) header["__metadata__"] = f.metadata;
  const std::string h = header.dump();
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((h.size() >> (8 * i)) & 0xff);
  return out + h + bytes;
}

void model_seeds(const std::string& tmp) {
  Rng rng(1);
  nn::GPT model(fuzz::tiny_config(), rng);
  nn::save_model(tmp + "/m.safetensors", model);
  nn::save_model(tmp + "/m_bf16.safetensors", model, {}, "BF16");
  for (const char* h : {"checkpoint", "safetensors"}) {
    put(h, "model_f32", read(tmp + "/m.safetensors"));
    put(h, "model_bf16", read(tmp + "/m_bf16.safetensors"));
  }
  put("checkpoint", "model_nocrc", rewrite(tmp + "/m.safetensors"));
  nn::GPTConfig wide = fuzz::tiny_config();
  wide.n_embd = 40000;  // regression: built ~GBs of parameters for a file of a few KB before the shape check
  put("checkpoint", "regress_n_embd_40000",
      rewrite(tmp + "/m.safetensors", "lowrank.config", nn::config_to_json(wide).dump()));
  nlohmann::json huge = nn::config_to_json(fuzz::tiny_config());
  huge["n_embd"] = 1e300;  // a float size went through json's cast to int64: undefined behaviour (UBSan)
  put("checkpoint", "regress_n_embd_1e300", rewrite(tmp + "/m.safetensors", "lowrank.config", huge.dump()));

  optim::AdamW opt(model.named_parameters(), {});
  for (nn::NamedTensor& p : model.named_parameters()) p.tensor.set_grad(Tensor::full(p.tensor.shape(), 0.5f));
  opt.step(1e-2f);
  optim::save_training(tmp + "/t.safetensors", model, opt, {});
  put("training", "train_f32", read(tmp + "/t.safetensors"));
  put("training", "train_nocrc", rewrite(tmp + "/t.safetensors"));
  for (const char* step : {"abc", "-5", "2junk", "99999999999999999999"})  // regression: a bad opt.step
    put("training", std::string("regress_step_") + step, rewrite(tmp + "/t.safetensors", "opt.step", step));
}

void adapter_seeds(const std::string& tmp) {
  Rng rng(1);
  nn::GPT model(fuzz::tiny_config(), rng);
  Rng r7(7);
  lora::apply_lora(model, fuzz::adapter_config(), r7);  // as fuzz_adapter's model: the same base hash
  lora::save_adapter(tmp + "/a.safetensors", model, fuzz::adapter_config());
  put("adapter", "adapter_f32", read(tmp + "/a.safetensors"));
  put("adapter", "adapter_nocrc", rewrite(tmp + "/a.safetensors"));
  put("safetensors", "adapter_f32", read(tmp + "/a.safetensors"));
  nlohmann::json cfg = nlohmann::json::parse(load_safetensors(tmp + "/a.safetensors").metadata.at("lora.config"));
  cfg["r"] = 3;  // regression: a rank that disagrees with the tensors
  put("adapter", "regress_rank_3", rewrite(tmp + "/a.safetensors", "lora.config", cfg.dump()));
  cfg["r"] = 1e300;  // a float rank (or layer) went through json's cast to int64: undefined behaviour
  put("adapter", "regress_rank_1e300", rewrite(tmp + "/a.safetensors", "lora.config", cfg.dump()));
  cfg["r"] = 2;
  cfg["layers"] = {1e300};
  put("adapter", "regress_layers_1e300", rewrite(tmp + "/a.safetensors", "lora.config", cfg.dump()));
}

std::string peft_input(const std::string& dir, const std::string& tensors) {
  return read(dir + "/adapter_config.json") + std::string(fuzz::kSplit) + tensors;
}

void peft_seeds(const std::string& tmp) {
  for (const char* d : {"peft_made", "peft_resaved", "lowrank_written", "variants/dora", "variants/pissa",
                        "variants/rslora", "variants/lowrank_written_dora", "variants/lowrank_written_pissa"}) {
    const std::string dir = std::string(LOWRANK_SOURCE_DIR) + "/tests/fixtures/peft_tiny/" + d;
    std::string name = d;  // a file name: variants/dora -> variants_dora
    for (char& c : name) c = c == '/' ? '_' : c;
    put("peft", name, peft_input(dir, read(dir + "/adapter_model.safetensors")));
    put("safetensors", name, read(dir + "/adapter_model.safetensors"));
  }
  Rng rng(1);
  nn::GPT model(fuzz::peft_base_config(), rng);
  lora::apply_lora(model, fuzz::adapter_config(), rng);
  lora::save_peft(tmp + "/qv", model, fuzz::adapter_config());
  const std::string st = tmp + "/qv/adapter_model.safetensors";
  put("peft", "qv_nocrc", peft_input(tmp + "/qv", rewrite(st)));
  // regression: a q,v lora_B of (3C, 1) under our per-slice metadata: block_layout read 3C x 4 floats.
  SafetensorsFile f = load_safetensors(st);
  f.tensors["base_model.model.transformer.h.0.attn.c_attn.lora_B.weight"] = Tensor::zeros({3 * model.config.n_embd, 1});
  save_safetensors(st, f.tensors, f.metadata);
  put("peft", "regress_lora_B_3Cx1", peft_input(tmp + "/qv", rewrite(st)));
}

void bpe_seeds() {
  nlohmann::json vocab = nlohmann::json::object();
  for (char32_t cp : data::gpt2_byte_to_unicode()) vocab[data::utf8::encode(cp)] = vocab.size();
  for (const char* t : {"\xc4\xa0t", "he", "\xc4\xa0the", "<|endoftext|>"}) vocab[t] = vocab.size();
  const std::string merges = "#version: 0.2\n\xc4\xa0 t\nh e\n\xc4\xa0t he\n";
  const std::string s(fuzz::kSplit);
  put("bpe", "small_vocab", vocab.dump() + s + merges + s + "Hello the world<|endoftext|> the\n");
  put("bpe", "text", "Hello world, it's 2026: caf\xc3\xa9 \xe2\x80\x94 \xf0\x9f\x98\x80 \xff\xfe  \n\n<|endoftext|>");
}

// The first `lines` lines of a file.
std::string head(const std::string& path, int lines) {
  std::istringstream in(read(path));
  std::string out, line;
  for (int i = 0; i < lines && std::getline(in, line); ++i) out += line + "\n";
  return out;
}

// generate --input files: the fields and ids it takes, a BOM, CRLF, blank lines, escapes, and one
// bad line of each kind after good ones.
void generate_seeds() {
  const std::string ok = "{\"prompt\": \"name : The Vaults | Type : pub<|endoftext|>\", \"id\": 7}\n";
  put("generate_requests", "good",
      "\xEF\xBB\xBF" + ok +
          "\r\n{\"prompt\": \"caf\\u00e9 \\n\", \"id\": {\"a\": [1]}, \"max_new_tokens\": 3}\r\n"
          "  \n{\"max_new_tokens\": null, \"prompt\": \"x\", \"id\": null}\n");
  put("generate_requests", "bad_json", ok + "{\"prompt\": \"x\"\n");
  put("generate_requests", "bad_field", ok + "{\"prompt\": \"x\", \"max_tokens\": 2}\n");
  put("generate_requests", "bad_prompt", ok + "{\"prompt\": 3}\n{\"prompt\": \"\"}\n");
  put("generate_requests", "bad_max_new", ok + "{\"prompt\": \"x\", \"max_new_tokens\": 1e3}\n");
  put("generate_requests", "long_prompt",
      "{\"prompt\": \"" + std::string(300, 'a') + " b c d e f g h i j k l m n o p\"}\n");
}

// serve's request bodies: completions with every field, each kind of refusal, and adapter loads.
void serve_seeds() {
  put("serve_request", "good",
      "{\"model\": \"sql\", \"prompt\": \"name : The Vaults<|endoftext|>\", \"max_tokens\": 2, \"temperature\": 0, "
      "\"n\": 1, \"stream\": false, \"stop\": [\"\\n\", \".\"], \"beam\": 2}");
  put("serve_request", "minimal",
      "{\"model\": \"base\", \"prompt\": \"caf\\u00e9 x\", \"stop\": \"x\", \"beam\": null}");
  put("serve_request", "bad_json", "{\"model\": \"m\", \"prompt\": ");
  put("serve_request", "bad_types", "{\"model\": 3, \"prompt\": [\"a\"], \"max_tokens\": \"2\"}");
  put("serve_request", "bad_values",
      "{\"model\": \"m\", \"prompt\": \"a\", \"max_tokens\": 18446744073709551615, \"temperature\": 0.7, \"n\": 2}");
  put("serve_request", "long_prompt", "{\"model\": \"m\", \"prompt\": \"" + std::string(200, 'a') + " b c d e f\"}");
  put("serve_request", "adapter", "{\"name\": \"sql-v2.1_x\", \"path\": \"adapters/sql.safetensors\"}");
  put("serve_request", "bad_adapter", "{\"name\": \"a/b\", \"path\": \"\", \"rank\": 2}");
}

void data_seeds(const std::string& e2e_dir, const std::string& glue_dir) {
  put("e2e", "train_head", head(e2e_dir + "/train.txt", 20));
  put("e2e", "test_head", head(e2e_dir + "/test.txt", 5));
  put("e2e", "edges", "a|||b\n  x ||y \t\r\nname : X || A long reference that the shortest max_len cuts off .\n");
  const std::vector<std::string> tasks = data::glue_task_names();
  for (size_t i = 0; i < tasks.size(); ++i)
    put("glue", tasks[i] + "_dev_head",
        std::string(1, static_cast<char>(i)) + head(glue_dir + "/" + tasks[i] + "/dev.tsv", 12));
}

// finetune's data: each format as a .jsonl input (first byte 1) and plain text (first byte 0).
void sft_seeds(const std::string& e2e_dir) {
  put("sft", "prompt_completion",
      "\x01{\"prompt\": \"Review: fine\\nSentiment:\", \"completion\": \" positive\"}\n"
      "{\"prompt\": \"name : X<|endoftext|>\", \"completion\": \" X is a pub .\", \"id\": 3}\n");
  put("sft", "text", "\x01{\"text\": \"Hello world.\"}\n\n{\"text\": \"caf\\u00e9 \\ud83d\\ude00\"}\r\n");
  put("sft", "messages",
      "\x01{\"messages\": [{\"role\": \"system\", \"content\": \"S\"}, {\"role\": \"user\", \"content\": \"hi\"}, "
      "{\"role\": \"assistant\", \"content\": \"hello\"}, {\"role\": \"user\", \"content\": \"?\"}, "
      "{\"role\": \"assistant\", \"content\": \"!\"}]}\n");
  put("sft", "txt", std::string(1, '\0') + "one document\nover two lines\n\n\nanother\r\n");
  std::string e2e = "\x01";
  std::istringstream in(head(e2e_dir + "/train.txt", 8));
  for (std::string line; std::getline(in, line);) {
    const size_t sep = line.find("||");
    e2e += nlohmann::json{{"prompt", line.substr(0, sep) + "<|endoftext|>"}, {"completion", " " + line.substr(sep + 2)}}
               .dump() +
           "\n";
  }
  put("sft", "e2e_head", e2e);
}

// A finetune checkpoint of the fuzz harness's model (tiny GPT, LoRA r=2 on q and v), one step in.
void finetune_seeds(const std::string& tmp) {
  Rng rng(1);
  nn::GPT model(fuzz::tiny_config(), rng);
  lora::apply_lora(model, fuzz::adapter_config(), rng);
  std::vector<nn::NamedTensor> trainable, best_named;
  std::vector<Tensor> best;
  for (nn::NamedTensor& p : model.named_parameters())
    if (p.tensor.requires_grad()) trainable.push_back(p), best.push_back(p.tensor.clone());
  optim::AdamW opt(trainable, {});
  for (nn::NamedTensor& p : trainable) p.tensor.set_grad(Tensor::full(p.tensor.shape(), 0.5f));
  opt.step(1e-2f);
  const optim::FinetuneState s{"fuzz", 1, 2, Rng(5).state(), "{\"ok\": true}"};
  optim::save_finetune(tmp + "/f.safetensors", trainable, best, opt, s);
  put("finetune_checkpoint", "best_f32", read(tmp + "/f.safetensors"));
  put("finetune_checkpoint", "best_nocrc", rewrite(tmp + "/f.safetensors"));
  optim::save_finetune(tmp + "/g.safetensors", trainable, {}, opt, s);
  put("finetune_checkpoint", "no_best_nocrc", rewrite(tmp + "/g.safetensors"));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: make_seeds <out-dir> <e2e-dir> <glue-dir>\n";
    return 2;
  }
  out_dir = argv[1];
  const std::string tmp = fuzz::scratch_dir();
  model_seeds(tmp);
  adapter_seeds(tmp);
  peft_seeds(tmp);
  bpe_seeds();
  generate_seeds();
  serve_seeds();
  data_seeds(argv[2], argv[3]);
  sft_seeds(argv[2]);
  finetune_seeds(tmp);
  return 0;
}
