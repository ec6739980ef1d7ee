#pragma once
// Shared plumbing for the example binaries: one-line error exits, a progress bar,
// a timer, atomic JSON output, a plain-text table and small statistics helpers.
// Header-only so each example stays a single .cpp that CMake globs up.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cxxopts.hpp>
#include <exception>
#include <fstream>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "cuda/device_info.h"
#include "examples/common/checks.h"
#include "examples/common/data_parallel.h"
#include "examples/common/format.h"
#include "examples/common/process_group.h"
#include "tensor/error.h"
#include "tensor/file_io.h"
#include "tensor/storage.h"

namespace lowrank::examples {

// Runs body(argc, argv) inside the process group (process_group.h: a group of one unless mpirun
// started us); any exception becomes one line "error: <reason>" on stderr and exit status 1, so scripts
// and CI see a short reason instead of an abort and a core dump. Under mpirun an error on one rank
// aborts every rank (MPI_Abort), so none waits forever in a collective; an error all ranks raise alike
// (optim::dist::CollectiveError) is printed by rank 0 alone and every rank exits 1.
inline int run_main(int argc, char** argv, std::function<int(int, char**)> body) {
  std::string reason;
  try {
    ProcessGroup group(&argc, &argv);
    return body(argc, argv);
  } catch (const optim::dist::CollectiveError& e) {
    if (optim::dist::is_root()) print_error_line(e.what());
    optim::dist::finalize();
    return 1;
  } catch (const cxxopts::exceptions::exception& e) {
    reason = std::string(e.what()) + " (try --help)";
  } catch (const std::exception& e) {  // lowrank::Error among them
    reason = e.what();
  } catch (...) {
    reason = "unknown exception";
  }
  print_error_line(reason);
  if (optim::dist::size() > 1) optim::dist::abort(1);
  return 1;
}

// Parses argv for one example: --help prints the options and exits 0; a stray positional argument
// (a forgotten "--") is an error rather than silently ignored; nonsense values and missing output
// folders are refused now, before any work (check_options, checks.h).
inline cxxopts::ParseResult parse_args(cxxopts::Options& options, int argc, char** argv) {
  cxxopts::ParseResult r = options.parse(argc, argv);
  if (r.count("help")) {
    std::cout << options.help() << "\n";
    std::exit(0);
  }
  LR_CHECK(r.unmatched().empty(), "unexpected argument '", r.unmatched().front(), "' (try --help)");
  check_options(r);
  check_same_options(options.program(), r);  // under mpirun: every rank has the same options
  return r;
}

// The --device option ("cpu" or "cuda") of the training examples, refused with a one-line reason
// when this build has no CUDA backend or the machine no usable GPU.
inline tensor::Device device_option(const cxxopts::ParseResult& a) {
  const tensor::Device d = tensor::parse_device(a["device"].as<std::string>());
  LR_CHECK(d != tensor::Device::Meta, "--device: expected cpu or cuda, got meta");
  if (d == tensor::Device::CUDA) {
    LR_CHECK(tensor::kCudaBuilt, "--device cuda: this build has no CUDA backend (needs nvcc and -DLOWRANK_CUDA=ON)");
    if constexpr (tensor::kCudaBuilt) LR_CHECK(cuda::available(), "--device cuda: no usable CUDA device found");
  }
  return d;
}

// "a,b,,c" -> {"a", "b", "c"}: comma-separated option values, empty items dropped.
inline std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(',', start);
    if (end == std::string::npos) end = s.size();
    if (end > start) out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

// Wall-clock timer on steady_clock: immune to NTP/clock adjustments during long runs.
class Timer {
 public:
  Timer() : start_(std::chrono::steady_clock::now()) {}
  void reset() { start_ = std::chrono::steady_clock::now(); }
  double seconds() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count(); }

 private:
  std::chrono::steady_clock::time_point start_;
};

// Formats seconds as "1h02m", "3m05s" or "12s": compact enough for a one-line bar.
inline std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  long t = static_cast<long>(s + 0.5);
  char buf[32];
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%ldh%02ldm", t / 3600, (t % 3600) / 60);
  else if (t >= 60)
    std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  else
    std::snprintf(buf, sizeof buf, "%lds", t);
  return buf;
}

// One-line progress on stderr. On a terminal it redraws in place with '\r'; when stderr is
// a file or pipe (CI logs) it prints a plain line about every 10% so logs stay short.
class ProgressBar {
 public:
  explicit ProgressBar(long total, int width = 30)
      : total_(std::max(1L, total)), width_(width), tty_(isatty(fileno(stderr)) != 0) {}

  // loss = NAN: only step/total and ETA are shown.
  void update(long step, double loss = NAN, double tokens_per_s = NAN) {
    const double frac = std::clamp(static_cast<double>(step) / total_, 0.0, 1.0);
    const double elapsed = timer_.seconds();
    const double eta = step > 0 ? elapsed * (total_ - step) / step : NAN;
    if (!tty_) {
      const int decile = static_cast<int>(frac * 10);
      if (decile <= last_decile_ && step != total_) return;
      last_decile_ = decile;
    } else if (drawn_ && elapsed - last_draw_ < 0.1 && step != total_) {
      return;  // ~10 redraws a second are plenty; fast loops shouldn't pay for terminal I/O
    }
    last_draw_ = elapsed;
    char stats[160];
    if (std::isnan(loss))  // counting work items (e.g. decoding), no loss or throughput to show
      std::snprintf(stats, sizeof stats, " %ld/%ld ETA %s", step, total_, format_duration(eta).c_str());
    else
      std::snprintf(stats, sizeof stats, " %ld/%ld loss %.4f %.0f tok/s ETA %s", step, total_, loss, tokens_per_s,
                    format_duration(eta).c_str());
    if (tty_) {
      const int filled = static_cast<int>(frac * width_);
      std::string bar = "[" + std::string(filled, '#') + std::string(width_ - filled, '.') + "]";
      std::fprintf(stderr, "\r%s%s\033[K", bar.c_str(), stats);  // \033[K clears leftovers
    } else {
      std::fprintf(stderr, "%3.0f%%%s\n", frac * 100, stats);
    }
    std::fflush(stderr);
    drawn_ = true;
  }

  // Ends the redrawn line so later output starts on a fresh one.
  void finish() {
    if (tty_ && drawn_) std::fputc('\n', stderr);
    std::fflush(stderr);
    drawn_ = false;
  }

 private:
  long total_;
  int width_;
  bool tty_;
  bool drawn_ = false;
  int last_decile_ = -1;
  double last_draw_ = 0.0;
  Timer timer_;
};

// Writes text to path atomically (lowrank::write_file_atomic): a reader, or a crash mid-write, never
// sees half a file.
inline void write_text(const std::string& path, const std::string& text) { lowrank::write_file_atomic(path, text); }

inline void write_json(const std::string& path, const nlohmann::json& j) { write_text(path, j.dump(2) + "\n"); }

// Left-aligned plain-text table: columns padded to their widest cell, a dashed rule
// under the header. Meant for the few-line summaries at the end of an example.
inline void print_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows,
                        std::ostream& os = std::cout) {
  std::vector<size_t> width(header.size(), 0);
  auto widen = [&](const std::vector<std::string>& r) {
    for (size_t c = 0; c < r.size() && c < width.size(); ++c) width[c] = std::max(width[c], r[c].size());
  };
  widen(header);
  for (const auto& r : rows) widen(r);
  auto line = [&](const std::vector<std::string>& r) {
    std::string s;
    for (size_t c = 0; c < width.size(); ++c) {
      const std::string cell = c < r.size() ? r[c] : "";
      s += cell + (c + 1 < width.size() ? std::string(width[c] - cell.size() + 2, ' ') : "");
    }
    os << s << '\n';
  };
  line(header);
  size_t total = 0;
  for (size_t c = 0; c < width.size(); ++c) total += width[c] + (c + 1 < width.size() ? 2 : 0);
  os << std::string(total, '-') << '\n';
  for (const auto& r : rows) line(r);
}

// Linear-interpolated quantile (q in [0,1]) of v; NaN when v is empty.
inline double quantile(std::vector<double> v, double q) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  const double pos = std::clamp(q, 0.0, 1.0) * (v.size() - 1);
  const size_t lo = static_cast<size_t>(pos);
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (pos - lo) * (v[hi] - v[lo]);
}

// Median: the robust centre for timings, where outliers (preemption, page faults) only go up.
inline double median(std::vector<double> v) { return quantile(std::move(v), 0.5); }

struct Spread {
  double min = NAN, max = NAN, q1 = NAN, q3 = NAN;
  double iqr() const { return q3 - q1; }
};

// min/max and quartiles of v, to report how noisy a measured median is.
inline Spread spread(const std::vector<double>& v) {
  Spread s;
  if (v.empty()) return s;
  auto [lo, hi] = std::minmax_element(v.begin(), v.end());
  s.min = *lo;
  s.max = *hi;
  s.q1 = quantile(v, 0.25);
  s.q3 = quantile(v, 0.75);
  return s;
}

}  // namespace lowrank::examples
