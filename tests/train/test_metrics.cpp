// test_metrics.cpp: the classification report against confusion matrices worked out by hand,
// including a class that is never predicted (no division by zero).
#include <doctest/doctest.h>

#include "train/metrics.h"

using namespace forge::train;

TEST_CASE("metrics: two classes, against hand arithmetic") {
  // truth anime: 8 right, 2 called selfie; truth selfie: 1 called anime, 9 right
  ConfusionMatrix cm(2);
  for (int i = 0; i < 8; ++i) cm.add(0, 0);
  for (int i = 0; i < 2; ++i) cm.add(0, 1);
  cm.add(1, 0);
  for (int i = 0; i < 9; ++i) cm.add(1, 1);
  ClassificationReport r = cm.report({"anime", "selfie"});
  CHECK(r.total == 20);
  CHECK(r.accuracy == doctest::Approx(17.0 / 20));
  CHECK(r.per_class[0].precision == doctest::Approx(8.0 / 9));  // 8 of 9 predicted anime
  CHECK(r.per_class[0].recall == doctest::Approx(8.0 / 10));    // 8 of 10 true anime
  CHECK(r.per_class[1].precision == doctest::Approx(9.0 / 11));
  CHECK(r.per_class[1].recall == doctest::Approx(9.0 / 10));
  const double f0 = 2 * (8.0 / 9) * 0.8 / (8.0 / 9 + 0.8),
               f1 = 2 * (9.0 / 11) * 0.9 / (9.0 / 11 + 0.9);
  CHECK(r.per_class[0].f1 == doctest::Approx(f0));
  CHECK(r.per_class[1].f1 == doctest::Approx(f1));
  CHECK(r.macro.f1 == doctest::Approx((f0 + f1) / 2));
  CHECK(r.weighted.recall == doctest::Approx(0.5 * 0.8 + 0.5 * 0.9));
  CHECK(r.confusion[0][1] == 2);
  const std::string text = format_report(r);
  CHECK(text.find("anime") != std::string::npos);
  CHECK(text.find("0.8500") != std::string::npos);  // accuracy
  nlohmann::json j = report_json(r);
  // scikit-learn's classification_report(output_dict=True) keys, exactly.
  CHECK(j["selfie"]["support"] == 10);
  CHECK(j["selfie"]["f1-score"] == doctest::Approx(f1));
  CHECK(j["anime"]["precision"] == doctest::Approx(8.0 / 9));
  CHECK(j["accuracy"] == doctest::Approx(0.85));
  CHECK(j["macro avg"]["f1-score"] == doctest::Approx((f0 + f1) / 2));
  CHECK(j["weighted avg"]["recall"] == doctest::Approx(0.85));
  CHECK(j["macro avg"]["support"] == 20);
  CHECK(j["class_names"] == nlohmann::json({"anime", "selfie"}));
  CHECK(j["confusion_matrix"][1][0] == 1);
  for (const char* old_key : {"classes", "macro_avg", "weighted_avg", "total"})
    CHECK_MESSAGE(!j.contains(old_key), old_key);
}

TEST_CASE("metrics: a class that is never predicted scores 0, not NaN") {
  // three classes; class 2 has support 3 but is never predicted
  ConfusionMatrix cm(3);
  cm.add(0, 0);
  cm.add(0, 0);
  cm.add(1, 1);
  cm.add(2, 0);
  cm.add(2, 1);
  cm.add(2, 1);
  ClassificationReport r = cm.report({"a", "b", "c"});
  CHECK(r.per_class[2].precision == 0.0);
  CHECK(r.per_class[2].recall == 0.0);
  CHECK(r.per_class[2].f1 == 0.0);
  CHECK(r.per_class[2].support == 3);
  CHECK(r.per_class[0].precision == doctest::Approx(2.0 / 3));
  CHECK(r.per_class[1].precision == doctest::Approx(1.0 / 3));
  CHECK(r.accuracy == doctest::Approx(3.0 / 6));
  CHECK(r.macro.precision == doctest::Approx((2.0 / 3 + 1.0 / 3 + 0) / 3));
  // An empty matrix: every figure 0.
  ClassificationReport empty = ConfusionMatrix(2).report({"x", "y"});
  CHECK(empty.accuracy == 0.0);
  CHECK(empty.weighted.f1 == 0.0);
  CHECK_THROWS_AS(cm.add(3, 0), std::out_of_range);
  CHECK_THROWS_AS(cm.report({"a"}), std::invalid_argument);
}
