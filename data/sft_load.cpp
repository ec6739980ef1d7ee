// Reading the fine-tuning formats of data/sft.h: JSON Lines records or plain text into SftExamples.
#include <algorithm>

#include "data/jsonl.h"
#include "data/sft.h"
#include "data/text.h"
#include "tensor/error.h"

namespace lowrank::data {

namespace {

const char* kFormats = "auto, prompt-completion, text, messages or txt";

bool ends_with_txt(const std::string& path) {
  return path.size() >= 4 && path.compare(path.size() - 4, 4, ".txt") == 0;
}

// A string field that must also be non-empty.
std::string nonempty_string(const JsonlRecord& r, const char* field, const char* hint = "") {
  std::string s = jsonl_string(r, field);
  LR_CHECK(!s.empty(), jsonl_where(r), "field '", field, "' is empty", hint);
  return s;
}

SftExample prompt_completion(const JsonlRecord& r) {
  SftExample e{{}, cat(r.path, ":", r.line)};
  e.segments.push_back(
      {nonempty_string(r, "prompt", " (a record with loss on every token is {\"text\": ...})"), false});
  e.segments.push_back({nonempty_string(r, "completion"), true});
  return e;
}

SftExample text_record(const JsonlRecord& r) {
  return {{{nonempty_string(r, "text"), true}}, cat(r.path, ":", r.line)};
}

SftExample messages_record(const JsonlRecord& r) {
  const std::string where = cat(r.path, ":", r.line);
  auto it = r.value.find("messages");
  LR_CHECK(it != r.value.end(), jsonl_where(r), "field 'messages' is missing");
  LR_CHECK(it->is_array() && !it->empty(), jsonl_where(r), "field 'messages' is ", it->type_name(),
           it->is_array() ? " (empty)" : "", ", expected a non-empty array of {\"role\", \"content\"} objects");
  std::vector<ChatMessage> messages;
  for (size_t i = 0; i < it->size(); ++i) {
    const nlohmann::json& m = (*it)[i];
    const std::string field = cat("messages[", i, "]");
    LR_CHECK(m.is_object(), jsonl_where(r), "field '", field, "' is ", m.type_name(), ", expected an object");
    for (const char* key : {"role", "content"}) {
      LR_CHECK(m.contains(key), jsonl_where(r), "field '", field, ".", key, "' is missing");
      LR_CHECK(m.at(key).is_string(), jsonl_where(r), "field '", field, ".", key, "' is ", m.at(key).type_name(),
               ", expected a string");
    }
    messages.push_back({m.at("role").get<std::string>(), m.at("content").get<std::string>()});
  }
  return {render_chat(messages, where), where};
}

SftFormat detect(const JsonlRecord& first) {
  const nlohmann::json& v = first.value;
  if (v.contains("messages")) return SftFormat::Messages;
  if (v.contains("prompt") && v.contains("completion")) return SftFormat::PromptCompletion;
  if (v.contains("text")) return SftFormat::Text;
  std::string keys;
  for (auto it = v.begin(); it != v.end(); ++it) keys += (keys.empty() ? "" : ", ") + it.key();
  throw Error(cat(jsonl_where(first), "a record in none of the formats (fields: ", keys.empty() ? "none" : keys,
                  "); expected \"prompt\" + \"completion\", \"text\" or \"messages\""));
}

// Plain text: documents are separated by one or more blank lines; each is one example, trained whole.
SftFile parse_txt(const std::string& bytes, const std::string& path) {
  SftFile f{SftFormat::Txt, {}};
  std::string doc;
  int64_t line = 0, doc_line = 0;
  auto flush = [&] {
    if (!doc.empty()) f.examples.push_back({{{doc, true}}, cat(path, ":", doc_line)});
    doc.clear();
  };
  size_t b = 0;
  while (b < bytes.size()) {
    size_t e = bytes.find('\n', b);
    if (e == std::string::npos) e = bytes.size();
    std::string l = bytes.substr(b, e - b);
    ++line;
    if (!l.empty() && l.back() == '\r') l.pop_back();
    if (l.find_first_not_of(" \t\f\v") == std::string::npos) {
      flush();
    } else {
      if (doc.empty()) doc_line = line;
      doc += (doc.empty() ? "" : "\n") + l;
    }
    b = e + 1;
  }
  flush();
  return f;
}

}  // namespace

SftFormat parse_sft_format(const std::string& name) {
  if (name == "auto") return SftFormat::Auto;
  if (name == "prompt-completion") return SftFormat::PromptCompletion;
  if (name == "text") return SftFormat::Text;
  if (name == "messages") return SftFormat::Messages;
  if (name == "txt") return SftFormat::Txt;
  throw Error(cat("--format: unknown format '", name, "', expected ", kFormats));
}

const char* sft_format_name(SftFormat f) {
  switch (f) {
    case SftFormat::PromptCompletion:
      return "prompt-completion";
    case SftFormat::Text:
      return "text";
    case SftFormat::Messages:
      return "messages";
    case SftFormat::Txt:
      return "txt";
    case SftFormat::Auto:
      break;
  }
  return "auto";
}

SftFile parse_sft(const std::string& bytes, const std::string& path, SftFormat format) {
  if (format == SftFormat::Txt || (format == SftFormat::Auto && ends_with_txt(path))) {
    SftFile f = parse_txt(bytes, path);
    LR_CHECK(!f.examples.empty(), path, ": no text (documents are separated by blank lines)");
    return f;
  }
  const std::vector<JsonlRecord> records = parse_jsonl(bytes, path);
  LR_CHECK(!records.empty(), path, ": no records (expected one JSON object per line)");
  SftFile f{format == SftFormat::Auto ? detect(records.front()) : format, {}};
  for (const JsonlRecord& r : records) {
    if (f.format == SftFormat::PromptCompletion)
      f.examples.push_back(prompt_completion(r));
    else if (f.format == SftFormat::Text)
      f.examples.push_back(text_record(r));
    else
      f.examples.push_back(messages_record(r));
  }
  return f;
}

SftFile load_sft(const std::string& path, SftFormat format) { return parse_sft(read_file(path), path, format); }

}  // namespace lowrank::data
