// model.h: what every image classifier is, and the registry of named presets.
//
// A model maps images [batch, 3, size, size] (normalised floats) to logits [batch, classes].
// Presets are looked up by name ("vit", "hrnet", "cnn", and "-micro" variants for tests); a
// checkpoint records its preset and image size, so eval and predict rebuild the same model.
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/nn/module.h"

namespace forge::models {

struct ModelSpec {
  std::string preset = "vit";
  int num_classes = 2;
  int image_size = 120;
  float dropout = -1.f;  // < 0: the preset's own rate
  // Stochastic depth of the last residual block (the ViT's blocks, HRNet's bottleneck and basic
  // blocks; the CNN has none: drop_path_refusal). Earlier blocks' rates rise linearly from 0 to
  // it, as timm's. It acts in training only; the architecture records it all the same.
  float drop_path = 0.f;
  // The ViT's embedding of the image: "patch" (the patchify convolution) or "conv" (a stack of
  // stride-2 3x3 convolutions, models/conv_stem.h); the other families have their own stems and
  // take "patch" only (stem_refusal).
  std::string stem = "patch";
};

// What a model offers for pictures of what it looks at (train/saliency.h), inference only.
enum class SaliencyKind {
  attention_rollout,  // attention_probabilities(): token attention, class token first
  grad_cam,           // feature_map() and classify_features(): a spatial map, then the head
};

// Each block's attention probabilities [b, heads, tokens, tokens] (token 0 the class token, then
// a grid x grid of patches, row-major) and the square the patch grid covers: the image, centred
// and zero-padded to padded_size pixels a side.
struct TokenAttention {
  std::vector<Tensor> layers = {};
  int grid = 0, padded_size = 0;
};

class ImageClassifier : public nn::Module {
 public:
  explicit ImageClassifier(ModelSpec spec) : spec_(std::move(spec)) {}
  const ModelSpec& spec() const { return spec_; }

  // Every value that defines the model, resolved (the preset's dropout, not -1), as create_model
  // built it: {"family": "vit" | "hrnet" | "cnn", "image_size", "in_channels", "num_classes",
  // the family's widths and depths (the fields of its Config), "dropout", the norm and its eps,
  // the activation; the ViT adds "stem", "padded_size" and "tokens", and with the conv stem
  // "stem_channels"}. Recorded in checkpoints, so that
  // other programs (bench/pytorch_models.py's twins) can build the model without forge's presets.
  const nlohmann::ordered_json& architecture() const { return architecture_; }
  void set_architecture(nlohmann::ordered_json architecture) {
    architecture_ = std::move(architecture);
  }

  virtual SaliencyKind saliency_kind() const { return SaliencyKind::grad_cam; }
  // attention_rollout models: the attention of one forward pass (eval mode expected).
  virtual TokenAttention attention_probabilities(const Tensor& images);
  // grad_cam models: forward(x) == classify_features(feature_map(x)), the feature map
  // [b, channels, h, w] covering the whole image.
  virtual Tensor feature_map(const Tensor& images);
  virtual Tensor classify_features(const Tensor& features);

 private:
  ModelSpec spec_;
  nlohmann::ordered_json architecture_;
};

// Builds a preset with weights drawn from `gen`; throws std::invalid_argument naming the preset
// and listing the known ones when the name is unknown.
std::unique_ptr<ImageClassifier> create_model(const ModelSpec& spec, Generator& gen, Device device);
std::vector<std::string> model_presets();
// Why `preset` takes no drop path (ModelSpec::drop_path > 0), or "" where it does (the vit and
// hrnet presets; an unknown name too, which create_model refuses for its own reason).
std::string drop_path_refusal(const std::string& preset);
// The stems a ViT takes ("patch", "conv"), and why `preset` takes no conv stem, or "" where it
// does (the vit presets; an unknown name too, which create_model refuses for its own reason).
std::vector<std::string> model_stems();
std::string stem_refusal(const std::string& preset);

}  // namespace forge::models
