// report_html.cpp: HTML, SVG and data-URI writing for report.html.
#include "train/report_html.h"

#include <stb/stb_image_write.h>

#include <algorithm>
#include <cstdio>
#include <sstream>

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
      default:
        out += c;
    }
  }
  return out;
}

static std::string base64(const std::vector<uint8_t>& bytes) {
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

static std::string png_data_uri(const ExamplePrediction& e) {
  std::vector<uint8_t> png;
  stbi_write_png_to_func(
      [](void* ctx, void* data, int size) {
        auto* out = static_cast<std::vector<uint8_t>*>(ctx);
        out->insert(out->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
      },
      &png, e.width, e.height, 3, e.rgb.data(), e.width * 3);
  return "data:image/png;base64," + base64(png);
}

std::string svg_line_chart(const std::string& title, const std::vector<ChartSeries>& series,
                           double y_min, double y_max) {
  const double w = 440, h = 260, left = 50, right = 110, top = 30, bottom = 35;
  size_t n = 0;
  for (const auto& s : series) n = std::max(n, s.values.size());
  if (y_max <= y_min) y_max = y_min + 1;
  auto x_at = [&](size_t i) { return left + (n > 1 ? (w - left - right) * i / (n - 1.0) : 0.0); };
  auto y_at = [&](double v) {
    return top + (h - top - bottom) * (1 - (v - y_min) / (y_max - y_min));
  };
  std::ostringstream svg;
  svg << "<svg xmlns='http://www.w3.org/2000/svg' width='" << w << "' height='" << h
      << "' font-family='sans-serif' font-size='11'>\n"
      << "<text x='" << left << "' y='18' font-size='13' font-weight='bold'>" << html_escape(title)
      << "</text>\n";
  for (int k = 0; k <= 4; ++k) {  // horizontal grid with labels
    const double v = y_min + (y_max - y_min) * k / 4, y = y_at(v);
    svg << "<line x1='" << left << "' x2='" << w - right << "' y1='" << y << "' y2='" << y
        << "' stroke='#ddd'/><text x='" << left - 5 << "' y='" << y + 4 << "' text-anchor='end'>"
        << std::to_string(v).substr(0, 5) << "</text>\n";
  }
  svg << "<text x='" << (left + w - right) / 2 << "' y='" << h - 8
      << "' text-anchor='middle'>epoch (1 to " << n << ")</text>\n";
  for (size_t s = 0; s < series.size(); ++s) {
    svg << "<polyline fill='none' stroke-width='2' stroke='" << series[s].color << "' points='";
    for (size_t i = 0; i < series[s].values.size(); ++i)
      svg << x_at(i) << "," << y_at(series[s].values[i]) << " ";
    svg << "'/>\n<text x='" << w - right + 8 << "' y='" << top + 14 + 16 * s << "' fill='"
        << series[s].color << "'>" << html_escape(series[s].name) << "</text>\n";
  }
  svg << "</svg>\n";
  return svg.str();
}

static std::string report_table(const ClassificationReport& r) {
  std::ostringstream t;
  char buf[64];
  auto cell = [&](double v) {
    std::snprintf(buf, sizeof buf, "<td>%.4f</td>", v);
    return std::string(buf);
  };
  auto row = [&](const std::string& name, const ClassScores& s) {
    t << "<tr><th>" << html_escape(name) << "</th>" << cell(s.precision) << cell(s.recall)
      << cell(s.f1) << "<td>" << s.support << "</td></tr>\n";
  };
  t << "<table><tr><th></th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>\n";
  for (size_t c = 0; c < r.per_class.size(); ++c) row(r.class_names[c], r.per_class[c]);
  std::snprintf(buf, sizeof buf, "%.4f", r.accuracy);
  t << "<tr><th>accuracy</th><td></td><td></td><td>" << buf << "</td><td>" << r.total
    << "</td></tr>\n";
  row("macro avg", r.macro);
  row("weighted avg", r.weighted);
  t << "</table>\n<h3>Confusion matrix</h3>\n<table><tr><th>true \\ predicted</th>";
  for (const auto& name : r.class_names) t << "<th>" << html_escape(name) << "</th>";
  t << "</tr>\n";
  for (size_t i = 0; i < r.confusion.size(); ++i) {
    t << "<tr><th>" << html_escape(r.class_names[i]) << "</th>";
    for (size_t j = 0; j < r.confusion[i].size(); ++j)
      t << "<td class='" << (i == j ? "hit" : "miss") << "'>" << r.confusion[i][j] << "</td>";
    t << "</tr>\n";
  }
  t << "</table>\n";
  return t.str();
}

std::string render_report_html(const std::string& title, const nlohmann::json& config,
                               const std::vector<EpochRecord>& history,
                               const std::vector<LabelledReport>& reports,
                               const std::vector<ExamplePrediction>& examples) {
  const ClassificationReport& report = reports.at(0).report;  // the examples' model
  ChartSeries train_loss{"train", "#1f77b4", {}}, val_loss{"validation", "#2ca02c", {}},
      test_loss{"test", "#d62728", {}};
  ChartSeries train_acc{"train", "#1f77b4", {}}, val_acc{"validation", "#2ca02c", {}},
      test_acc{"test", "#d62728", {}};
  double max_loss = 0;
  for (const auto& e : history) {
    train_loss.values.push_back(e.train_loss);
    val_loss.values.push_back(e.val_loss);
    test_loss.values.push_back(e.test_loss);
    train_acc.values.push_back(e.train_accuracy);
    val_acc.values.push_back(e.val_accuracy);
    test_acc.values.push_back(e.test_accuracy);
    max_loss = std::max({max_loss, e.train_loss, e.val_loss, e.test_loss});
  }
  std::ostringstream html;
  html
      << "<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>" << html_escape(title)
      << "</title>\n<style>body{font-family:sans-serif;margin:2em;max-width:1100px}"
         "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 10px;"
         "text-align:right}td.hit{background:#e6f4e6}td.miss{background:#fbe9e9}"
         ".grid{display:flex;flex-wrap:wrap;gap:8px}.ex{width:130px;font-size:11px;text-align:"
         "center;"
         "border:3px solid #8c8;padding:2px}.ex.wrong{border-color:#d33}.ex img{width:120px;"
         "height:120px;image-rendering:pixelated}pre{background:#f6f6f6;padding:1em;overflow:auto}"
         "</style></head><body>\n<h1>"
      << html_escape(title) << "</h1>\n<h2>Curves</h2>\n"
      << svg_line_chart("loss", {train_loss, val_loss, test_loss}, 0, max_loss * 1.05)
      << svg_line_chart("accuracy", {train_acc, val_acc, test_acc}, 0, 1);
  for (const auto& r : reports)
    html << "<h2>Test set, " << html_escape(r.label) << "</h2>\n" << report_table(r.report);
  html << "<h2>Test images, " << html_escape(reports[0].label)
       << "</h2>\n<p>Green: right; red: wrong.</p>\n"
       << "<div class='grid'>\n";
  for (const auto& e : examples) {
    const bool right = e.truth == e.predicted;
    char prob[32];
    std::snprintf(prob, sizeof prob, "%.3f", e.probability);
    html << "<div class='ex" << (right ? "" : " wrong") << "' title='" << html_escape(e.file)
         << "'><img src='" << png_data_uri(e) << "'><br>predicted "
         << html_escape(report.class_names[e.predicted]) << " (" << prob << ")<br>true "
         << html_escape(report.class_names[e.truth]) << "</div>\n";
  }
  html << "</div>\n<h2>Configuration</h2>\n<pre>" << html_escape(config.dump(2))
       << "</pre>\n</body></html>\n";
  return html.str();
}

}  // namespace forge::train
