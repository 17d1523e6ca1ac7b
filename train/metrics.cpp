// metrics.cpp: confusion-matrix arithmetic and the report's text and JSON forms.
#include "train/metrics.h"

#include <algorithm>
#include <cstdio>
#include <stdexcept>

#include "train/intervals.h"

namespace forge::train {

ConfusionMatrix::ConfusionMatrix(int n) : counts_(n, std::vector<int64_t>(n, 0)) {}

void ConfusionMatrix::add(int truth, int predicted) {
  const int n = static_cast<int>(counts_.size());
  if (truth < 0 || truth >= n || predicted < 0 || predicted >= n)
    throw std::out_of_range("confusion matrix: class " + std::to_string(truth) + " or " +
                            std::to_string(predicted) + " outside [0, " + std::to_string(n) + ")");
  ++counts_[truth][predicted];
}

int64_t ConfusionMatrix::total() const {
  int64_t t = 0;
  for (const auto& row : counts_)
    for (int64_t v : row) t += v;
  return t;
}

static double ratio(double num, double den) {
  return den > 0 ? num / den : 0.0;
}

ClassificationReport ConfusionMatrix::report(const std::vector<std::string>& names) const {
  const int n = static_cast<int>(counts_.size());
  if (static_cast<int>(names.size()) != n)
    throw std::invalid_argument("report: " + std::to_string(names.size()) + " class names for " +
                                std::to_string(n) + " classes");
  ClassificationReport r;
  r.class_names = names;
  r.confusion = counts_;
  r.total = total();
  int64_t correct = 0;
  for (int c = 0; c < n; ++c) {
    int64_t predicted = 0, actual = 0;
    for (int k = 0; k < n; ++k) {
      predicted += counts_[k][c];
      actual += counts_[c][k];
    }
    const double tp = static_cast<double>(counts_[c][c]);
    correct += counts_[c][c];
    ClassScores s;
    s.precision = ratio(tp, predicted);
    s.recall = ratio(tp, actual);
    s.f1 = ratio(2 * s.precision * s.recall, s.precision + s.recall);
    s.support = actual;
    r.per_class.push_back(s);
    r.macro.precision += s.precision / n;
    r.macro.recall += s.recall / n;
    r.macro.f1 += s.f1 / n;
    const double w = ratio(static_cast<double>(actual), static_cast<double>(r.total));
    r.weighted.precision += w * s.precision;
    r.weighted.recall += w * s.recall;
    r.weighted.f1 += w * s.f1;
  }
  r.macro.support = r.weighted.support = r.total;
  r.accuracy = ratio(static_cast<double>(correct), static_cast<double>(r.total));
  return r;
}

int64_t correct_count(const ClassificationReport& r) {
  int64_t correct = 0;
  for (size_t c = 0; c < r.confusion.size(); ++c) correct += r.confusion[c][c];
  return correct;
}

std::string format_report(const ClassificationReport& r) {
  size_t width = 12;
  for (const auto& name : r.class_names) width = std::max(width, name.size());
  std::string out;
  char line[512];
  auto row = [&](const std::string& name, const ClassScores& s) {
    std::snprintf(line, sizeof line, "%*s %10.4f %10.4f %10.4f %10lld\n", int(width), name.c_str(),
                  s.precision, s.recall, s.f1, static_cast<long long>(s.support));
    out += line;
  };
  std::snprintf(line, sizeof line, "%*s %10s %10s %10s %10s\n\n", int(width), "", "precision",
                "recall", "f1-score", "support");
  out += line;
  for (size_t c = 0; c < r.per_class.size(); ++c) row(r.class_names[c], r.per_class[c]);
  std::snprintf(line, sizeof line, "\n%*s %10s %10s %10.4f %10lld\n", int(width), "accuracy", "",
                "", r.accuracy, static_cast<long long>(r.total));
  out += line;
  row("macro avg", r.macro);
  row("weighted avg", r.weighted);
  if (r.total > 0)
    out += "\naccuracy: " + std::to_string(correct_count(r)) + " of " + std::to_string(r.total) +
           " right, " + format_intervals(correct_count(r), r.total) + "\n";
  out += "\nconfusion matrix (rows: true class, columns: predicted)\n";
  std::snprintf(line, sizeof line, "%*s", int(width), "");
  out += line;
  for (const auto& name : r.class_names) {
    std::snprintf(line, sizeof line, " %10s", name.c_str());
    out += line;
  }
  out += "\n";
  for (size_t t = 0; t < r.confusion.size(); ++t) {
    std::snprintf(line, sizeof line, "%*s", int(width), r.class_names[t].c_str());
    out += line;
    for (int64_t v : r.confusion[t]) {
      std::snprintf(line, sizeof line, " %10lld", static_cast<long long>(v));
      out += line;
    }
    out += "\n";
  }
  return out;
}

static nlohmann::json scores_json(const ClassScores& s) {
  return {
      {"precision", s.precision}, {"recall", s.recall}, {"f1-score", s.f1}, {"support", s.support}};
}

nlohmann::json report_json(const ClassificationReport& r) {
  nlohmann::json j = nlohmann::json::object();
  for (size_t c = 0; c < r.per_class.size(); ++c) j[r.class_names[c]] = scores_json(r.per_class[c]);
  j["accuracy"] = r.accuracy;
  if (r.total > 0) {
    const Interval w = wilson_interval(correct_count(r), r.total),
                   cp = clopper_pearson_interval(correct_count(r), r.total);
    j["accuracy_interval_95"] = {{"wilson", {w.low, w.high}},
                                 {"clopper_pearson", {cp.low, cp.high}}};
  }
  j["macro avg"] = scores_json(r.macro);
  j["weighted avg"] = scores_json(r.weighted);
  j["class_names"] = r.class_names;
  j["confusion_matrix"] = r.confusion;
  return j;
}

}  // namespace forge::train
