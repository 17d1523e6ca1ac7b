// report_html.h: the run's report.html: self-contained (no network: inline CSS, SVG charts,
// images as data URIs), with the loss and accuracy curves, the classification report, the
// confusion matrix and a grid of test images with predicted and true labels, the wrong ones
// marked (the seed paper's Figures 9 to 14).
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "train/history.h"
#include "train/metrics.h"

namespace forge::train {

struct ExamplePrediction {
  std::string file;          // relative to the data folder
  std::vector<uint8_t> rgb;  // interleaved RGB, width x height
  int width = 0, height = 0;
  int truth = 0, predicted = 0;
  float probability = 0;  // of the predicted class
};

// A line chart of one or more series over epochs 1..n as an <svg> element.
struct ChartSeries {
  std::string name, color;
  std::vector<double> values;
};
std::string svg_line_chart(const std::string& title, const std::vector<ChartSeries>& series,
                           double y_min, double y_max);

// The test side's report on one model, under a label saying which ("final model (epoch 20)").
struct LabelledReport {
  std::string label;
  ClassificationReport report;
};

// `examples` are predictions of the first report's model.
std::string render_report_html(const std::string& title, const nlohmann::json& config,
                               const std::vector<EpochRecord>& history,
                               const std::vector<LabelledReport>& reports,
                               const std::vector<ExamplePrediction>& examples);

// Escapes &, <, >, " for HTML text and attributes.
std::string html_escape(const std::string& s);

}  // namespace forge::train
