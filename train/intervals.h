// intervals.h: confidence intervals for an accuracy, a proportion of k successes in n trials
// (Brown, Cai and DasGupta 2001 compare them):
//
//   Wilson score     (p + z^2/2n  +-  z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n),  p = k/n,
//                    z the standard normal quantile at 1 - (1 - confidence)/2 (1.96 for 95%)
//   Clopper-Pearson  the "exact" interval from the binomial tails:
//                    [B^-1(a/2; k, n-k+1), B^-1(1-a/2; k+1, n-k)], a = 1 - confidence, with
//                    B^-1 the Beta quantile; 0 at k = 0 and 1 at k = n. Never narrower than
//                    its nominal coverage (conservative).
// Near 100% accuracy, where a normal-approximation interval would reach past 1, both stay
// inside [0, 1].
#pragma once
#include <cstdint>
#include <string>

namespace forge::train {

struct Interval {
  double low = 0, high = 0;
};

// Both throw std::invalid_argument unless 0 <= successes <= trials, trials > 0 and
// 0 < confidence < 1.
Interval wilson_interval(int64_t successes, int64_t trials, double confidence = 0.95);
Interval clopper_pearson_interval(int64_t successes, int64_t trials, double confidence = 0.95);

// "95% interval: Wilson 0.9849-0.9941, Clopper-Pearson 0.9848-0.9945" for k of n.
std::string format_intervals(int64_t successes, int64_t trials);

// The regularised incomplete beta function I_x(a, b) (a, b > 0, 0 <= x <= 1): the Beta(a, b)
// distribution function, by its continued fraction (Numerical Recipes' betacf).
double regularized_incomplete_beta(double a, double b, double x);

}  // namespace forge::train
