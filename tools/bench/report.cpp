// report.cpp: Table, number formatting and JSON files for `bench`.
#include "tools/bench/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <thread>

namespace forge::bench {

const char* const kSimNote =
    "NOTE: sim timings are CPU timings of an emulation of the CUDA kernels (kernels/sim), not GPU "
    "figures.";

Table::Table(std::vector<std::string> header) : header_(std::move(header)) {}

void Table::add_row(std::vector<std::string> cells) {
  cells.resize(header_.size());
  rows_.push_back(std::move(cells));
}

// A cell is a number when it parses as one entirely ("-" counts: it stands for one).
static bool is_numeric(const std::string& cell) {
  if (cell == "-") return true;
  char* end = nullptr;
  std::strtod(cell.c_str(), &end);
  return !cell.empty() && end == cell.c_str() + cell.size();
}

void Table::print() const {
  std::vector<size_t> width(header_.size());
  std::vector<bool> numeric(header_.size(), true);
  for (size_t c = 0; c < header_.size(); ++c) {
    width[c] = header_[c].size();
    for (const auto& row : rows_) {
      width[c] = std::max(width[c], row[c].size());
      numeric[c] = numeric[c] && is_numeric(row[c]);
    }
  }
  auto print_row = [&](const std::vector<std::string>& cells) {
    std::string line;
    for (size_t c = 0; c < cells.size(); ++c) {
      const std::string pad(width[c] - cells[c].size(), ' ');
      line += c ? "  " : "";
      line += numeric[c] ? pad + cells[c] : cells[c] + pad;
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    std::printf("%s\n", line.c_str());
  };
  print_row(header_);
  for (const auto& row : rows_) print_row(row);
  std::fflush(stdout);
}

std::string machine_load() {
  double load[1] = {0};
  char text[96];
  if (getloadavg(load, 1) != 1) return "load average unknown";
  std::snprintf(text, sizeof text, "load average %.2f on %u cores", load[0],
                std::thread::hardware_concurrency());
  return text;
}

std::string fixed(double value, int decimals, bool dash_zero) {
  if (!std::isfinite(value) || (dash_zero && value == 0)) return "-";
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", decimals, value);
  return text;
}

void write_json(const std::string& path, const nlohmann::json& j) {
  std::ofstream out(path);
  out << j.dump(2) << "\n";
  if (!out) throw std::runtime_error("cannot write " + path);
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path);
  return nlohmann::json::parse(in);
}

}  // namespace forge::bench
