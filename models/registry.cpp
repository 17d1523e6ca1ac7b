// registry.cpp: the named model presets.
//
//   vit, hrnet, cnn           the architectures of the seed paper's comparison (see each header)
//   vit-micro, hrnet-micro, cnn-micro
//                             the same code at toy widths, for tests and smoke runs: seconds per
//                             step on one CPU core
#include <functional>
#include <map>
#include <stdexcept>

#include "models/cnn.h"
#include "models/hrnet.h"
#include "models/model.h"
#include "models/vit.h"

namespace forge::models {

// The preset's configuration with the spec's dropout rate, when one is given.
template <typename Config>
static Config with_dropout(Config c, const ModelSpec& spec) {
  if (spec.dropout >= 0.f) c.dropout = spec.dropout;
  return c;
}

// A ViT configuration with the spec's dropout and drop-path rates.
static VitConfig vit_config(VitConfig c, const ModelSpec& spec) {
  c.drop_path = spec.drop_path;
  return with_dropout(c, spec);
}

using Factory =
    std::function<std::unique_ptr<ImageClassifier>(const ModelSpec&, Generator&, Device)>;

static const std::map<std::string, Factory>& factories() {
  static const std::map<std::string, Factory> table = {
      {"vit",
       [](const ModelSpec& s, Generator& g, Device d) {
         return std::make_unique<VisionTransformer>(s, vit_config(VitConfig{}, s), g, d);
       }},
      {"vit-micro",
       [](const ModelSpec& s, Generator& g, Device d) {
         VitConfig c{.patch = 8, .dim = 32, .depth = 2, .heads = 2, .mlp_dim = 64};
         return std::make_unique<VisionTransformer>(s, vit_config(c, s), g, d);
       }},
      {"hrnet",
       [](const ModelSpec& s, Generator& g, Device d) {
         return std::make_unique<HighResolutionNet>(s, with_dropout(HrnetConfig{}, s), g, d);
       }},
      {"hrnet-micro",
       [](const ModelSpec& s, Generator& g, Device d) {
         HrnetConfig c{.stem_channels = 8,
                       .bottleneck_planes = 4,
                       .branch_channels = {4, 8, 12, 16},
                       .blocks_per_branch = 1};
         return std::make_unique<HighResolutionNet>(s, with_dropout(c, s), g, d);
       }},
      {"cnn",
       [](const ModelSpec& s, Generator& g, Device d) {
         return std::make_unique<BaselineCnn>(s, with_dropout(CnnConfig{}, s), g, d);
       }},
      {"cnn-micro",
       [](const ModelSpec& s, Generator& g, Device d) {
         return std::make_unique<BaselineCnn>(s, with_dropout(CnnConfig{.channels = {8, 16}}, s), g,
                                              d);
       }},
  };
  return table;
}

std::vector<std::string> model_presets() {
  std::vector<std::string> names;
  for (const auto& [name, f] : factories()) names.push_back(name);
  return names;
}

std::unique_ptr<ImageClassifier> create_model(const ModelSpec& spec, Generator& gen,
                                              Device device) {
  auto it = factories().find(spec.preset);
  if (it == factories().end()) {
    std::string known;
    for (const auto& name : model_presets()) known += (known.empty() ? "" : ", ") + name;
    throw std::invalid_argument("unknown model '" + spec.preset + "' (known: " + known + ")");
  }
  if (spec.num_classes < 2)
    throw std::invalid_argument("a classifier needs at least 2 classes, got " +
                                std::to_string(spec.num_classes));
  if (spec.dropout >= 1.f)
    throw std::invalid_argument("dropout " + std::to_string(spec.dropout) + " must be below 1");
  if (!(spec.drop_path >= 0.f && spec.drop_path < 1.f))
    throw std::invalid_argument("drop path " + std::to_string(spec.drop_path) +
                                " is outside [0, 1)");
  if (spec.drop_path > 0.f && spec.preset.rfind("vit", 0) != 0)
    throw std::invalid_argument("drop path applies to the ViT presets only, not '" + spec.preset +
                                "'");
  return it->second(spec, gen, device);
}

}  // namespace forge::models
