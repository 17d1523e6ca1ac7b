// csv.h: comma-separated values as RFC 4180 has them, so that any text (a file name with commas,
// quotes or line breaks in it) survives a round trip.
//
//   a field holding a comma, a double quote, CR or LF is written in double quotes, with each
//   double quote inside doubled:   say "hi", bye   ->   "say ""hi"", bye"
//   records end with LF (CRLF is read too); a quoted field may span lines.
#pragma once
#include <istream>
#include <string>
#include <vector>

namespace forge::data {

// One record, its fields quoted where needed, ending with "\n".
std::string csv_record(const std::vector<std::string>& fields);

// Reads records one at a time. Errors (an unterminated quote, text after a closing quote) throw
// std::runtime_error naming the source and the line.
class CsvReader {
 public:
  CsvReader(std::istream& in, std::string name) : in_(in), name_(std::move(name)) {}
  // The next record's fields; false at the end of the input.
  bool next(std::vector<std::string>& fields);
  // The line on which the last record read began (1-based).
  int line() const { return record_line_; }

 private:
  std::istream& in_;
  std::string name_;
  int line_ = 1, record_line_ = 0;
};

}  // namespace forge::data
