#pragma once
// Errors: every failure is an exception whose message names the op (or file) and the shapes.
#include <sstream>
#include <stdexcept>
#include <string>

namespace lowrank {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

namespace detail {
inline void append(std::ostringstream&) {}
template <typename T, typename... Rest>
void append(std::ostringstream& os, const T& v, const Rest&... rest) {
  os << v;
  append(os, rest...);
}
}  // namespace detail

// Builds a message from any streamable pieces: cat("matmul: ", a.shape(), " vs ", b.shape()).
template <typename... Args>
std::string cat(const Args&... args) {
  std::ostringstream os;
  detail::append(os, args...);
  return os.str();
}

}  // namespace lowrank

// LR_CHECK(cond, pieces...): throws lowrank::Error(cat(pieces...)) when cond is false.
#define LR_CHECK(cond, ...)                                           \
  do {                                                                \
    if (!(cond)) throw ::lowrank::Error(::lowrank::cat(__VA_ARGS__)); \
  } while (0)
