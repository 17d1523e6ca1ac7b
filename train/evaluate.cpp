// evaluate.cpp: the evaluation pass (see evaluate.h).
#include "train/evaluate.h"

#include <algorithm>
#include <cmath>

#include "engine/autograd.h"
#include "engine/ops.h"

namespace forge::train {

Tensor batch_tensor(const Batch& b, Device device) {
  return Tensor::from_vector(b.images, {b.n, b.c, b.h, b.w}, device);
}

static int argmax_row(const float* row, int classes) {
  return static_cast<int>(std::max_element(row, row + classes) - row);
}

std::vector<float> softmax_rows(const std::vector<float>& logits, int classes) {
  std::vector<float> p(logits.size());
  for (size_t r = 0; r * classes < logits.size(); ++r) {
    const float* x = &logits[r * classes];
    const float m = *std::max_element(x, x + classes);
    double z = 0;
    for (int c = 0; c < classes; ++c) z += std::exp(double(x[c] - m));
    for (int c = 0; c < classes; ++c) p[r * classes + c] = float(std::exp(double(x[c] - m)) / z);
  }
  return p;
}

// Undoes the normalisation of image i of a batch: back to interleaved 8-bit RGB.
static ExamplePrediction example_from(const Batch& b, int i, const BatchSource& source) {
  ExamplePrediction e;
  e.width = b.w;
  e.height = b.h;
  e.rgb.resize(size_t(b.w) * b.h * 3);
  const std::vector<float> mean = source.mean(), std = source.std();
  const size_t plane = size_t(b.h) * b.w;
  const float* input = &b.images[size_t(i) * b.c * plane];
  e.input.assign(input, input + size_t(b.c) * plane);
  for (int c = 0; c < 3; ++c)
    for (size_t p = 0; p < plane; ++p) {
      const float v = b.images[(size_t(i) * b.c + c) * plane + p] * std[c] + mean[c];
      e.rgb[p * 3 + c] = static_cast<uint8_t>(std::clamp(v * 255.f + 0.5f, 0.f, 255.f));
    }
  e.file = source.file(b.indices[i]);
  return e;
}

Evaluation evaluate(models::ImageClassifier& model, BatchSource& source,
                    const std::vector<std::string>& class_names, Device device, int examples,
                    const std::function<void(size_t, size_t)>& progress) {
  const bool was_training = model.training();
  model.eval();
  NoGradGuard no_grad;
  const int classes = static_cast<int>(class_names.size());
  ConfusionMatrix cm(classes);
  double loss_sum = 0;
  size_t seen = 0;
  std::vector<ExamplePrediction> right, wrong;
  source.start_epoch(0);
  Batch b;
  while (source.next(b)) {
    Tensor logits = model.forward(batch_tensor(b, device));
    loss_sum += double(cross_entropy(logits, b.labels).item()) * b.n;
    seen += b.n;
    if (progress) progress(seen, source.size());
    const std::vector<float> p = softmax_rows(logits.to_vector(), classes);
    for (int i = 0; i < b.n; ++i) {
      const int pred = argmax_row(&p[size_t(i) * classes], classes);
      cm.add(b.labels[i], pred);
      auto& bucket = pred == b.labels[i] ? right : wrong;
      if (static_cast<int>(bucket.size()) < examples) {
        ExamplePrediction e = example_from(b, i, source);
        e.truth = b.labels[i];
        e.predicted = pred;
        e.probability = p[size_t(i) * classes + pred];
        bucket.push_back(std::move(e));
      }
    }
  }
  model.train(was_training);
  Evaluation out;
  out.loss = seen ? loss_sum / seen : 0;
  out.report = cm.report(class_names);
  // The wrong ones first (they are what a reader looks for), then right ones up to `examples`.
  out.examples = std::move(wrong);
  for (auto& e : right) {
    if (static_cast<int>(out.examples.size()) >= examples) break;
    out.examples.push_back(std::move(e));
  }
  return out;
}

}  // namespace forge::train
