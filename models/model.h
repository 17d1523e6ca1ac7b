// model.h: what every image classifier is, and the registry of named presets.
//
// A model maps images [batch, 3, size, size] (normalised floats) to logits [batch, classes].
// Presets are looked up by name ("vit", "hrnet", "cnn", and "-micro" variants for tests); a
// checkpoint records its preset and image size, so eval and predict rebuild the same model.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "engine/nn/module.h"

namespace forge::models {

struct ModelSpec {
  std::string preset = "vit";
  int num_classes = 2;
  int image_size = 120;
  float dropout = -1.f;  // < 0: the preset's own rate
  // Stochastic depth of the last block (the ViT presets only; earlier blocks' rates rise linearly
  // from 0 to it, as timm's). It acts in training only, so a saved model need not record it.
  float drop_path = 0.f;
};

class ImageClassifier : public nn::Module {
 public:
  explicit ImageClassifier(ModelSpec spec) : spec_(std::move(spec)) {}
  const ModelSpec& spec() const { return spec_; }

 private:
  ModelSpec spec_;
};

// Builds a preset with weights drawn from `gen`; throws std::invalid_argument naming the preset
// and listing the known ones when the name is unknown.
std::unique_ptr<ImageClassifier> create_model(const ModelSpec& spec, Generator& gen, Device device);
std::vector<std::string> model_presets();

}  // namespace forge::models
