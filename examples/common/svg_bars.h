#pragma once
// A small SVG grouped bar chart (one group per base checkpoint, one bar per method): mean as the bar,
// ± std as a whisker, the number of seeds under each bar, "–" where a group has no value yet.
// Self-contained like svg_lines.h.
#include <cmath>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "examples/common/svg_lines.h"
#include "tensor/error.h"

namespace lowrank::examples::svg {

struct Bar {
  double mean = NAN, std = 0;  // NAN: no run yet
  int n = 0;                   // seeds behind the mean
};

// bars[g][s]: group g (groups[g] names it), series s (series[s]); y from 0 to ymax.
inline void write_bar_chart(const std::string& path, const std::string& title, const std::string& ylabel,
                            const std::vector<std::string>& groups, const std::vector<std::string>& series,
                            const std::vector<std::vector<Bar>>& bars, double ymax) {
  static const char* colours[] = {"#7f7f7f", "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"};
  const double W = 100 + 110 * static_cast<double>(groups.size()) + 130, H = 380, L = 60, R = 130, T = 36, B = 60;
  const double gw = (W - L - R) / static_cast<double>(groups.size()),
               bw = gw * 0.8 / static_cast<double>(series.size());
  auto py = [&](double y) { return H - B - y / ymax * (H - T - B); };
  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H
    << "\" font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    << "<text x=\"" << W / 2 << "\" y=\"20\" text-anchor=\"middle\" font-size=\"13\">" << title << "</text>\n";
  for (int k = 0; k <= 4; ++k) {
    const double yv = ymax * k / 4;
    o << "<text x=\"" << L - 4 << "\" y=\"" << py(yv) + 4 << "\" text-anchor=\"end\">" << num(yv) << "</text>\n"
      << "<line x1=\"" << L << "\" x2=\"" << W - R << "\" y1=\"" << py(yv) << "\" y2=\"" << py(yv)
      << "\" stroke=\"#ddd\"/>\n";
  }
  o << "<text x=\"14\" y=\"" << (T + H - B) / 2 << "\" text-anchor=\"middle\" transform=\"rotate(-90 14 "
    << (T + H - B) / 2 << ")\">" << ylabel << "</text>\n";
  for (size_t g = 0; g < groups.size(); ++g) {
    const double x0 = L + gw * static_cast<double>(g) + gw * 0.1;
    o << "<text x=\"" << L + gw * (static_cast<double>(g) + 0.5) << "\" y=\"" << H - B + 30
      << "\" text-anchor=\"middle\">" << groups[g] << "</text>\n";
    for (size_t s = 0; s < series.size(); ++s) {
      const Bar& b = bars[g][s];
      const double x = x0 + bw * static_cast<double>(s), cx = x + bw / 2;
      if (std::isnan(b.mean)) {
        o << "<text x=\"" << cx << "\" y=\"" << py(0) - 4 << "\" text-anchor=\"middle\">–</text>\n";
        continue;
      }
      o << "<rect x=\"" << x << "\" y=\"" << py(b.mean) << "\" width=\"" << bw * 0.9 << "\" height=\""
        << py(0) - py(b.mean) << "\" fill=\"" << colours[s % 5] << "\"/>\n";
      if (b.n > 1)
        o << "<line x1=\"" << cx << "\" x2=\"" << cx << "\" y1=\"" << py(b.mean - b.std) << "\" y2=\""
          << py(b.mean + b.std) << "\" stroke=\"black\"/>\n";
      o << "<text x=\"" << cx << "\" y=\"" << H - B + 14 << "\" text-anchor=\"middle\" font-size=\"9\">"
        << (b.n > 1 ? "×" + std::to_string(b.n) : "") << "</text>\n";
    }
  }
  for (size_t s = 0; s < series.size(); ++s)
    o << "<rect x=\"" << W - R + 12 << "\" y=\"" << T + 4 + 16 * s << "\" width=\"12\" height=\"10\" fill=\""
      << colours[s % 5] << "\"/>\n<text x=\"" << W - R + 30 << "\" y=\"" << T + 13 + 16 * s << "\">" << series[s]
      << "</text>\n";
  o << "</svg>\n";
  std::ofstream out(path);
  LR_CHECK(out.good(), path, ": cannot write the chart");
  out << o.str();
}

}  // namespace lowrank::examples::svg
