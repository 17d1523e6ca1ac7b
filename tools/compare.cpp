// compare: runs side by side, as the seed paper's Table 7: model, image size, parameter count,
// epochs, training img/s (the mean over epochs), test accuracy with its 95% Wilson interval
// (train/intervals.h), per-class precision / recall / F1
// (columns matched by class name; runs on other classes are refused), training time. Prints a
// Markdown table and, with --html FILE, writes the same table as a self-contained page (a FILE
// that cannot be written is an error: exit 1).
//
//   build/bin/compare runs/vit runs/hrnet runs/cnn --html runs/compare.html
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/io/atomic_file.h"
#include "tools/program.h"
#include "train/history.h"
#include "train/intervals.h"
#include "train/progress.h"
#include "train/report_html.h"

namespace fs = std::filesystem;

static nlohmann::json read_json(const fs::path& p) {
  std::ifstream in(p);
  if (!in) throw std::runtime_error("cannot open " + p.string() + " (is this a finished run?)");
  try {
    return nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    throw std::runtime_error(p.string() + " is not JSON (" + e.what() + ")");
  }
}

static std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

// A class's {precision, recall, f1-score} in report.json: scikit-learn's keys at the top level,
// or, in reports written before them, under "classes" with "f1".
static std::vector<double> class_scores(const nlohmann::json& report, const std::string& name) {
  if (report.contains("classes")) {
    const auto& c = report["classes"].at(name);
    return {c.at("precision"), c.at("recall"), c.at("f1")};
  }
  const auto& c = report.at(name);
  return {c.at("precision"), c.at("recall"), c.at("f1-score")};
}

static std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

// The program itself; program::run (tools/program.h) makes `app` and catches what escapes.
// The test accuracy's 95% Wilson interval from the report's confusion matrix ("?" without one).
static std::string accuracy_interval(const nlohmann::json& report) {
  if (!report.contains("confusion_matrix")) return "?";
  const auto confusion = report["confusion_matrix"].get<std::vector<std::vector<int64_t>>>();
  int64_t correct = 0, total = 0;
  for (size_t t = 0; t < confusion.size(); ++t)
    for (size_t p = 0; p < confusion[t].size(); ++p) {
      total += confusion[t][p];
      correct += t == p ? confusion[t][p] : 0;
    }
  if (total == 0) return "?";
  const forge::train::Interval w = forge::train::wilson_interval(correct, total);
  return fixed(w.low, 4) + "-" + fixed(w.high, 4);
}

int compare_main(CLI::App& app, int argc, char** argv) {
  std::vector<std::string> runs;
  std::string html_file;
  app.add_option("runs", runs, "run folders")->required()->check(CLI::ExistingDirectory);
  app.add_option("--html", html_file, "also write an HTML page");
  app.parse(argc, argv);
  // The first run's classes name the columns; every run is looked up by class name, and runs
  // with other classes are refused (their columns would not mean the same thing).
  std::vector<std::string> classes;
  std::string classes_from;
  std::vector<std::vector<std::string>> rows;
  for (const auto& dir : runs) {
    const nlohmann::json report = read_json(fs::path(dir) / "report.json");
    const nlohmann::json config = read_json(fs::path(dir) / "config.json");
    const auto history = forge::train::read_history((fs::path(dir) / "metrics.jsonl").string());
    const auto run_classes = report.at("class_names").get<std::vector<std::string>>();
    if (classes.empty()) {
      classes = run_classes;
      classes_from = dir;
    } else {
      auto a = classes, b = run_classes;
      std::sort(a.begin(), a.end());
      std::sort(b.begin(), b.end());
      if (a != b)
        throw std::runtime_error(dir + " has classes " + joined(run_classes) + " but " +
                                 classes_from + " has " + joined(classes) +
                                 ": runs on different classes cannot share columns");
    }
    double seconds = 0, images_per_second = 0;
    for (const auto& e : history) {
      seconds += e.seconds;
      images_per_second += e.images_per_second / history.size();
    }
    std::vector<std::string> row{
        dir,
        config.at("model").get<std::string>(),
        std::to_string(config.at("image_size").get<int>()),
        report.contains("parameters") ? std::to_string(report["parameters"].get<long long>()) : "?",
        std::to_string(history.size()),
        fixed(images_per_second, 1),
        fixed(report.at("accuracy").get<double>(), 4),
        accuracy_interval(report)};
    for (const auto& name : classes)
      for (double v : class_scores(report, name)) row.push_back(fixed(v, 4));
    row.push_back(forge::train::format_duration(seconds));
    rows.push_back(row);
  }
  std::vector<std::string> header{"run",    "model", "image size",    "parameters",
                                  "epochs", "img/s", "test accuracy", "95% interval (Wilson)"};
  for (const auto& name : classes)
    for (const char* m : {"precision", "recall", "F1"}) header.push_back(name + " " + m);
  header.push_back("training time");
  std::ostringstream md, html;
  auto md_row = [&](const std::vector<std::string>& r) {
    md << "|";
    for (const auto& c : r) md << " " << c << " |";
    md << "\n";
  };
  md_row(header);
  md << "|";
  for (size_t i = 0; i < header.size(); ++i) md << " --- |";
  md << "\n";
  for (const auto& r : rows) md_row(r);
  std::printf("%s", md.str().c_str());
  if (!html_file.empty()) {
    html << "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Runs compared</title>"
            "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}</style></head>"
            "<body><h1>Runs compared</h1><table><tr>";
    for (const auto& h : header) html << "<th>" << forge::train::html_escape(h) << "</th>";
    html << "</tr>";
    for (const auto& r : rows) {
      html << "<tr>";
      for (const auto& c : r) html << "<td>" << forge::train::html_escape(c) << "</td>";
      html << "</tr>";
    }
    html << "</table></body></html>\n";
    forge::write_file_atomically(html_file, html.str());  // checked: a full disk is an error
  }
  return 0;
}

int main(int argc, char** argv) {
  return forge::program::run(
      "compare", "Compare finished training runs (their report.json, config.json, metrics.jsonl).",
      [&](CLI::App& app) { return compare_main(app, argc, argv); });
}
