#include "data/jsonl.h"

#include "data/text.h"
#include "tensor/error.h"

namespace lowrank::data {

namespace {
bool blank(const std::string& s, size_t b, size_t e) {
  for (size_t i = b; i < e; ++i)
    if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\f' && s[i] != '\v') return false;
  return true;
}

// nlohmann's message without its "[json.exception.parse_error.101] " prefix.
std::string short_reason(const std::exception& e) {
  std::string w = e.what();
  const size_t p = w.find("] ");
  return p == std::string::npos ? w : w.substr(p + 2);
}

const char* type_name(const nlohmann::json& v) { return v.type_name(); }
}  // namespace

std::string jsonl_where(const JsonlRecord& r) { return cat(r.path, ":", r.line, ": "); }

std::vector<JsonlRecord> parse_jsonl(const std::string& text, const std::string& path) {
  std::vector<JsonlRecord> out;
  size_t b = text.rfind("\xEF\xBB\xBF", 0) == 0 ? 3 : 0;  // UTF-8 byte order mark
  for (int64_t line = 1; b <= text.size(); ++line) {
    size_t e = text.find('\n', b);
    if (e == std::string::npos) e = text.size();
    if (!blank(text, b, e)) {
      JsonlRecord r{path, line, {}};
      try {
        r.value = nlohmann::json::parse(text.begin() + static_cast<std::ptrdiff_t>(b),
                                        text.begin() + static_cast<std::ptrdiff_t>(e));
      } catch (const nlohmann::json::exception& ex) {
        throw Error(cat(jsonl_where(r), "not valid JSON (", short_reason(ex), ")"));
      }
      LR_CHECK(r.value.is_object(), jsonl_where(r), "expected a JSON object, got ", type_name(r.value));
      out.push_back(std::move(r));
    }
    b = e + 1;
  }
  return out;
}

std::vector<JsonlRecord> read_jsonl(const std::string& path) { return parse_jsonl(read_file(path), path); }

std::string jsonl_string(const JsonlRecord& r, const char* field) {
  auto it = r.value.find(field);
  LR_CHECK(it != r.value.end(), jsonl_where(r), "field '", field, "' is missing");
  LR_CHECK(it->is_string(), jsonl_where(r), "field '", field, "' is ", type_name(*it), ", expected a string");
  return it->get<std::string>();
}

std::string jsonl_string_or(const JsonlRecord& r, const char* field, const std::string& fallback) {
  auto it = r.value.find(field);
  if (it == r.value.end() || it->is_null()) return fallback;
  return jsonl_string(r, field);
}

int64_t jsonl_int_or(const JsonlRecord& r, const char* field, int64_t fallback, int64_t lo, int64_t hi) {
  auto it = r.value.find(field);
  if (it == r.value.end() || it->is_null()) return fallback;
  LR_CHECK(it->is_number_integer(), jsonl_where(r), "field '", field, "' is ", type_name(*it), ", expected an integer");
  const bool huge = it->is_number_unsigned() && it->get<uint64_t>() > static_cast<uint64_t>(hi);
  const int64_t v = huge ? hi : it->get<int64_t>();
  LR_CHECK(!huge && v >= lo && v <= hi, jsonl_where(r), "field '", field, "' is ", it->dump(), ", expected ", lo,
           " to ", hi);
  return v;
}

}  // namespace lowrank::data
