// compare: runs side by side, as the seed paper's Table 7: model, parameters of the run, test
// accuracy, per-class precision / recall / F1, training time. Prints a Markdown table and, with
// --html FILE, writes the same table as a self-contained page.
//
//   build/bin/compare runs/vit runs/hrnet runs/cnn --html runs/compare.html
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/io/atomic_file.h"
#include "tools/program.h"
#include "train/history.h"
#include "train/progress.h"
#include "train/report_html.h"

namespace fs = std::filesystem;

static nlohmann::json read_json(const fs::path& p) {
  std::ifstream in(p);
  if (!in) throw std::runtime_error("cannot open " + p.string() + " (is this a finished run?)");
  return nlohmann::json::parse(in);
}

// The program itself; program::run (tools/program.h) makes `app` and catches what escapes.
int compare_main(CLI::App& app, int argc, char** argv) {
  std::vector<std::string> runs;
  std::string html_file;
  app.add_option("runs", runs, "run folders")->required()->check(CLI::ExistingDirectory);
  app.add_option("--html", html_file, "also write an HTML page");
  app.parse(argc, argv);
  {
    std::vector<std::vector<std::string>> rows;
    std::vector<std::string> header{"run", "model", "epochs", "test accuracy"};
    for (const auto& dir : runs) {
      const nlohmann::json report = read_json(fs::path(dir) / "report.json");
      const nlohmann::json config = read_json(fs::path(dir) / "config.json");
      const auto history = forge::train::read_history((fs::path(dir) / "metrics.jsonl").string());
      double seconds = 0;
      for (const auto& e : history) seconds += e.seconds;
      char buf[64];
      std::vector<std::string> row{dir, config["model"].get<std::string>(),
                                   std::to_string(history.size())};
      std::snprintf(buf, sizeof buf, "%.4f", report["accuracy"].get<double>());
      row.push_back(buf);
      for (const auto& name : report["class_names"]) {
        const auto& c = report["classes"][name.get<std::string>()];
        if (rows.empty())
          for (const char* m : {"precision", "recall", "F1"})
            header.push_back(name.get<std::string>() + " " + m);
        for (const char* key : {"precision", "recall", "f1"}) {
          std::snprintf(buf, sizeof buf, "%.4f", c[key].get<double>());
          row.push_back(buf);
        }
      }
      if (rows.empty()) header.push_back("training time");
      row.push_back(forge::train::format_duration(seconds));
      rows.push_back(row);
    }
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
}

int main(int argc, char** argv) {
  return forge::program::run(
      "compare", "Compare finished training runs (their report.json, config.json, metrics.jsonl).",
      [&](CLI::App& app) { return compare_main(app, argc, argv); });
}
