// report_html.h: the run's report.html, rewritten after every epoch so it can be watched during a
// run and is there after a stop. Self-contained (no network: inline CSS, SVG charts, images as
// PNG data URIs, no scripts): a summary of the run; loss, accuracy, learning-rate and step-level
// loss curves over epochs with the best epoch marked; per model, the classification report and
// the confusion matrix shaded by each row's share; maps of what the model looks at (attention
// rollout for the ViT, Grad-CAM for the CNN and HRNet, train/saliency.h); a grid of test images
// with predicted and true labels, the wrong ones marked (the seed paper's Figures 9 to 14).
// Every figure says which model it comes from.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "train/example_prediction.h"
#include "train/history.h"
#include "train/metrics.h"

namespace forge::train {

// The test side's report on one model, under a label saying which ("final model (epoch 20)").
struct LabelledReport {
  std::string label;
  ClassificationReport report;
};

// What the page's header says about the run.
struct RunSummary {
  std::string model;  // the preset
  int64_t parameters = 0;
  std::string command_line;
  std::string status;           // "finished", "running: 3 of 20 epochs done", ...
  int epochs = 0;               // planned
  int64_t steps_per_epoch = 0;  // places the step rows on the epoch axis
};

struct ReportPage {
  std::string title;
  RunSummary summary;
  nlohmann::json config;
  std::vector<EpochRecord> history;
  std::vector<StepRecord> steps;
  // One per model reported on (during the run: the latest epoch's; at the end: the final and the
  // best-on-validation model, and any further one, e.g. an average of the weights). The first is
  // the model of `examples` and of their saliency maps.
  std::vector<LabelledReport> reports;
  std::vector<ExamplePrediction> examples;
  std::string written = {};  // when, ISO 8601 UTC
};

std::string render_report_html(const ReportPage& page);

// Escapes &, <, >, " and ' for HTML text and attributes.
std::string html_escape(const std::string& s);

}  // namespace forge::train
