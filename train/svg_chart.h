// svg_chart.h: line charts as inline <svg> elements for report.html: axes with ticks, a dot at
// each point (so a one-point series still shows), a legend, and an optional dashed vertical line
// marking one x (the best epoch).
#pragma once
#include <cmath>
#include <string>
#include <vector>

namespace forge::train {

struct ChartSeries {
  std::string name, color;
  std::vector<double> x = {}, y = {};  // points; non-finite ones are left out
  bool markers = true;                 // a dot at each point (off for dense step-level series)
};

struct ChartOptions {
  std::string title = {}, x_label = {};
  double y_min = NAN, y_max = NAN;  // NaN: from the data
  bool integer_x = false;           // ticks at whole numbers only (epochs)
  double highlight_x = NAN;         // NaN: no marker line
  std::string highlight_label = {};
  int width = 440, height = 260;
};

std::string svg_line_chart(const ChartOptions& options, const std::vector<ChartSeries>& series);

// Tick positions covering [lo, hi]: multiples of 1, 2 or 5 x 10^k, about `target` of them
// (whole numbers only when `integers`).
std::vector<double> axis_ticks(double lo, double hi, int target, bool integers);

}  // namespace forge::train
