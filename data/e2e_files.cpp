// E2E scorer file formats (see data/e2e_files.h): the readers behind e2e_score REFS HYPS.
#include "data/e2e_files.h"

#include <algorithm>
#include <cctype>
#include <fstream>

#include "tensor/error.h"
#include "tensor/strings.h"

namespace lowrank::data {

namespace {

std::vector<std::string> lines_of(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  LR_CHECK(in.good(), path, ": cannot open");
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(strip(line));
  return out;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// A CSV / TSV file as (line of the row, fields), the header row dropped after its check: its first
// column must be "mr" (measure_scores.py skips the header unread and takes the columns by position;
// a file without one would silently lose its first row there). `second` names the column in errors.
std::vector<std::pair<int64_t, std::vector<std::string>>> table_rows(const std::string& path, const char* second) {
  std::ifstream in(path, std::ios::binary);
  LR_CHECK(in.good(), path, ": cannot open");
  const char delim = delimiter_of(path);
  std::vector<std::pair<int64_t, std::vector<std::string>>> rows;
  std::vector<std::string> row;
  std::string field;
  bool quoted = false, any = false;
  int64_t line = 1, row_line = 1;
  auto end_row = [&] {
    if (any || !strip(field).empty() || !row.empty()) {
      row.push_back(field);
      rows.emplace_back(row_line, row);
    }
    row.clear(), field.clear(), any = false;
  };
  for (int c; (c = in.get()) != EOF;) {
    if (quoted) {
      if (c == '"' && in.peek() == '"')
        field += static_cast<char>(in.get());
      else if (c == '"')
        quoted = false;
      else
        field += static_cast<char>(c);
      if (c == '\n') ++line;
    } else if (c == '"' && field.empty()) {
      quoted = any = true;
    } else if (c == delim) {
      row.push_back(field), field.clear(), any = true;
    } else if (c == '\n') {
      end_row();
      row_line = ++line;
    } else if (c != '\r') {
      field += static_cast<char>(c);
    }
  }
  LR_CHECK(!quoted, path, ":", row_line, ": a quoted field is not closed");
  end_row();
  LR_CHECK(!rows.empty(), path, ": empty file (expected a header row 'mr", delim, second, "')");
  auto& h = rows.front().second;
  if (!h.empty() && h[0].rfind("\xEF\xBB\xBF", 0) == 0) h[0] = h[0].substr(3);  // UTF-8 byte-order mark
  LR_CHECK(h.size() >= 2 && lower(strip(h[0])) == "mr", path, ":1: expected the header 'mr", delim, second, "', got '",
           h.empty() ? "" : h[0], h.size() > 1 ? std::string(1, delim) + h[1] : "", "'");
  rows.erase(rows.begin());
  for (const auto& r : rows)
    LR_CHECK(r.second.size() >= 2, path, ":", r.first, ": expected 2 columns (mr", delim, second, "), got ",
             r.second.size());
  return rows;
}

}  // namespace

char delimiter_of(const std::string& path) {
  const std::string ext = path.size() >= 4 ? lower(path.substr(path.size() - 4)) : "";
  return ext == ".csv" ? ',' : ext == ".tsv" ? '\t' : 0;
}

References read_reference_file(const std::string& path) {
  References refs;
  if (delimiter_of(path)) {
    std::string mr;
    for (const auto& [line, row] : table_rows(path, "ref")) {
      const std::string ref = strip(row[1]);
      LR_CHECK(!ref.empty(), path, ":", line, ": empty reference");
      if (refs.empty() || strip(row[0]) != mr) refs.emplace_back();
      mr = strip(row[0]);
      refs.back().push_back(ref);
    }
    LR_CHECK(!refs.empty(), path, ": no references after the header");
    return refs;
  }
  const std::vector<std::string> lines = lines_of(path);
  refs.emplace_back();
  for (size_t i = 0; i < lines.size(); ++i) {
    if (!lines[i].empty()) {
      refs.back().push_back(lines[i]);
      continue;
    }
    LR_CHECK(!refs.back().empty(), path, ":", i + 1, ": empty reference group (a blank line ",
             i == 0 ? "opens the file" : "follows a blank line", "; MRs are separated by exactly one)");
    refs.emplace_back();
  }
  if (refs.back().empty()) refs.pop_back();
  LR_CHECK(!refs.empty(), path, ": no references");
  return refs;
}

Corpus read_output_file(const std::string& path) {
  Corpus out;
  if (delimiter_of(path)) {
    for (const auto& r : table_rows(path, "output")) out.push_back(strip(r.second[1]));
    return out;
  }
  out = lines_of(path);
  while (!out.empty() && out.back().empty()) out.pop_back();
  LR_CHECK(!out.empty(), path, ": no outputs");
  return out;
}

}  // namespace lowrank::data
