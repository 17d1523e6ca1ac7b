// example_prediction.h: one test image as report.html shows it: the picture, the true and the
// predicted class, and (for a few) the map of what the model looked at.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "train/saliency.h"

namespace forge::train {

struct ExamplePrediction {
  std::string file;          // relative to the data folder
  std::vector<uint8_t> rgb;  // interleaved RGB, width x height
  std::vector<float> input;  // the normalised image the model saw, [3, height, width]
  int width = 0, height = 0;
  int truth = 0, predicted = 0;
  float probability = 0;  // of the predicted class
  SaliencyMap saliency;   // empty (width 0) when not computed
};

}  // namespace forge::train
