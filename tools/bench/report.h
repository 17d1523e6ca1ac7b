// report.h: what `bench` prints and writes: aligned text tables and JSON files.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace forge::bench {

// A text table: a header row, then rows of cells; numbers right-aligned, text left-aligned.
class Table {
 public:
  explicit Table(std::vector<std::string> header);
  void add_row(std::vector<std::string> cells);
  void print() const;  // to stdout, columns two spaces apart

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

// `value` with `decimals` digits after the point; "-" for a value that is not finite or is 0
// when `dash_zero` (a rate of an op that moves or computes nothing).
std::string fixed(double value, int decimals, bool dash_zero = false);

// Writes `j` (indented) to `path`; throws std::runtime_error naming the path on failure.
void write_json(const std::string& path, const nlohmann::json& j);
nlohmann::json read_json(const std::string& path);

// "load average 3.10 on 2 cores": printed in every header, since other processes on the cores
// stretch timings (an OpenMP barrier waits for a descheduled thread: a scheduler tick).
std::string machine_load();

// One line saying what sim figures are, printed by every subcommand run on sim.
extern const char* const kSimNote;

}  // namespace forge::bench
