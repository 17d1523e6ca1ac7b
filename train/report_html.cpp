// report_html.cpp: the HTML of report.html (see report_html.h); charts from train/svg_chart.h.
#include "train/report_html.h"

#include <stb/stb_image_write.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "train/progress.h"
#include "train/svg_chart.h"

namespace forge::train {

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

namespace {

std::string base64(const std::vector<uint8_t>& bytes) {
  static const char* table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t v = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    for (int k = 18; k >= 0; k -= 6) out += table[(v >> k) & 63];
  }
  if (i < bytes.size()) {
    const uint32_t v = (bytes[i] << 16) | (i + 1 < bytes.size() ? bytes[i + 1] << 8 : 0);
    out += table[(v >> 18) & 63];
    out += table[(v >> 12) & 63];
    out += i + 1 < bytes.size() ? table[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string png_data_uri(const std::vector<uint8_t>& rgb, int width, int height) {
  std::vector<uint8_t> png;
  stbi_write_png_to_func(
      [](void* ctx, void* data, int size) {
        auto* out = static_cast<std::vector<uint8_t>*>(ctx);
        out->insert(out->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
      },
      &png, width, height, 3, rgb.data(), width * 3);
  return "data:image/png;base64," + base64(png);
}

// The image under a heat colouring of the map (dark blue 0, through green and yellow, red 1),
// half and half.
std::vector<uint8_t> heat_overlay(const ExamplePrediction& e) {
  std::vector<uint8_t> out(e.rgb.size());
  for (size_t p = 0; p < size_t(e.width) * e.height; ++p) {
    const float v = std::clamp(e.saliency.values[p], 0.f, 1.f);
    const float heat[3] = {std::clamp(1.5f - std::abs(4 * v - 3), 0.f, 1.f),
                           std::clamp(1.5f - std::abs(4 * v - 2), 0.f, 1.f),
                           std::clamp(1.5f - std::abs(4 * v - 1), 0.f, 1.f)};
    for (int c = 0; c < 3; ++c)
      out[p * 3 + c] = uint8_t(std::lround(0.45f * e.rgb[p * 3 + c] + 0.55f * 255 * heat[c]));
  }
  return out;
}

std::string percent(double ratio) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f%%", 100 * ratio);
  return buf;
}

std::string fixed(double v, int digits) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

// The first epoch with the best validation accuracy (best.safetensors' epoch); null when none.
const EpochRecord* best_epoch(const std::vector<EpochRecord>& history) {
  if (history.empty()) return nullptr;
  return &*std::max_element(history.begin(), history.end(), [](const auto& a, const auto& b) {
    return a.val_accuracy < b.val_accuracy;
  });
}

std::string summary_table(const ReportPage& page) {
  const RunSummary& s = page.summary;
  std::ostringstream t;
  auto row = [&](const std::string& name, const std::string& value) {
    t << "<tr><th>" << name << "</th><td>" << value << "</td></tr>\n";
  };
  double seconds = 0;
  for (const auto& e : page.history) seconds += e.seconds;
  t << "<table class='summary'>\n";
  row("status", html_escape(s.status));
  row("model", html_escape(s.model) + ", " + std::to_string(s.parameters) + " parameters");
  row("epochs", std::to_string(page.history.size()) + " of " + std::to_string(s.epochs));
  if (!page.reports.empty())
    row("test accuracy",
        percent(page.reports[0].report.accuracy) + " (" + html_escape(page.reports[0].label) + ")");
  if (const EpochRecord* best = best_epoch(page.history))
    row("best validation accuracy", percent(best->val_accuracy) + " at epoch " +
                                        std::to_string(best->epoch) + " (test " +
                                        percent(best->test_accuracy) + " at that epoch)");
  row("run time", html_escape(format_duration(seconds)) + " (training and evaluation)");
  row("written", html_escape(page.written));
  row("command", "<code>" + html_escape(s.command_line) + "</code>");
  t << "</table>\n";
  return t.str();
}

std::string curves(const ReportPage& page) {
  std::vector<double> epochs;
  ChartSeries train_loss{"train", "#1f77b4"}, val_loss{"validation", "#2ca02c"},
      test_loss{"test", "#d62728"};
  ChartSeries train_acc = train_loss, val_acc = val_loss, test_acc = test_loss;
  ChartSeries lr{"end of epoch", "#9467bd"};
  for (const auto& e : page.history) {
    const double x = e.epoch;
    for (ChartSeries* c :
         {&train_loss, &val_loss, &test_loss, &train_acc, &val_acc, &test_acc, &lr})
      c->x.push_back(x);
    train_loss.y.push_back(e.train_loss);
    val_loss.y.push_back(e.val_loss);
    test_loss.y.push_back(e.test_loss);
    train_acc.y.push_back(e.train_accuracy);
    val_acc.y.push_back(e.val_accuracy);
    test_acc.y.push_back(e.test_accuracy);
    lr.y.push_back(e.learning_rate);
  }
  // Step rows on the epoch axis: step s ends at s / steps_per_epoch epochs.
  ChartSeries step_loss{"batch", "#aec7e8"}, step_lr{"per step", "#c5b0d5"};
  step_loss.markers = step_lr.markers = false;
  const double per_epoch = double(std::max<int64_t>(1, page.summary.steps_per_epoch));
  for (const auto& s : page.steps) {
    step_loss.x.push_back(s.step / per_epoch);
    step_loss.y.push_back(s.loss);
    step_lr.x.push_back(s.step / per_epoch);
    step_lr.y.push_back(s.learning_rate);
  }
  ChartSeries epoch_loss = train_loss;
  epoch_loss.name = "epoch mean";
  const EpochRecord* best = best_epoch(page.history);
  ChartOptions o{.x_label = "epoch", .integer_x = true};
  if (best) {
    o.highlight_x = best->epoch;
    o.highlight_label = "best val";
  }
  std::ostringstream html;
  o.title = "loss";
  o.y_min = 0;
  html << "<div class='charts'>\n" << svg_line_chart(o, {train_loss, val_loss, test_loss});
  o.title = "accuracy";
  o.y_max = 1;
  html << svg_line_chart(o, {train_acc, val_acc, test_acc});
  o.y_max = NAN;
  o.title = "training loss, every " + std::to_string(step_row_interval) + "th step";
  html << svg_line_chart(o, {step_loss, epoch_loss});
  o.title = "learning rate";
  html << svg_line_chart(o, {step_lr, lr}) << "</div>\n";
  return html.str();
}

std::string report_table(const ClassificationReport& r) {
  std::ostringstream t;
  auto row = [&](const std::string& name, const ClassScores& s) {
    t << "<tr><th>" << html_escape(name) << "</th><td>" << fixed(s.precision, 4) << "</td><td>"
      << fixed(s.recall, 4) << "</td><td>" << fixed(s.f1, 4) << "</td><td>" << s.support
      << "</td></tr>\n";
  };
  t << "<div class='side'><table><tr><th></th><th>precision</th><th>recall</th><th>F1</th>"
       "<th>support</th></tr>\n";
  for (size_t c = 0; c < r.per_class.size(); ++c) row(r.class_names[c], r.per_class[c]);
  t << "<tr><th>accuracy</th><td></td><td></td><td>" << fixed(r.accuracy, 4) << "</td><td>"
    << r.total << "</td></tr>\n";
  row("macro avg", r.macro);
  row("weighted avg", r.weighted);
  // The confusion matrix, each cell shaded by its share of the row (the true class).
  t << "</table>\n<table class='confusion'><tr><th>true \\ predicted</th>";
  for (const auto& name : r.class_names) t << "<th>" << html_escape(name) << "</th>";
  t << "</tr>\n";
  for (size_t i = 0; i < r.confusion.size(); ++i) {
    int64_t row_total = 0;
    for (int64_t v : r.confusion[i]) row_total += v;
    t << "<tr><th>" << html_escape(r.class_names[i]) << "</th>";
    for (size_t j = 0; j < r.confusion[i].size(); ++j) {
      const double share = row_total ? double(r.confusion[i][j]) / row_total : 0;
      const auto mix = [&](int from, int to) {
        return int(std::lround(from + (to - from) * share));
      };
      t << "<td style='background:rgb(" << mix(255, 8) << "," << mix(255, 81) << ","
        << mix(255, 156) << ");color:" << (share > 0.5 ? "#fff" : "#000") << "'>"
        << r.confusion[i][j] << "<br><small>" << fixed(100 * share, 1) << "%</small></td>";
    }
    t << "</tr>\n";
  }
  t << "</table></div>\n";
  return t.str();
}

std::string saliency_section(const ReportPage& page) {
  std::ostringstream html;
  std::string method;
  for (const auto& e : page.examples)
    if (e.saliency.width == e.width && e.saliency.height == e.height && e.width > 0) {
      if (method.empty()) method = e.saliency.method;
      html << "<div class='ex" << (e.truth == e.predicted ? "" : " wrong") << "' title='"
           << html_escape(e.file) << "'><img src='" << png_data_uri(e.rgb, e.width, e.height)
           << "' alt='image'><img src='" << png_data_uri(heat_overlay(e), e.width, e.height)
           << "' alt='map'><br>" << html_escape(e.saliency.method) << "</div>\n";
    }
  if (method.empty()) return "";
  const bool rollout = method.rfind("attention", 0) == 0;
  return "<h2>What the model looks at, " + html_escape(page.reports[0].label) + "</h2>\n<p>" +
         (rollout ? "Attention rollout from the class token: how much each patch flows into the "
                    "class token through all layers (heads averaged, the residual path added)."
                  : "Grad-CAM of the predicted class: the last feature map weighted by the "
                    "gradient of the class score.") +
         " Red: most, blue: least (each map scaled from its own least to its most).</p>\n<div "
         "class='grid'>\n" +
         html.str() + "</div>\n";
}

std::string example_grid(const ReportPage& page) {
  if (page.examples.empty()) return "";
  const ClassificationReport& report = page.reports.at(0).report;
  std::ostringstream html;
  html << "<h2>Test images, " << html_escape(page.reports[0].label)
       << "</h2>\n<p>Green: right; red: wrong (the wrong ones first).</p>\n<div class='grid'>\n";
  for (const auto& e : page.examples) {
    html << "<div class='ex" << (e.truth == e.predicted ? "" : " wrong") << "' title='"
         << html_escape(e.file) << "'><img src='" << png_data_uri(e.rgb, e.width, e.height)
         << "' alt='test image'><br>predicted " << html_escape(report.class_names[e.predicted])
         << " (" << fixed(e.probability, 3) << ")<br>true "
         << html_escape(report.class_names[e.truth]) << "</div>\n";
  }
  html << "</div>\n";
  return html.str();
}

}  // namespace

std::string render_report_html(const ReportPage& page) {
  std::ostringstream html;
  html << "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>"
       << html_escape(page.title)
       << "</title>\n<style>body{font-family:sans-serif;margin:2em;max-width:1200px;color:#222}"
          "table{border-collapse:collapse;margin:0.5em 0}td,th{border:1px solid #ccc;"
          "padding:4px 10px;text-align:right}table.summary td,table.summary th{text-align:left}"
          "table.confusion td{min-width:70px;text-align:center}.side{display:flex;gap:2em;"
          "align-items:flex-start;flex-wrap:wrap}.charts{display:flex;flex-wrap:wrap;gap:8px}"
          ".grid{display:flex;flex-wrap:wrap;gap:8px}.ex{font-size:11px;text-align:center;"
          "border:3px solid #8c8;padding:2px}.ex.wrong{border-color:#d33}.ex img{width:120px;"
          "height:120px;image-rendering:pixelated;margin:1px}pre{background:#f6f6f6;padding:1em;"
          "overflow:auto}code{word-break:break-all}.note{color:#555}</style></head><body>\n<h1>"
       << html_escape(page.title) << "</h1>\n"
       << summary_table(page) << "<h2>Curves</h2>\n<p class='note'>Per epoch: the model at the end "
       << "of each epoch. Validation chooses best.safetensors (dashed line: its epoch); the test "
          "side never chooses anything.</p>\n"
       << curves(page);
  for (const auto& r : page.reports)
    html << "<h2>Test set, " << html_escape(r.label) << "</h2>\n" << report_table(r.report);
  html << saliency_section(page) << example_grid(page) << "<h2>Configuration</h2>\n<pre>"
       << html_escape(page.config.dump(2)) << "</pre>\n</body></html>\n";
  return html.str();
}

}  // namespace forge::train
