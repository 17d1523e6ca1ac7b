// test_split_csv.cpp: split files are RFC 4180 CSV, so any file name (commas, quotes, line breaks)
// round-trips through split.csv; a split listing a file twice, or on two sides, is refused with
// the file and the line.
#include <doctest/doctest.h>

#include <sstream>

#include "data/csv.h"
#include "data/dataset.h"
#include "data/split.h"
#include "tests/data/helpers.h"

using namespace forge::data;
using namespace forge::data::test;

namespace {

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::vector<std::vector<std::string>> parse(const std::string& text) {
  std::istringstream in(text);
  CsvReader csv(in, "t.csv");
  std::vector<std::vector<std::string>> out;
  for (std::vector<std::string> r; csv.next(r);) out.push_back(r);
  return out;
}

}  // namespace

TEST_CASE("csv: fields with commas, quotes and line breaks are quoted and read back") {
  const std::vector<std::string> fields{"plain", "a,b", "say \"hi\"", "two\nlines", "", "cr\r\n"};
  const std::string rec = csv_record(fields);
  CHECK(rec == "plain,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",,\"cr\r\n\"\n");
  CHECK(parse(rec + rec) == std::vector<std::vector<std::string>>{fields, fields});
  CHECK(parse("a,b\r\nc,d\r\n") == std::vector<std::vector<std::string>>{{"a", "b"}, {"c", "d"}});
  CHECK_THROWS_WITH_AS(parse("a,b\n\"open,c\n"), doctest::Contains("t.csv:3: a quoted field"),
                       std::runtime_error);
  CHECK_THROWS_WITH_AS(parse("\"x\"y,z\n"),
                       doctest::Contains("t.csv:1: text after a closing quote"),
                       std::runtime_error);
}

TEST_CASE("split: a name with a comma, a quote and a newline round-trips through split.csv") {
  TempDir dir;
  make_folder(dir.path, {"a", "b"}, 3);
  const std::string odd = "we, \"the\"\nthird.png";
  write_bytes(dir.path / "a" / odd, encode(pattern(5, 5), "png"));
  write_bytes(dir.path / "b" / "plain,comma.png", encode(pattern(5, 5), "png"));
  const ImageFolder f = scan_image_folder(dir.path.string());
  REQUIRE(f.samples.size() == 8);
  Split s;
  for (size_t i = 0; i < f.samples.size(); ++i) (i % 3 ? s.train : s.test).push_back(i);
  s.val = {};
  const fs::path file = dir.path / "split.csv";
  save_split(f, s, file.string());
  CHECK(read_text(file).find("\"a/we, \"\"the\"\"\nthird.png\",a,") != std::string::npos);
  const Split back = load_split(f, file.string());
  CHECK(back.train == s.train);
  CHECK(back.test == s.test);
  CHECK(back.val.empty());
  // A validation side is read into val.
  std::ofstream(file, std::ios::binary) << "file,class,side\n\"b/plain,comma.png\",b,val\n";
  const Split with_val = load_split(f, file.string());
  REQUIRE(with_val.val.size() == 1);
  CHECK(f.samples[with_val.val[0]].file == "b/plain,comma.png");
}

TEST_CASE("split: a file listed twice or on two sides is refused with the file and the line") {
  TempDir dir;
  make_folder(dir.path, {"a", "b"}, 2);
  const ImageFolder f = scan_image_folder(dir.path.string());
  const fs::path file = dir.path / "split.csv";
  const std::string head = "file,class,side\na/img0.png,a,train\nb/img0.png,b,test\n";
  std::ofstream(file, std::ios::binary) << head << "a/img0.png,a,test\n";
  CHECK_THROWS_WITH_AS(
      load_split(f, file.string()),
      doctest::Contains((file.string() + ":4: 'a/img0.png' is listed again (as test), already "
                                         "on line 2 (as train)")
                            .c_str()),
      std::runtime_error);
  std::ofstream(file, std::ios::binary) << head << "b/img0.png,b,test\n";
  CHECK_THROWS_WITH_AS(load_split(f, file.string()),
                       doctest::Contains(":4: 'b/img0.png' is listed again (as test), already on "
                                         "line 3 (as test)"),
                       std::runtime_error);
  // An unquoted name with a comma (a hand-written file) is a clear error, not a wrong file.
  std::ofstream(file, std::ios::binary) << head << "b/x,y.png,b,train\n";
  CHECK_THROWS_WITH_AS(load_split(f, file.string()),
                       doctest::Contains(":4: expected 3 fields (file,class,side), found 4"),
                       std::runtime_error);
  std::ofstream(file, std::ios::binary) << head << "b/img1.png,b,holdout\n";
  CHECK_THROWS_WITH_AS(load_split(f, file.string()),
                       doctest::Contains(":4: side 'holdout' is none of train, val, test"),
                       std::runtime_error);
}
