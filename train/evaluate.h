// evaluate.h: running a model over labelled images without gradients: mean loss, the
// classification report, and (optionally) example predictions for report.html.
#pragma once
#include <functional>
#include <vector>

#include "models/model.h"
#include "train/metrics.h"
#include "train/report_html.h"
#include "train/run_data.h"

namespace forge::train {

struct Evaluation {
  double loss = 0;  // mean cross-entropy (no label smoothing)
  ClassificationReport report;
  std::vector<ExamplePrediction> examples;
};

// Evaluates on `source` (batches of normalised images with labels) in eval mode, restoring the
// model's mode afterwards. `examples` > 0 keeps that many predictions with their images, the
// wrong ones first. `progress`, when set, is told (images done, images) after each batch.
Evaluation evaluate(models::ImageClassifier& model, BatchSource& source,
                    const std::vector<std::string>& class_names, Device device, int examples = 0,
                    const std::function<void(size_t, size_t)>& progress = {});

// Softmax probabilities of logits [rows, classes], on the host.
std::vector<float> softmax_rows(const std::vector<float>& logits, int classes);

}  // namespace forge::train
