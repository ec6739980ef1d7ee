// bench_allreduce: what data-parallel training (docs/data_parallel.md) exchanges and spends per step,
// full fine-tuning against LoRA (r=4 on Wq, Wv), on the committed E2E base (12.3M parameters) and at GPT-2
// 124M's shape: the bytes
// every rank sends into the allreduce, the allreduce's time, the compute time (forward + backward of the
// rank's slice of the global batch), the scaling efficiency of 2 ranks against 1, and a projection to 8
// and 64 ranks from an alpha-beta model of ring allreduce (docs/benchmarks.md, "Data parallel").
//   ./build/bench_allreduce --json docs/results/data_parallel.json              # 1 rank: its columns
//   mpirun -np 2 ./build/bench_allreduce --json docs/results/data_parallel.json # 2 ranks: theirs
//   ./build/bench_allreduce --json docs/results/data_parallel.json --markdown docs/benchmarks.md  # the table
#include <cmath>
#include <iostream>

#include "autograd/ops.h"
#include "examples/common/cli.h"
#include "examples/common/data_parallel.h"
#include "examples/common/results.h"
#include "lora/methods.h"
#include "nn/checkpoint.h"
#include "nn/gpt.h"
#include "optim/adamw.h"
#include "tensor/parallel.h"

using namespace lowrank;
namespace ex = lowrank::examples;
namespace dist = lowrank::optim::dist;

namespace {

const std::string kSrc = LOWRANK_SOURCE_DIR;

cxxopts::Options make_options() {
  cxxopts::Options o("bench_allreduce", "Data-parallel step: bytes exchanged, allreduce and compute time, FT vs LoRA");
  // clang-format off
  o.add_options()
    ("models", "models: mini (the committed E2E base gpt-e2e-base5, 8 x 75 tokens per step), gpt2 (124M, 2 x 128)",
     cxxopts::value<std::string>()->default_value("mini,gpt2"))
    ("steps", "timed steps per run (after one warm-up step)", cxxopts::value<int64_t>()->default_value("3"))
    ("threads", "CPU threads per rank", cxxopts::value<int>()->default_value("1"))
    ("alpha-us", "per-message latency of the projection's links, microseconds", cxxopts::value<double>()->default_value("5"))
    ("json", "results file: this rank count's columns are added", cxxopts::value<std::string>()->default_value(""))
    ("markdown", "write the table from --json into this file's results:data_parallel section (no measuring)",
     cxxopts::value<std::string>()->default_value(""))
    ("h,help", "show help");
  // clang-format on
  return o;
}

struct Shape {
  std::string model;
  int64_t B, T;  // the global batch
};

struct Timing {
  int64_t trainable = 0;
  double compute = 0, allreduce = 0, optimizer = 0;  // seconds per step, medians
};

// One rank's steps of `method` on its slice of a global batch of random tokens.
Timing measure(const Shape& s, const std::string& method, int64_t steps) {
  Rng rng(1);
  const std::unique_ptr<nn::GPT> owned =
      s.model == "mini" ? nn::load_model(kSrc + "/data/assets/gpt-e2e-base5/gpt-e2e-base5.safetensors", rng)
                        : std::make_unique<nn::GPT>(nn::config_by_name(s.model), rng);
  nn::GPT& model = *owned;
  lora::MethodConfig mc;
  mc.method = method;
  mc.lora.r = 4;
  mc.lora.targets = {"q", "v"};
  mc.lora.dropout = 0.f;
  Timing t;
  t.trainable = lora::apply_method(model, mc, rng);
  optim::AdamW opt(model.named_parameters(), optim::AdamWConfig{});
  ex::broadcast_state(model.named_parameters(), &opt);
  const int64_t B = s.B / dist::size(), T = s.T, V = model.config.vocab_size;
  std::vector<int32_t> ids(static_cast<size_t>(B * T)), targets(ids.size());
  for (size_t i = 0; i < ids.size(); ++i)
    ids[i] = static_cast<int32_t>(rng.randint(V)), targets[i] = static_cast<int32_t>(rng.randint(V));
  std::vector<double> c, a, o;
  for (int64_t k = 0; k <= steps; ++k) {  // step 0 warms up
    ex::Timer timer;
    opt.zero_grad();
    autograd::backward(autograd::cross_entropy(model.forward(ids, B, T, {}), targets));
    const double tc = timer.seconds();
    dist::barrier();  // the allreduce's own time, not the wait for a slower rank
    timer.reset();
    ex::sum_gradients(model.named_parameters());
    const double ta = timer.seconds();
    timer.reset();
    opt.step(1e-4f);
    if (k > 0) c.push_back(tc), a.push_back(ta), o.push_back(timer.seconds());
  }
  t.compute = ex::median(c), t.allreduce = ex::median(a), t.optimizer = ex::median(o);
  return t;
}

// Adds this rank count's timings to the results file (rank 0 writes).
void record(const std::string& path, const Shape& s, const std::string& method, const Timing& t) {
  nlohmann::json j = ex::read_results(path, "data_parallel");
  const std::string key = s.model + " " + method;
  nlohmann::json row = {{"key", key}, {"model", s.model}, {"method", method}, {"batch", s.B}, {"seq", s.T}};
  for (const auto& r : j["runs"])
    if (r["key"] == key) row = r;
  row["trainable"] = t.trainable;
  row["bytes_per_step"] = t.trainable * 4;
  row["ranks"][std::to_string(dist::size())] = {{"compute_s", t.compute},
                                                {"allreduce_s", t.allreduce},
                                                {"optimizer_s", t.optimizer},
                                                {"threads", tensor::num_threads()}};
  ex::record_run(path, row);
}

// Ring allreduce of `bytes` over p ranks (Patarasuk and Yuan, 2009; Thakur et al., 2005): 2(p-1) steps
// of latency alpha, each rank sending and receiving 2(p-1)/p of the buffer at `gbit` Gbit/s.
double ring_seconds(double bytes, int p, double alpha_s, double gbit) {
  return 2.0 * (p - 1) * alpha_s + 2.0 * (p - 1) / p * bytes / (gbit * 1e9 / 8.0);
}

// 12343488 -> "12,343,488"
std::string grouped(int64_t n) {
  std::string s = std::to_string(n);
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(static_cast<size_t>(i), ",");
  return s;
}

std::string ms(double s) { return ex::fixed(s * 1e3, s < 0.01 ? 3 : 1); }
std::string pct(double x) { return std::isfinite(x) ? ex::fixed(100.0 * x, 0) + "%" : ""; }

// The measured table: per model and method, bytes, 1- and 2-rank times, and 2 ranks' efficiency.
std::string measured_table(const nlohmann::json& runs) {
  std::string s =
      "| model | method | trainable | bytes / step | compute, 1 rank (ms) | compute, 2 ranks (ms) | allreduce, 1 rank "
      "(ms) | allreduce, 2 ranks (ms) | step, 1 rank (ms) | step, 2 ranks (ms) | efficiency, 2 ranks |\n"
      "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& r : runs) {
    if (!r["ranks"].contains("1") || !r["ranks"].contains("2")) continue;
    const auto &one = r["ranks"]["1"], &two = r["ranks"]["2"];
    const auto step = [](const nlohmann::json& x) {
      return x["compute_s"].get<double>() + x["allreduce_s"].get<double>() + x["optimizer_s"].get<double>();
    };
    s += "| " + r["model"].get<std::string>() + " | " + r["method"].get<std::string>() + " | " +
         grouped(r["trainable"].get<int64_t>()) + " | " + grouped(r["bytes_per_step"].get<int64_t>()) + " | " +
         ms(one["compute_s"]) + " | " + ms(two["compute_s"]) + " | " + ms(one["allreduce_s"]) + " | " +
         ms(two["allreduce_s"]) + " | " + ms(step(one)) + " | " + ms(step(two)) + " | " +
         pct(step(one) / (2.0 * step(two))) + " |\n";
  }
  return s;
}

// The projection: compute as measured on 1 rank (each rank keeps that micro-batch), allreduce by the
// ring model; efficiency = compute / (compute + allreduce), with no overlap of the two.
std::string projected_table(const nlohmann::json& runs, double alpha_s) {
  std::string s =
      "| model | method | compute (ms) | ranks | link | allreduce (ms) | efficiency "
      "|\n|---|---|---:|---:|---|---:|---:|\n";
  for (const auto& r : runs) {
    if (!r["ranks"].contains("1")) continue;
    const double compute = r["ranks"]["1"]["compute_s"].get<double>(), bytes = r["bytes_per_step"].get<double>();
    for (int p : {8, 64})
      for (double gbit : {10.0, 100.0}) {
        const double ar = ring_seconds(bytes, p, alpha_s, gbit);
        s += "| " + r["model"].get<std::string>() + " | " + r["method"].get<std::string>() + " | " + ms(compute) +
             " | " + std::to_string(p) + " | " + ex::fixed(gbit, 0) + " Gbit/s | " + ms(ar) + " | " +
             pct(compute / (compute + ar)) + " |\n";
      }
  }
  return s;
}

int bench_main(int argc, char** argv) {
  cxxopts::Options options = make_options();
  auto a = ex::parse_args(options, argc, argv);
  const std::string json = a["json"].as<std::string>(), markdown = a["markdown"].as<std::string>();
  if (!markdown.empty()) {
    LR_CHECK(!json.empty(), "--markdown needs --json (the results to make the table of)");
    const nlohmann::json runs = ex::read_results(json, "data_parallel")["runs"];
    const double alpha_s = a["alpha-us"].as<double>() * 1e-6;
    ex::rewrite_section(markdown, "data_parallel",
                        measured_table(runs) + "\nProjected, alpha = " + ex::fixed(a["alpha-us"].as<double>(), 0) +
                            " µs per message:\n\n" + projected_table(runs, alpha_s));
    return 0;
  }
  tensor::set_num_threads(a["threads"].as<int>());
  for (const std::string& model : ex::split_list(a["models"].as<std::string>())) {
    LR_CHECK(model == "mini" || model == "gpt2", "--models: expected mini or gpt2, got '", model, "'");
    const Shape s = model == "mini" ? Shape{model, 8, 75} : Shape{model, 2, 128};
    ex::check_batch_split(s.B, "the global batch");
    for (const std::string method : {"ft", "lora"}) {
      const Timing t = measure(s, method, a["steps"].as<int64_t>());
      std::printf("%s %-4s ranks %d: %lld floats exchanged, compute %s ms, allreduce %s ms, optimizer %s ms\n",
                  model.c_str(), method.c_str(), dist::size(), static_cast<long long>(t.trainable),
                  ms(t.compute).c_str(), ms(t.allreduce).c_str(), ms(t.optimizer).c_str());
      if (dist::is_root() && !json.empty()) record(json, s, method, t);
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return ex::run_main(argc, argv, bench_main); }
