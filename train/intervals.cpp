// intervals.cpp: Wilson and Clopper-Pearson intervals (see intervals.h). The quantiles are
// found by bisection of the distribution functions (monotone in x), to double precision.
#include "train/intervals.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace forge::train {
namespace {

void check(int64_t successes, int64_t trials, double confidence) {
  if (trials <= 0 || successes < 0 || successes > trials)
    throw std::invalid_argument("interval: " + std::to_string(successes) + " successes in " +
                                std::to_string(trials) + " trials");
  if (!(confidence > 0 && confidence < 1))
    throw std::invalid_argument("interval: confidence " + std::to_string(confidence) +
                                " is outside (0, 1)");
}

// The x in [0, 1] where the increasing function cdf reaches p.
template <class F>
double bisect(F cdf, double p) {
  double lo = 0, hi = 1;
  for (int i = 0; i < 200 && hi - lo > 1e-15; ++i) {
    const double mid = 0.5 * (lo + hi);
    (cdf(mid) < p ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

// The standard normal quantile at p in (0.5, 1): Phi(z) = 1 - erfc(z / sqrt 2) / 2.
double normal_quantile(double p) {
  double lo = 0, hi = 40;
  for (int i = 0; i < 200; ++i) {
    const double mid = 0.5 * (lo + hi);
    (1.0 - 0.5 * std::erfc(mid / std::sqrt(2.0)) < p ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

// Lentz's continued fraction for I_x(a, b), valid for x < (a + 1) / (a + b + 2).
double beta_continued_fraction(double a, double b, double x) {
  const double tiny = 1e-300;
  double c = 1, d = 1 - (a + b) * x / (a + 1);
  if (std::abs(d) < tiny) d = tiny;
  d = 1 / d;
  double h = d;
  for (int m = 1; m <= 10000; ++m) {
    const double m2 = 2.0 * m;
    double aa = m * (b - m) * x / ((a + m2 - 1) * (a + m2));
    d = 1 + aa * d;
    d = std::abs(d) < tiny ? 1 / tiny : 1 / d;
    c = 1 + aa / c;
    if (std::abs(c) < tiny) c = tiny;
    h *= d * c;
    aa = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1));
    d = 1 + aa * d;
    d = std::abs(d) < tiny ? 1 / tiny : 1 / d;
    c = 1 + aa / c;
    if (std::abs(c) < tiny) c = tiny;
    const double step = d * c;
    h *= step;
    if (std::abs(step - 1) < 1e-15) break;
  }
  return h;
}

}  // namespace

double regularized_incomplete_beta(double a, double b, double x) {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const double log_front =
      std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) + b * std::log1p(-x);
  if (x < (a + 1) / (a + b + 2)) return std::exp(log_front) * beta_continued_fraction(a, b, x) / a;
  return 1 - std::exp(log_front) * beta_continued_fraction(b, a, 1 - x) / b;
}

Interval wilson_interval(int64_t successes, int64_t trials, double confidence) {
  check(successes, trials, confidence);
  const double n = double(trials), p = double(successes) / n;
  const double z = normal_quantile(1 - (1 - confidence) / 2), z2 = z * z;
  const double centre = (p + z2 / (2 * n)) / (1 + z2 / n);
  const double half = z / (1 + z2 / n) * std::sqrt(p * (1 - p) / n + z2 / (4 * n * n));
  return {std::max(0.0, centre - half), std::min(1.0, centre + half)};
}

Interval clopper_pearson_interval(int64_t successes, int64_t trials, double confidence) {
  check(successes, trials, confidence);
  const double k = double(successes), n = double(trials), alpha = 1 - confidence;
  Interval r{0, 1};
  if (successes > 0)
    r.low =
        bisect([&](double x) { return regularized_incomplete_beta(k, n - k + 1, x); }, alpha / 2);
  if (successes < trials)
    r.high = bisect([&](double x) { return regularized_incomplete_beta(k + 1, n - k, x); },
                    1 - alpha / 2);
  return r;
}

std::string format_intervals(int64_t successes, int64_t trials) {
  const Interval w = wilson_interval(successes, trials),
                 cp = clopper_pearson_interval(successes, trials);
  char line[128];
  std::snprintf(line, sizeof line, "95%% interval: Wilson %.4f-%.4f, Clopper-Pearson %.4f-%.4f",
                w.low, w.high, cp.low, cp.high);
  return line;
}

}  // namespace forge::train
