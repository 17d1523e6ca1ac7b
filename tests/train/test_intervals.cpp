// test_intervals.cpp: the accuracy intervals (train/intervals.h) against values from SciPy 1.17
// (scipy.stats.beta.ppf for Clopper-Pearson, the Wilson formula with norm.ppf(0.975),
// scipy.special.betainc) and closed forms at k = 0 and k = n.
#include <doctest/doctest.h>

#include <cmath>

#include "train/intervals.h"
#include "train/metrics.h"

using namespace forge::train;

TEST_CASE("intervals: Wilson and Clopper-Pearson match SciPy's values") {
  struct Known {
    int64_t k, n;
    double wilson_low, wilson_high, cp_low, cp_high;
  };
  const Known known[] = {
      {1779, 1796, 0.984893281019, 0.994081834464, 0.984887979153, 0.994476616719},
      {1796, 1796, 0.997865668222, 1.0, 0.997948166105, 1.0},
      {7, 20, 0.181191824101, 0.567145723315, 0.153909204785, 0.592188534533},
      {0, 10, 0.0, 0.277532799863, 0.0, 0.308497107819},
      {904, 912, 0.982786714583, 0.995548554442, 0.982789304200, 0.996205514103},
      {1, 3, 0.061491944720, 0.792340399198, 0.008403758660, 0.905700675950},
  };
  for (const Known& v : known) {
    CAPTURE(v.k);
    CAPTURE(v.n);
    const Interval w = wilson_interval(v.k, v.n), cp = clopper_pearson_interval(v.k, v.n);
    CHECK(w.low == doctest::Approx(v.wilson_low).epsilon(1e-9).scale(1));
    CHECK(w.high == doctest::Approx(v.wilson_high).epsilon(1e-9).scale(1));
    CHECK(cp.low == doctest::Approx(v.cp_low).epsilon(1e-9).scale(1));
    CHECK(cp.high == doctest::Approx(v.cp_high).epsilon(1e-9).scale(1));
  }
  // Closed forms at the ends: Clopper-Pearson [0, 1 - (a/2)^(1/n)] at k = 0, its mirror at n.
  CHECK(clopper_pearson_interval(0, 50).high == doctest::Approx(1 - std::pow(0.025, 1.0 / 50)));
  CHECK(clopper_pearson_interval(50, 50).low == doctest::Approx(std::pow(0.025, 1.0 / 50)));
  // A wider confidence gives a wider interval.
  CHECK(wilson_interval(7, 20, 0.99).low < wilson_interval(7, 20).low);
  CHECK(regularized_incomplete_beta(2.5, 3.5, 0.4) == doctest::Approx(0.486904191526118));
  CHECK(regularized_incomplete_beta(100, 3, 0.97) == doctest::Approx(0.406336180222592));
}

TEST_CASE("intervals: bad counts are refused; reports print and carry them") {
  CHECK_THROWS_AS(wilson_interval(5, 4), std::invalid_argument);
  CHECK_THROWS_AS(clopper_pearson_interval(0, 0), std::invalid_argument);
  CHECK_THROWS_AS(wilson_interval(1, 4, 1.0), std::invalid_argument);
  ConfusionMatrix m(2);
  for (int i = 0; i < 19; ++i) m.add(i % 2, i % 2);
  m.add(0, 1);
  const ClassificationReport r = m.report({"a", "b"});
  CHECK(correct_count(r) == 19);
  const std::string text = format_report(r);
  CHECK(text.find("19 of 20 right, 95% interval: Wilson") != std::string::npos);
  const nlohmann::json j = report_json(r);
  CHECK(j["accuracy_interval_95"]["wilson"][0] == doctest::Approx(wilson_interval(19, 20).low));
  CHECK(j["accuracy_interval_95"]["clopper_pearson"][1] ==
        doctest::Approx(clopper_pearson_interval(19, 20).high));
}
