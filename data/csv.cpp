// csv.cpp: writing and reading RFC 4180 records (see csv.h).
#include "data/csv.h"

#include <stdexcept>

namespace forge::data {

static std::string quoted(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string csv_record(const std::vector<std::string>& fields) {
  std::string out;
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i) out += ',';
    out += quoted(fields[i]);
  }
  return out + "\n";
}

bool CsvReader::next(std::vector<std::string>& fields) {
  fields.clear();
  if (in_.peek() == std::istream::traits_type::eof()) return false;
  record_line_ = line_;
  auto fail = [&](const std::string& what) {
    throw std::runtime_error(name_ + ":" + std::to_string(line_) + ": " + what);
  };
  std::string field;
  bool quoted_field = false, after_quote = false;  // inside quotes; just past the closing quote
  for (;;) {
    const int c = in_.get();
    if (c == std::istream::traits_type::eof()) {
      if (quoted_field) fail("a quoted field is never closed (a missing \")");
      break;
    }
    if (c == '\n') ++line_;
    if (quoted_field) {
      if (c != '"') {
        field += char(c);
      } else if (in_.peek() == '"') {
        field += char(in_.get());  // "" is a quote
      } else {
        quoted_field = false;
        after_quote = true;
      }
      continue;
    }
    if (c == ',') {
      fields.push_back(std::move(field));
      field.clear();
      after_quote = false;
    } else if (c == '\n' || (c == '\r' && in_.peek() == '\n')) {
      if (c == '\r') {
        in_.get();
        ++line_;
      }
      break;
    } else if (after_quote) {
      fail("text after a closing quote (a quote inside a field must be doubled: \"\")");
    } else if (c == '"' && field.empty()) {
      quoted_field = true;
    } else {
      field += char(c);
    }
  }
  fields.push_back(std::move(field));
  return true;
}

}  // namespace forge::data
