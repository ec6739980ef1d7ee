#pragma once
// Numbers as text for the examples' tables, figures and logs: the one place these live.
#include <cstdio>
#include <string>

namespace lowrank::examples {

// v with a fixed number of decimals: fixed(3.14159, 2) is "3.14".
inline std::string fixed(double v, int digits = 4) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

// One number through a printf format: fmt("%.1e", 12345.0) is "1.2e+04".
inline std::string fmt(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

}  // namespace lowrank::examples
