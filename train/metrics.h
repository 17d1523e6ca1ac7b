// metrics.h: the confusion matrix and the classification report derived from it (per-class
// precision, recall, F1 and support; accuracy; macro and weighted averages), as sklearn prints it.
//
//   precision_c = TP_c / (TP_c + FP_c)   (predicted c, and right)
//   recall_c    = TP_c / (TP_c + FN_c)   (truly c, and found)
//   F1_c        = 2 P R / (P + R)
// A ratio whose denominator is 0 (a class never predicted, or absent) is reported as 0, the
// sklearn convention, never a division by zero.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace forge::train {

struct ClassScores {
  double precision = 0, recall = 0, f1 = 0;
  int64_t support = 0;
};

struct ClassificationReport {
  std::vector<std::string> class_names;
  std::vector<ClassScores> per_class;
  ClassScores macro, weighted;
  double accuracy = 0;
  int64_t total = 0;
  std::vector<std::vector<int64_t>> confusion;  // confusion[true][predicted]
};

class ConfusionMatrix {
 public:
  explicit ConfusionMatrix(int num_classes);
  void add(int truth, int predicted);
  int64_t at(int truth, int predicted) const { return counts_[truth][predicted]; }
  int64_t total() const;
  ClassificationReport report(const std::vector<std::string>& class_names) const;

 private:
  std::vector<std::vector<int64_t>> counts_;
};

// The right predictions: the confusion matrix's diagonal.
int64_t correct_count(const ClassificationReport& r);
// The report as aligned text (the sklearn layout), the accuracy's 95% intervals
// (train/intervals.h), then the confusion matrix.
std::string format_report(const ClassificationReport& r);
// The report as scikit-learn's classification_report(output_dict=True) has it: one object per
// class name {"precision", "recall", "f1-score", "support"}, "accuracy", "macro avg",
// "weighted avg"; plus "class_names" (the classes in label order), "confusion_matrix"
// ([true][predicted]) and "accuracy_interval_95" ({"wilson": [low, high], "clopper_pearson": ...}).
// A class named like one of these keys would be overwritten by it, as in scikit-learn;
// "class_names" lists it still.
nlohmann::json report_json(const ClassificationReport& r);

}  // namespace forge::train
