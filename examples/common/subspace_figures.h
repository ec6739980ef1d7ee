#pragma once
// subspace's results per layer and its two figures (Hu et al., 2021, Figures 3 and 4) as SVG heatmaps.
#include <algorithm>
#include <filesystem>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "examples/common/svg.h"
#include "lora/analysis.h"

namespace lowrank::examples {

struct LayerResult {
  std::map<std::string, lora::Matrix> fig3, fig4;                     // by slice, "q" and "v"
  lora::Matrix random;                                                // φ of two Gaussian (r_large, C) matrices
  std::map<std::string, std::vector<lora::WeightProjection>> table7;  // by slice, increasing r
};

// One heatmap panel of φ: rows i, columns j.
inline svg::Heatmap panel(const std::string& title, const lora::Matrix& m, double w, double h) {
  svg::Heatmap p{title, std::vector<std::vector<double>>(static_cast<size_t>(m.rows())), "j", "i", w, h};
  for (int64_t i = 0; i < m.rows(); ++i)
    for (int64_t j = 0; j < m.cols(); ++j) p.values[static_cast<size_t>(i)].push_back(m(i, j));
  return p;
}

inline void write_figures(const std::vector<LayerResult>& res, int64_t rs, int64_t rl, int64_t C,
                          const std::string& dir) {
  std::vector<std::vector<svg::Heatmap>> f3, f4;
  const std::string s_rl = std::to_string(rl), s_rs = std::to_string(rs);
  for (size_t l = 0; l < res.size(); ++l) {
    const std::string L = "layer " + std::to_string(l) + ", ";
    f3.push_back({});
    for (const std::string s : {"q", "v"})
      f3.back().push_back(panel(L + "ΔW" + s + ": A(r=" + s_rs + ") vs A(r=" + s_rl + ")", res[l].fig3.at(s), 320, 80));
    for (const std::string s : {"q", "v"})
      f3.back().push_back(panel(L + "ΔW" + s + ", j ≤ " + s_rs, res[l].fig3.at(s).leftCols(std::min(rs, rl)), 80, 80));
    f4.push_back({panel(L + "ΔWq: two seeds", res[l].fig4.at("q"), 192, 192),
                  panel(L + "ΔWv: two seeds", res[l].fig4.at("v"), 192, 192),
                  panel(L + "random Gaussian", res[l].random, 192, 192)});
  }
  std::filesystem::create_directories(dir);
  svg::GridOptions o;
  const std::string floor = "; random subspaces average max(i,j)/" + std::to_string(C);
  o.title = "Figure 3: φ(A_r=" + s_rs + ", A_r=" + s_rl + ", i, j) (Hu et al. 2021, eq. 4)" + floor;
  svg::write_file(dir + "/figure3.svg", svg::heatmap_grid(f3, o));
  o.title = "Figure 4: φ(A_r=" + s_rl + ", A'_r=" + s_rl + ", i, j) of two seeds" + floor;
  svg::write_file(dir + "/figure4.svg", svg::heatmap_grid(f4, o));
  std::cout << "figures: " << dir << "/figure3.svg, " << dir << "/figure4.svg\n";
}

}  // namespace lowrank::examples
