#pragma once
// A small SVG line chart (learning curves: validation loss against examples seen): one polyline per
// series, linear axes with a few ticks, a legend. Self-contained like svg.h's heatmaps.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tensor/error.h"

namespace lowrank::examples::svg {

struct Series {
  std::string name;
  std::vector<double> x, y;
};

inline std::string num(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.4g", v);
  return b;
}

// Writes the chart to path; throws naming the path when it cannot be written.
inline void write_line_chart(const std::string& path, const std::string& title, const std::string& xlabel,
                             const std::string& ylabel, const std::vector<Series>& series) {
  static const char* colours[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                  "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  for (const auto& s : series)
    for (size_t i = 0; i < s.x.size(); ++i) {
      x0 = std::min(x0, s.x[i]), x1 = std::max(x1, s.x[i]);
      y0 = std::min(y0, s.y[i]), y1 = std::max(y1, s.y[i]);
    }
  if (!(x1 > x0)) x0 = 0, x1 = std::max(1.0, x1);
  if (!(y1 > y0)) y0 -= 0.5, y1 += 0.5;
  x0 = std::min(x0, 0.0);
  const double W = 640, H = 380, L = 60, R = 190, T = 36, B = 48;  // plot area inside the margins
  auto px = [&](double x) { return L + (x - x0) / (x1 - x0) * (W - L - R); };
  auto py = [&](double y) { return H - B - (y - y0) / (y1 - y0) * (H - T - B); };
  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H
    << "\" font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    << "<text x=\"" << W / 2 << "\" y=\"20\" text-anchor=\"middle\" font-size=\"13\">" << title << "</text>\n"
    << "<rect x=\"" << L << "\" y=\"" << T << "\" width=\"" << W - L - R << "\" height=\"" << H - T - B
    << "\" fill=\"none\" stroke=\"#444\"/>\n";
  for (int k = 0; k <= 4; ++k) {
    const double xv = x0 + (x1 - x0) * k / 4, yv = y0 + (y1 - y0) * k / 4;
    o << "<text x=\"" << px(xv) << "\" y=\"" << H - B + 14 << "\" text-anchor=\"middle\">" << num(xv) << "</text>\n"
      << "<text x=\"" << L - 4 << "\" y=\"" << py(yv) + 4 << "\" text-anchor=\"end\">" << num(yv) << "</text>\n"
      << "<line x1=\"" << L << "\" x2=\"" << W - R << "\" y1=\"" << py(yv) << "\" y2=\"" << py(yv)
      << "\" stroke=\"#ddd\"/>\n";
  }
  o << "<text x=\"" << (L + W - R) / 2 << "\" y=\"" << H - 12 << "\" text-anchor=\"middle\">" << xlabel << "</text>\n"
    << "<text x=\"14\" y=\"" << (T + H - B) / 2 << "\" text-anchor=\"middle\" transform=\"rotate(-90 14 "
    << (T + H - B) / 2 << ")\">" << ylabel << "</text>\n";
  for (size_t k = 0; k < series.size(); ++k) {
    const char* c = colours[k % 10];
    o << "<polyline fill=\"none\" stroke=\"" << c << "\" stroke-width=\"1.6\" points=\"";
    for (size_t i = 0; i < series[k].x.size(); ++i) o << px(series[k].x[i]) << "," << py(series[k].y[i]) << " ";
    o << "\"/>\n<line x1=\"" << W - R + 10 << "\" x2=\"" << W - R + 30 << "\" y1=\"" << T + 8 + 16 * k << "\" y2=\""
      << T + 8 + 16 * k << "\" stroke=\"" << c << "\" stroke-width=\"2\"/>\n<text x=\"" << W - R + 34 << "\" y=\""
      << T + 12 + 16 * k << "\">" << series[k].name << "</text>\n";
  }
  o << "</svg>\n";
  std::ofstream out(path);
  LR_CHECK(out.good(), path, ": cannot write the chart");
  out << o.str();
}

}  // namespace lowrank::examples::svg
