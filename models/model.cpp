// model.cpp: ImageClassifier's defaults for the saliency interface: a model that offers neither
// attention nor a feature map says so, naming its preset.
#include "models/model.h"

#include <stdexcept>

namespace forge::models {

static std::logic_error not_offered(const ModelSpec& spec, const char* what) {
  return std::logic_error("model '" + spec.preset + "' offers no " + what);
}

TokenAttention ImageClassifier::attention_probabilities(const Tensor&) {
  throw not_offered(spec_, "attention probabilities");
}
Tensor ImageClassifier::feature_map(const Tensor&) {
  throw not_offered(spec_, "feature map");
}
Tensor ImageClassifier::classify_features(const Tensor&) {
  throw not_offered(spec_, "feature-map head");
}

}  // namespace forge::models
