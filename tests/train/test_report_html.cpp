// test_report_html.cpp: report.html's page and charts: a 1-epoch history shows its points, the
// best epoch is marked, the confusion matrix is shaded by row share with its counts, the summary
// names model, parameters, accuracies and command line, and every figure names its model.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>

#include "train/report_html.h"
#include "train/svg_chart.h"

using namespace forge::train;

namespace {

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

EpochRecord epoch(int e, double val_accuracy) {
  EpochRecord r;
  r.epoch = e;
  r.train_loss = 0.7 / e;
  r.val_loss = 0.6 / e;
  r.test_loss = 0.65 / e;
  r.train_accuracy = r.test_accuracy = 0.8;
  r.val_accuracy = val_accuracy;
  r.learning_rate = 1e-3 / e;
  r.seconds = 61;
  return r;
}

ReportPage page_with(std::vector<EpochRecord> history) {
  ClassificationReport report;
  report.class_names = {"anime", "selfie"};
  report.per_class.resize(2);
  report.confusion = {{3, 1}, {0, 4}};
  report.accuracy = 0.875;
  report.total = 8;
  ReportPage page{.title = "vit on data",
                  .summary = {.model = "vit-micro",
                              .parameters = 12345,
                              .command_line = "train --model vit-micro --epochs 1",
                              .status = "finished",
                              .epochs = int(history.size()),
                              .steps_per_epoch = 20},
                  .config = {{"model", "vit-micro"}},
                  .history = std::move(history),
                  .steps = {},
                  .reports = {{"final model (epoch 1)", report}},
                  .examples = {}};
  return page;
}

}  // namespace

TEST_CASE("report page: a 1-epoch run shows its points in every per-epoch chart") {
  const std::string html = render_report_html(page_with({epoch(1, 0.9)}));
  // loss: 3 series, accuracy: 3, step-level loss: the epoch mean, lr: the end of the epoch.
  CHECK(count(html, "<circle class='point'") == 8);
  CHECK(html.find("no data yet") == std::string::npos);
}

TEST_CASE("report page: an empty history says so instead of drawing nothing") {
  CHECK(html_escape("<a href='x'>") == "&lt;a href=&#39;x&#39;&gt;");
  const std::string html = render_report_html(page_with({}));
  CHECK(count(html, "no data yet") == 4);
}

TEST_CASE("report page: summary, best epoch, shaded confusion matrix, model labels") {
  ReportPage page = page_with({epoch(1, 0.5), epoch(2, 0.95), epoch(3, 0.95)});
  page.steps = {{.step = 10, .epoch = 1, .loss = 0.9, .learning_rate = 1e-4, .time = ""}};
  const std::string html = render_report_html(page);
  CHECK(html.find("vit-micro, 12345 parameters") != std::string::npos);
  CHECK(html.find("87.50% (final model (epoch 1))") != std::string::npos);
  // The first epoch with the best validation accuracy: 2, not 3.
  CHECK(html.find("95.00% at epoch 2") != std::string::npos);
  CHECK(count(html, "class='highlight'") == 4);
  CHECK(html.find("3:03 (training and evaluation)") != std::string::npos);
  CHECK(html.find("<code>train --model vit-micro --epochs 1</code>") != std::string::npos);
  // Row "anime" is 3 of 4 right: 75% shaded darker than its 25% cell, counts shown.
  CHECK(html.find(">3<br><small>75.0%</small>") != std::string::npos);
  CHECK(html.find(">1<br><small>25.0%</small>") != std::string::npos);
  CHECK(html.find(">4<br><small>100.0%</small>") != std::string::npos);
  CHECK(html.find("Test set, final model (epoch 1)") != std::string::npos);
}

TEST_CASE("svg chart: ticks are round numbers covering the range") {
  CHECK(axis_ticks(1, 20, 8, true) == std::vector<double>{5, 10, 15, 20});
  CHECK(axis_ticks(1, 12, 8, true) == std::vector<double>{2, 4, 6, 8, 10, 12});
  CHECK(axis_ticks(0.5, 1.5, 8, true) == std::vector<double>{1});
  CHECK(axis_ticks(0, 1, 4, false) == std::vector<double>{0, 0.5, 1});
  ChartOptions o{.title = "t", .x_label = "epoch", .integer_x = true};
  const std::string one = svg_line_chart(o, {{.name = "a", .color = "#000", .x = {1}, .y = {2}}});
  CHECK(count(one, "<circle") == 1);
  const std::string dense = svg_line_chart(
      o, {{.name = "a", .color = "#000", .x = {1, 2}, .y = {2, 3}, .markers = false}});
  CHECK(count(dense, "<circle") == 0);
}
