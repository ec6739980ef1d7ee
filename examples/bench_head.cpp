// bench_head: the LM head and its loss, forward + backward, unfused (cross_entropy(matmul(h, wᵀ))) against
// autograd::linear_cross_entropy at several chunk sizes: median time and peak tensor memory of each
// (docs/benchmarks.md, "The LM head only where the loss is"). Defaults: an E2E batch of the `mini`
// models (240 loss rows, C = 192, GPT-2's V = 50257,
// a frozen head as under LoRA). A benchmark: it checks nothing.
//   ./build/bench_head --threads 1                       # E2E's loss rows
//   ./build/bench_head --threads 1 --rows 1024 --train-head   # train_gpt's full sequence, FT
#include <algorithm>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "examples/common/cli.h"
#include "tensor/parallel.h"
#include "tensor/storage.h"

namespace {
using namespace lowrank;

struct Timing {
  double median_ms = 0.0;
  double peak_mb = 0.0;  // tensor bytes in use at the peak, above those before the first call
};

// One warm-up call, then `repeats` timed forward + backward calls of loss_fn.
Timing time_head(const std::function<Tensor()>& loss_fn, int repeats) {
  autograd::backward(loss_fn());
  const size_t base = tensor::cpu_bytes_in_use();
  tensor::reset_cpu_bytes_peak();
  std::vector<double> ms;
  for (int i = 0; i < repeats; ++i) {
    examples::Timer t;
    autograd::backward(loss_fn());
    ms.push_back(t.seconds() * 1e3);
  }
  std::sort(ms.begin(), ms.end());
  return {ms[ms.size() / 2], static_cast<double>(tensor::cpu_bytes_peak() - base) / 1e6};
}

int bench_main(int argc, char** argv) {
  cxxopts::Options options("bench_head", "The LM head + cross-entropy, unfused vs linear_cross_entropy in row chunks");
  // clang-format off
  options.add_options()
    ("rows", "loss rows N", cxxopts::value<int64_t>()->default_value("240"))
    ("channels", "model width C", cxxopts::value<int64_t>()->default_value("192"))
    ("vocab", "vocabulary V", cxxopts::value<int64_t>()->default_value("50257"))
    ("chunks", "chunk sizes in rows (0: the op's default)", cxxopts::value<std::string>()->default_value("64,128,256,0"))
    ("train-head", "the head w needs a gradient too (full fine-tuning; LoRA freezes it)")
    ("repeats", "timed calls per method (median)", cxxopts::value<int>()->default_value("5"))
    ("threads", "CPU threads (0: all)", cxxopts::value<int>()->default_value("0"))
    ("h,help", "show help");
  // clang-format on
  const auto a = examples::parse_args(options, argc, argv);
  tensor::set_num_threads(a["threads"].as<int>());
  const int64_t N = a["rows"].as<int64_t>(), C = a["channels"].as<int64_t>(), V = a["vocab"].as<int64_t>();
  LR_CHECK(N >= 1 && C >= 1 && V >= 1, "--rows, --channels and --vocab must be positive");
  Rng rng(1);
  Tensor h = Tensor::randn({N, C}, rng).requires_grad_(true);  // (N, C)
  Tensor w = Tensor::randn({V, C}, rng, 0.1f);                 // (V, C)
  if (a.count("train-head")) w.requires_grad_(true);
  std::vector<int32_t> targets(static_cast<size_t>(N));
  for (int64_t i = 0; i < N; ++i) targets[i] = static_cast<int32_t>((i * 7919) % V);
  autograd::CrossEntropyOptions opt;  // as E2E's loss: label smoothing 0.1
  opt.label_smoothing = 0.1f;
  const int repeats = a["repeats"].as<int>();
  std::printf("N %lld, C %lld, V %lld, head %s, %d thread(s), median of %d\n", static_cast<long long>(N),
              static_cast<long long>(C), static_cast<long long>(V), w.requires_grad() ? "trained" : "frozen",
              tensor::num_threads(), repeats);
  std::printf("%-22s %10s %14s\n", "method", "ms", "peak MB");
  auto row = [&](const std::string& name, const Timing& t) {
    std::printf("%-22s %10.1f %14.1f\n", name.c_str(), t.median_ms, t.peak_mb);
  };
  row("unfused",
      time_head([&] { return autograd::cross_entropy(autograd::matmul(h, w, false, true), targets, opt); }, repeats));
  for (const std::string& s : examples::split_list(a["chunks"].as<std::string>())) {
    const int64_t R = std::stoll(s);
    row("fused, chunk " + (R == 0 ? "default" : s),
        time_head([&] { return autograd::linear_cross_entropy(h, w, targets, opt, R); }, repeats));
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return lowrank::examples::run_main(argc, argv, bench_main); }
