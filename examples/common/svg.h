#pragma once
// A small self-contained SVG writer for heatmap figures (the paper's Figures 3 and 4): a grid of
// panels sharing one colour scale, each with a title, axis names and a few tick labels, plus a
// vertical colour bar. Cells are drawn as one <path> per quantized colour (horizontal runs of equal
// colour merged), which keeps a 64x64 panel to tens of kilobytes instead of 4,096 <rect>s.
// Colours: an interpolation of matplotlib's viridis through 9 of its stops (dark = 0, yellow = 1).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "examples/common/format.h"
#include "tensor/error.h"

namespace lowrank::examples::svg {

struct Heatmap {
  std::string title;
  std::vector<std::vector<double>> values;  // values[row][col]; row 0 is drawn at the top
  std::string xlabel = "j", ylabel = "i";   // axis names; ticks count from 1
  double w = 0, h = 0;                      // panel size in px; 0: GridOptions' panel_w / panel_h
};

struct GridOptions {
  std::string title;
  double vmin = 0.0, vmax = 1.0;        // colour scale (values outside are clamped)
  int levels = 64;                      // quantized colours
  double panel_w = 230, panel_h = 150;  // default panel size
};

inline double width_of(const Heatmap& m, const GridOptions& o) { return m.w > 0 ? m.w : o.panel_w; }
inline double height_of(const Heatmap& m, const GridOptions& o) { return m.h > 0 ? m.h : o.panel_h; }

// viridis at t in [0, 1] as "#rrggbb".
inline std::string viridis(double t) {
  static const double stops[9][3] = {{68, 1, 84},    {71, 44, 122}, {59, 81, 139},  {44, 113, 142}, {33, 144, 141},
                                     {39, 173, 129}, {92, 200, 99}, {170, 220, 50}, {253, 231, 37}};
  t = std::clamp(t, 0.0, 1.0) * 8.0;
  const int k = std::min(7, static_cast<int>(t));
  const double f = t - k;
  char buf[8];
  int c[3];
  for (int i = 0; i < 3; ++i) c[i] = static_cast<int>(std::lround(stops[k][i] + f * (stops[k + 1][i] - stops[k][i])));
  std::snprintf(buf, sizeof buf, "#%02x%02x%02x", c[0], c[1], c[2]);
  return buf;
}

// XML text: &, < and > escaped (titles like "i <= 8" stay valid SVG).
inline std::string escape(const std::string& s) {
  std::string out;
  for (char ch : s) out += ch == '&' ? "&amp;" : ch == '<' ? "&lt;" : ch == '>' ? "&gt;" : std::string(1, ch);
  return out;
}

inline std::string text(double x, double y, const std::string& s, const std::string& extra = "") {
  return "<text x=\"" + fixed(x, 1) + "\" y=\"" + fixed(y, 1) + "\"" + extra + ">" + escape(s) + "</text>\n";
}

// Tick positions 1, step+1, ... and the last index: about 5 labels per axis.
inline std::vector<int> ticks(int n) {
  const int step = n <= 8 ? 1 : std::max(1, (n + 4) / 5);
  std::vector<int> t;
  for (int k = 1; k <= n; k += step) t.push_back(k);
  if (t.back() != n && n - t.back() >= step / 2) t.push_back(n);
  return t;
}

// The cells of one panel at (x0, y0), one path per colour level.
inline std::string panel_cells(const Heatmap& h, const GridOptions& o, double x0, double y0) {
  const int rows = static_cast<int>(h.values.size()), cols = static_cast<int>(h.values[0].size());
  const double cw = width_of(h, o) / cols, ch = height_of(h, o) / rows;
  std::map<int, std::string> paths;
  auto level = [&](double v) {
    const double t = (v - o.vmin) / (o.vmax - o.vmin);
    return std::clamp(static_cast<int>(std::floor(t * o.levels)), 0, o.levels - 1);
  };
  for (int r = 0; r < rows; ++r) {
    LR_CHECK(static_cast<int>(h.values[r].size()) == cols, "svg: heatmap '", h.title, "' has ragged rows");
    for (int c = 0; c < cols;) {
      const int lv = level(h.values[r][c]);
      int e = c + 1;
      while (e < cols && level(h.values[r][e]) == lv) ++e;
      paths[lv] += "M" + fixed(x0 + c * cw, 2) + " " + fixed(y0 + r * ch, 2) + "h" + fixed((e - c) * cw, 2) + "v" +
                   fixed(ch, 2) + "h-" + fixed((e - c) * cw, 2) + "z";
      c = e;
    }
  }
  std::string s = "<g shape-rendering=\"crispEdges\">\n";  // no anti-aliased seams between cells
  for (const auto& [lv, d] : paths) s += "<path fill=\"" + viridis((lv + 0.5) / o.levels) + "\" d=\"" + d + "\"/>\n";
  return s + "</g>\n";
}

// Frame, title, axis names and tick labels of one panel.
inline std::string panel_axes(const Heatmap& h, const GridOptions& o, double x0, double y0) {
  const int rows = static_cast<int>(h.values.size()), cols = static_cast<int>(h.values[0].size());
  const double pw = width_of(h, o), ph = height_of(h, o), cw = pw / cols, ch = ph / rows;
  std::string s = "<rect x=\"" + fixed(x0, 1) + "\" y=\"" + fixed(y0, 1) + "\" width=\"" + fixed(pw, 1) +
                  "\" height=\"" + fixed(ph, 1) + "\" fill=\"none\" stroke=\"#444\" stroke-width=\"0.5\"/>\n";
  s += text(x0 + pw / 2, y0 - 8, h.title, " text-anchor=\"middle\" font-size=\"12\"");
  for (int k : ticks(cols)) s += text(x0 + (k - 0.5) * cw, y0 + ph + 12, std::to_string(k), " text-anchor=\"middle\"");
  for (int k : ticks(rows)) s += text(x0 - 4, y0 + (k - 0.5) * ch + 3.5, std::to_string(k), " text-anchor=\"end\"");
  s += text(x0 + pw / 2, y0 + ph + 26, h.xlabel, " text-anchor=\"middle\" font-style=\"italic\"");
  s += text(x0 - 24, y0 + ph / 2, h.ylabel, " text-anchor=\"middle\" font-style=\"italic\"");
  return s;
}

// The colour bar at (x, y) with ticks at vmin, the middle and vmax.
inline std::string colour_bar(const GridOptions& o, double x, double y, double height) {
  std::string s;
  const int n = 50;
  for (int k = 0; k < n; ++k)  // top = vmax
    s += "<rect x=\"" + fixed(x, 1) + "\" y=\"" + fixed(y + height * k / n, 2) + "\" width=\"14\" height=\"" +
         fixed(height / n + 0.3, 2) + "\" fill=\"" + viridis(1.0 - (k + 0.5) / n) + "\"/>\n";
  s += "<rect x=\"" + fixed(x, 1) + "\" y=\"" + fixed(y, 1) + "\" width=\"14\" height=\"" + fixed(height, 1) +
       "\" fill=\"none\" stroke=\"#444\" stroke-width=\"0.5\"/>\n";
  for (int k = 0; k <= 2; ++k)
    s += text(x + 18, y + height * (1.0 - k / 2.0) + 3.5, fixed(o.vmin + (o.vmax - o.vmin) * k / 2.0, 2));
  return s;
}

// A figure of grid[row][col] panels (rows may differ in length; each column as wide as its widest
// panel, each row as tall as its tallest) and one colour bar on the right.
inline std::string heatmap_grid(const std::vector<std::vector<Heatmap>>& grid, const GridOptions& o) {
  LR_CHECK(!grid.empty() && o.vmax > o.vmin, "svg: empty figure or empty colour range");
  std::vector<double> col_w, row_h(grid.size(), 0.0);
  for (size_t r = 0; r < grid.size(); ++r)
    for (size_t c = 0; c < grid[r].size(); ++c) {
      const Heatmap& h = grid[r][c];
      LR_CHECK(!h.values.empty() && !h.values[0].empty(), "svg: heatmap '", h.title, "' is empty");
      if (col_w.size() <= c) col_w.push_back(0.0);
      col_w[c] = std::max(col_w[c], width_of(h, o));
      row_h[r] = std::max(row_h[r], height_of(h, o));
    }
  const double left = 50, top = 40 + (o.title.empty() ? 0 : 18), gap_x = 60, gap_y = 62;
  std::vector<double> xs{left}, ys{top};
  for (double w : col_w) xs.push_back(xs.back() + w + gap_x);
  for (double h : row_h) ys.push_back(ys.back() + h + gap_y);
  const double width = xs.back() + 60, height = ys.back();
  std::ostringstream s;
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << fixed(width, 0) << "\" height=\"" << fixed(height, 0)
    << "\" font-family=\"sans-serif\" font-size=\"10\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  if (!o.title.empty()) s << text(width / 2, 20, o.title, " text-anchor=\"middle\" font-size=\"14\"");
  for (size_t r = 0; r < grid.size(); ++r)
    for (size_t c = 0; c < grid[r].size(); ++c)
      s << panel_cells(grid[r][c], o, xs[c], ys[r]) << panel_axes(grid[r][c], o, xs[c], ys[r]);
  s << colour_bar(o, width - 80, top, std::min(200.0, height - top - 30)) << "</svg>\n";
  return s.str();
}

inline void write_file(const std::string& path, const std::string& content) {
  std::ofstream out(path);
  LR_CHECK(out.good(), path, ": cannot write");
  out << content;
  LR_CHECK(out.good(), path, ": write failed");
}

}  // namespace lowrank::examples::svg
