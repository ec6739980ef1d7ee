// bench_adapters: the paper's deployment argument, measured (Hu et al., 2021, Section 4.1: switch
// tasks by subtracting BA and adding B'A', "a quick operation with very little memory overhead";
// Section 4.2: batching inputs of different tasks needs the modules unmerged). Three parts:
//   switch      one task switch (AdapterSet::activate: unmerge + merge) against loading the checkpoint;
//   memory      RSS of N = 1, 10, 100 adapters on one base against N whole models (each count in a
//               fresh process), and the same by formula at GPT-3 175B beside the paper's figures;
//   throughput  one batch under Punica's adapter-popularity mixes, mixed / split / merged
//               (examples/common/adapter_throughput.h), in generated tokens per second.
// Random weights (timing and memory do not depend on them); medians over --repeats, the strategies
// interleaved within each repeat.
//   ./build/bench_adapters --threads 2 --json docs/results/adapters.json --markdown REPRODUCTION.md
#include <cstdio>
#include <filesystem>
#include <string>

#include "data/text.h"
#include "examples/common/adapter_tables.h"
#include "examples/common/adapter_throughput.h"
#include "examples/common/cli.h"
#include "examples/common/format.h"
#include "examples/common/results.h"
#include "tensor/parallel.h"

using namespace lowrank;
namespace ex = lowrank::examples;

namespace {

cxxopts::Options make_options() {
  cxxopts::Options o("bench_adapters", "Task switching, memory and mixed-batch throughput of many LoRA adapters");
  // clang-format off
  o.add_options()
    ("part", "all | switch | memory | throughput", cxxopts::value<std::string>()->default_value("all"))
    ("shapes", "model shapes for switch and memory", cxxopts::value<std::vector<std::string>>()->default_value("mini,gpt2"))
    ("throughput-shape", "model shape for throughput", cxxopts::value<std::string>()->default_value("gpt2"))
    ("batch", "throughput: requests per batch (and adapters in the pool)", cxxopts::value<int64_t>()->default_value("32"))
    ("prompt-len", "throughput: prompt tokens", cxxopts::value<int64_t>()->default_value("16"))
    ("new-tokens", "throughput: tokens generated per request", cxxopts::value<int64_t>()->default_value("16"))
    ("rank", "throughput: LoRA rank of every adapter (on Wq, Wv)", cxxopts::value<int64_t>()->default_value("16"))
    ("repeats", "timed repeats (medians)", cxxopts::value<int64_t>()->default_value("3"))
    ("max-model-mb", "memory: measure N whole models only while N x base stays under this", cxxopts::value<double>()->default_value("12000"))
    ("threads", "CPU threads (0: all)", cxxopts::value<int>()->default_value("2"))
    ("json", "write the results here", cxxopts::value<std::string>()->default_value(""))
    ("markdown", "rewrite the <!-- results:adapters --> section of this file", cxxopts::value<std::string>()->default_value(""))
    ("serve-load", "add tools/bench_serve.sh's JSON (docs/results/serve_load.json) to the tables", cxxopts::value<std::string>()->default_value(""))
    ("tables", "only print (and --markdown) the tables of this results file, measuring nothing", cxxopts::value<std::string>()->default_value(""))
    ("rss-child", "internal: KIND BASE ADAPTER N, prints the RSS growth", cxxopts::value<std::vector<std::string>>())
    ("h,help", "show help");
  // clang-format on
  return o;
}

// RSS growth of a child process running rss_child(kind, base, adapter, n).
double measure_rss(const std::string& self, const std::string& kind, const std::string& base,
                   const std::string& adapter, int64_t n) {
  const std::string cmd =
      self + " --threads 1 --rss-child " + kind + "," + base + "," + adapter + "," + std::to_string(n);
  std::FILE* p = popen(cmd.c_str(), "r");
  LR_CHECK(p, "bench_adapters: cannot run ", cmd);
  double mb = -1.0;
  const int got = std::fscanf(p, "%lf", &mb);
  LR_CHECK(pclose(p) == 0 && got == 1, "bench_adapters: ", cmd, " failed");
  return mb;
}

nlohmann::json memory_row(const std::string& self, const std::string& shape, const std::string& dir, double max_mb) {
  const std::string base = ex::write_base(shape, dir), adapter = dir + "/mem-" + shape + ".safetensors";
  ex::write_adapter(base, ex::lora_cfg(4, {"q", "v"}), 4, adapter);
  nlohmann::json row = {{"shape", shape}, {"adapter_bytes", std::filesystem::file_size(adapter)}};
  const double one = measure_rss(self, "models", base, adapter, 1);
  int64_t last = 1;  // the largest count of whole models measured
  double last_mb = one, per_model = one;
  for (int64_t n : {1, 10, 100}) {
    row["adapters_mb"][std::to_string(n)] = measure_rss(self, "adapters", base, adapter, n);
    const bool measured = static_cast<double>(n) * one <= max_mb;
    if (measured && n > 1) {
      const double mb = measure_rss(self, "models", base, adapter, n);
      per_model = (mb - one) / static_cast<double>(n - 1);  // without one load's transient buffers
      last = n;
      last_mb = mb;
    }
    // beyond max_mb: the largest measured count plus the measured cost of one more model
    row["models_mb"][std::to_string(n)] = measured ? (n == 1 ? one : last_mb) : last_mb + (n - last) * per_model;
    row["models_measured"][std::to_string(n)] = measured;
  }
  return row;
}

// GPT-3 175B (fp16) by formula: the paper's 350 GB checkpoint and 35 MB adapter (r = 4 on Wq, Wv).
nlohmann::json gpt3_formula() {
  const nn::GPTConfig c = nn::config_by_name("gpt3-175b");
  const double C = static_cast<double>(c.n_embd), L = static_cast<double>(c.n_layer);
  const double params = static_cast<double>(c.vocab_size + c.n_positions) * C + L * (12 * C * C + 13 * C) + 2 * C;
  const double adapter = L * 2 * 4 * (C + C);  // r (in + out) for Wq and Wv per layer
  nlohmann::json row = {{"shape", "gpt3-175b"}, {"params", params}, {"adapter_params", adapter}};
  for (int64_t n : {1, 10, 100}) {
    row["adapters_gb"][std::to_string(n)] = (2 * params + n * 2 * adapter) / 1e9;
    row["models_gb"][std::to_string(n)] = n * 2 * params / 1e9;
  }
  return row;
}

}  // namespace

int bench_main(int argc, char** argv) {
  cxxopts::Options options = make_options();
  auto a = ex::parse_args(options, argc, argv);
  tensor::set_num_threads(a["threads"].as<int>());
  if (a.count("rss-child")) {
    const std::vector<std::string> v = a["rss-child"].as<std::vector<std::string>>();
    LR_CHECK(v.size() == 4, "--rss-child KIND,BASE,ADAPTER,N");
    std::printf("%.3f\n", ex::rss_child(v[0], v[1], v[2], std::stoll(v[3])));
    return 0;
  }
  if (!a["tables"].as<std::string>().empty()) {
    const std::string md = ex::adapter_tables(nlohmann::json::parse(data::read_file(a["tables"].as<std::string>())));
    std::printf("%s", md.c_str());
    if (!a["markdown"].as<std::string>().empty()) ex::rewrite_section(a["markdown"].as<std::string>(), "adapters", md);
    return 0;
  }
  const std::string part = a["part"].as<std::string>();
  LR_CHECK(part == "all" || part == "switch" || part == "memory" || part == "throughput", "--part ", part,
           ": expected all, switch, memory or throughput");
  const ex::ScratchDir tmp("bench_adapters");
  const int repeats = static_cast<int>(a["repeats"].as<int64_t>());
  nlohmann::json j = {{"threads", tensor::num_threads()}};
  for (const std::string& shape : a["shapes"].as<std::vector<std::string>>()) {
    if (part == "all" || part == "switch") j["switch"].push_back(ex::switch_row(shape, tmp.path, repeats));
    if (part == "all" || part == "memory")
      j["memory"].push_back(memory_row(argv[0], shape, tmp.path, a["max-model-mb"].as<double>()));
  }
  if (part == "all" || part == "memory") j["memory_gpt3"] = gpt3_formula();
  if (part == "all" || part == "throughput")
    j["throughput"] = ex::throughput_rows(a["throughput-shape"].as<std::string>(), tmp.path, a["batch"].as<int64_t>(),
                                          a["prompt-len"].as<int64_t>(), a["new-tokens"].as<int64_t>(),
                                          a["rank"].as<int64_t>(), repeats);
  if (!a["serve-load"].as<std::string>().empty())
    j["serve_load"] = nlohmann::json::parse(data::read_file(a["serve-load"].as<std::string>()));
  const std::string md = ex::adapter_tables(j);
  std::printf("%s", md.c_str());
  if (!a["json"].as<std::string>().empty()) ex::write_json(a["json"].as<std::string>(), j);
  if (!a["markdown"].as<std::string>().empty()) ex::rewrite_section(a["markdown"].as<std::string>(), "adapters", md);
  return 0;
}

int main(int argc, char** argv) { return ex::run_main(argc, argv, bench_main); }
