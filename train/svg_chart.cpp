// svg_chart.cpp: the SVG of a line chart (see svg_chart.h).
#include "train/svg_chart.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

#include "train/report_html.h"

namespace forge::train {

std::vector<double> axis_ticks(double lo, double hi, int target, bool integers) {
  const double raw = (hi - lo) / std::max(1, target);
  // The smallest of 1, 2, 5 x 10^k that is at least raw.
  const double decade = std::pow(10.0, std::floor(std::log10(raw > 0 ? raw : 1)));
  double step = decade;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (decade * m >= raw) {
      step = decade * m;
      break;
    }
  if (integers) step = std::max(1.0, std::round(step));
  std::vector<double> ticks;
  for (double t = std::ceil(lo / step - 1e-9) * step; t <= hi + step * 1e-9; t += step)
    ticks.push_back(std::abs(t) < step * 1e-9 ? 0.0 : t);
  return ticks;
}

static std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

std::string svg_line_chart(const ChartOptions& o, const std::vector<ChartSeries>& series) {
  const double w = o.width, h = o.height, left = 55, right = 120, top = 30, bottom = 40;
  double x_lo = INFINITY, x_hi = -INFINITY, y_lo = INFINITY, y_hi = -INFINITY;
  for (const auto& s : series)
    for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i)
      if (std::isfinite(s.x[i]) && std::isfinite(s.y[i])) {
        x_lo = std::min(x_lo, s.x[i]);
        x_hi = std::max(x_hi, s.x[i]);
        y_lo = std::min(y_lo, s.y[i]);
        y_hi = std::max(y_hi, s.y[i]);
      }
  const bool empty = !std::isfinite(x_lo);
  if (empty) x_lo = 0, x_hi = 1, y_lo = 0, y_hi = 1;
  if (std::isfinite(o.y_min)) y_lo = o.y_min;
  if (std::isfinite(o.y_max)) y_hi = o.y_max;
  if (o.integer_x) x_lo = std::min(std::floor(x_lo), 1.0);  // from epoch 1, or 0 if before
  if (x_hi - x_lo < 1e-12) x_lo -= 0.5, x_hi += 0.5;        // one point: in the middle
  if (y_hi - y_lo < 1e-12) y_lo -= 0.5, y_hi += 0.5;
  auto x_at = [&](double v) { return left + (w - left - right) * (v - x_lo) / (x_hi - x_lo); };
  auto y_at = [&](double v) { return top + (h - top - bottom) * (1 - (v - y_lo) / (y_hi - y_lo)); };

  std::ostringstream svg;
  svg << "<svg xmlns='http://www.w3.org/2000/svg' class='chart' width='" << w << "' height='" << h
      << "' font-family='sans-serif' font-size='11'>\n<text x='" << left
      << "' y='18' font-size='13' font-weight='bold'>" << html_escape(o.title) << "</text>\n";
  for (double v : axis_ticks(y_lo, y_hi, 4, false)) {
    const double y = y_at(v);
    svg << "<line x1='" << left << "' x2='" << w - right << "' y1='" << y << "' y2='" << y
        << "' stroke='#e4e4e4'/><text x='" << left - 5 << "' y='" << y + 4 << "' text-anchor='end'>"
        << number(v) << "</text>\n";
  }
  const double axis_y = h - bottom;
  svg << "<line x1='" << left << "' x2='" << w - right << "' y1='" << axis_y << "' y2='" << axis_y
      << "' stroke='#888'/>\n";
  for (double v : axis_ticks(x_lo, x_hi, 8, o.integer_x)) {
    const double x = x_at(v);
    svg << "<line x1='" << x << "' x2='" << x << "' y1='" << axis_y << "' y2='" << axis_y + 4
        << "' stroke='#888'/><text x='" << x << "' y='" << axis_y + 15 << "' text-anchor='middle'>"
        << number(v) << "</text>\n";
  }
  svg << "<text x='" << (left + w - right) / 2 << "' y='" << h - 6 << "' text-anchor='middle'>"
      << html_escape(o.x_label) << "</text>\n";
  if (empty)
    svg << "<text x='" << (left + w - right) / 2 << "' y='" << h / 2
        << "' text-anchor='middle' fill='#888'>no data yet</text>\n";
  if (std::isfinite(o.highlight_x)) {
    const double x = x_at(o.highlight_x);
    svg << "<line class='highlight' x1='" << x << "' x2='" << x << "' y1='" << top << "' y2='"
        << axis_y << "' stroke='#555' stroke-dasharray='4,3'/><text x='" << x + 3 << "' y='"
        << top + 10 << "' fill='#555'>" << html_escape(o.highlight_label) << "</text>\n";
  }
  for (size_t s = 0; s < series.size(); ++s) {
    const ChartSeries& c = series[s];
    std::ostringstream points, dots;
    for (size_t i = 0; i < std::min(c.x.size(), c.y.size()); ++i) {
      if (!std::isfinite(c.x[i]) || !std::isfinite(c.y[i])) continue;
      const double x = x_at(c.x[i]), y = y_at(c.y[i]);
      points << x << "," << y << " ";
      if (c.markers)
        dots << "<circle class='point' cx='" << x << "' cy='" << y << "' r='3' fill='" << c.color
             << "'><title>" << html_escape(c.name) << ": " << number(c.x[i]) << ", "
             << number(c.y[i]) << "</title></circle>";
    }
    svg << "<polyline fill='none' stroke-width='" << (c.markers ? 2 : 1) << "' stroke='" << c.color
        << "' points='" << points.str() << "'/>\n"
        << dots.str() << "\n<rect x='" << w - right + 8 << "' y='" << top + 5 + 16 * s
        << "' width='10' height='10' fill='" << c.color << "'/><text x='" << w - right + 22
        << "' y='" << top + 14 + 16 * s << "'>" << html_escape(c.name) << "</text>\n";
  }
  svg << "</svg>\n";
  return svg.str();
}

}  // namespace forge::train
