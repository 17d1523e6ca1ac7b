// registry.cpp: the named model presets.
//
//   vit, hrnet, cnn           the architectures of the seed paper's comparison (see each header)
//   vit-micro, hrnet-micro, cnn-micro
//                             the same code at toy widths, for tests and smoke runs: seconds per
//                             step on one CPU core
#include <algorithm>
#include <functional>
#include <map>
#include <stdexcept>

#include "models/cnn.h"
#include "models/hrnet.h"
#include "models/model.h"
#include "models/vit.h"

namespace forge::models {

// The preset's configuration with the spec's dropout rate, when one is given, its drop-path
// rate where the family has residual blocks (a drop_path field), and its stem (the ViT).
template <typename Config>
static Config with_dropout(Config c, const ModelSpec& spec) {
  if (spec.dropout >= 0.f) c.dropout = spec.dropout;
  if constexpr (requires { c.drop_path; }) c.drop_path = spec.drop_path;
  if constexpr (requires { c.stem; }) c.stem = spec.stem;
  return c;
}

// ImageClassifier::architecture() of each family: its Config, the spec, and the fixed choices
// of its layers (engine/nn/layers.h defaults: LayerNorm eps 1e-6, BatchNorm eps 1e-5, momentum
// 0.1; GELU is the exact erf form).
static nlohmann::ordered_json common(const char* family, const ModelSpec& s) {
  return {{"family", family},
          {"image_size", s.image_size},
          {"in_channels", 3},
          {"num_classes", s.num_classes}};
}

static nlohmann::ordered_json describe(const VitConfig& c, const ModelSpec& s) {
  nlohmann::ordered_json a = common("vit", s);
  const int padded = (s.image_size + c.patch - 1) / c.patch * c.patch;
  a["stem"] = c.stem;
  if (c.stem == "conv") a["stem_channels"] = conv_stem_channels(c.patch, c.dim);
  a["padded_size"] = padded;  // zero padding, centred
  a["patch"] = c.patch;
  a["dim"] = c.dim;
  a["depth"] = c.depth;
  a["heads"] = c.heads;
  a["mlp_dim"] = c.mlp_dim;
  a["tokens"] = 1 + (padded / c.patch) * (padded / c.patch);
  a["dropout"] = c.dropout;
  a["drop_path"] = c.drop_path;
  a["norm"] = "layer_norm";
  a["norm_eps"] = nn::LayerNorm(1, Device::cpu).eps;
  a["activation"] = "gelu_erf";
  return a;
}

static void describe_batch_norm(nlohmann::ordered_json& a) {
  const nn::BatchNorm2d bn(1, Device::cpu);
  a["norm"] = "batch_norm";
  a["norm_eps"] = bn.eps;
  a["norm_momentum"] = bn.momentum;
  a["activation"] = "relu";
}

static nlohmann::ordered_json describe(const HrnetConfig& c, const ModelSpec& s) {
  nlohmann::ordered_json a = common("hrnet", s);
  a["stem_channels"] = c.stem_channels;
  a["bottleneck_planes"] = c.bottleneck_planes;
  a["branch_channels"] = c.branch_channels;
  a["blocks_per_branch"] = c.blocks_per_branch;
  a["dropout"] = c.dropout;
  a["drop_path"] = c.drop_path;
  describe_batch_norm(a);
  return a;
}

static nlohmann::ordered_json describe(const CnnConfig& c, const ModelSpec& s) {
  nlohmann::ordered_json a = common("cnn", s);
  a["channels"] = c.channels;
  a["dropout"] = c.dropout;
  describe_batch_norm(a);
  return a;
}

// A preset: its configuration with the spec's dropout, built and described.
template <typename Model, typename Config>
static std::unique_ptr<ImageClassifier> build(const ModelSpec& s, const Config& preset,
                                              Generator& g, Device d) {
  const Config c = with_dropout(preset, s);
  auto model = std::make_unique<Model>(s, c, g, d);
  model->set_architecture(describe(c, s));
  return model;
}

using Factory =
    std::function<std::unique_ptr<ImageClassifier>(const ModelSpec&, Generator&, Device)>;

static const std::map<std::string, Factory>& factories() {
  static const std::map<std::string, Factory> table = {
      {"vit", [](const ModelSpec& s, Generator& g,
                 Device d) { return build<VisionTransformer>(s, VitConfig{}, g, d); }},
      {"vit-micro",
       [](const ModelSpec& s, Generator& g, Device d) {
         const VitConfig c{.patch = 8, .dim = 32, .depth = 2, .heads = 2, .mlp_dim = 64};
         return build<VisionTransformer>(s, c, g, d);
       }},
      {"hrnet", [](const ModelSpec& s, Generator& g,
                   Device d) { return build<HighResolutionNet>(s, HrnetConfig{}, g, d); }},
      {"hrnet-micro",
       [](const ModelSpec& s, Generator& g, Device d) {
         const HrnetConfig c{.stem_channels = 8,
                             .bottleneck_planes = 4,
                             .branch_channels = {4, 8, 12, 16},
                             .blocks_per_branch = 1};
         return build<HighResolutionNet>(s, c, g, d);
       }},
      {"cnn", [](const ModelSpec& s, Generator& g,
                 Device d) { return build<BaselineCnn>(s, CnnConfig{}, g, d); }},
      {"cnn-micro",
       [](const ModelSpec& s, Generator& g, Device d) {
         return build<BaselineCnn>(s, CnnConfig{.channels = {8, 16}}, g, d);
       }},
  };
  return table;
}

std::vector<std::string> model_presets() {
  std::vector<std::string> names;
  for (const auto& [name, f] : factories()) names.push_back(name);
  return names;
}

std::string drop_path_refusal(const std::string& preset) {
  if (preset.rfind("cnn", 0) == 0)
    return "the cnn presets have no residual blocks, and stochastic depth drops a residual branch "
           "per sample (the vit and hrnet presets have them)";
  return "";
}

std::vector<std::string> model_stems() {
  return {"patch", "conv"};
}

std::string stem_refusal(const std::string& preset) {
  if (preset.rfind("vit", 0) == 0) return "";
  return "only the vit presets take a conv stem (the cnn and hrnet presets begin with "
         "convolutions of their own)";
}

// "a, b, c", for the messages that list what is known.
static std::string join_names(const std::vector<std::string>& names) {
  std::string joined;
  for (const auto& name : names) joined += (joined.empty() ? "" : ", ") + name;
  return joined;
}

std::unique_ptr<ImageClassifier> create_model(const ModelSpec& spec, Generator& gen,
                                              Device device) {
  auto it = factories().find(spec.preset);
  if (it == factories().end())
    throw std::invalid_argument("unknown model '" + spec.preset +
                                "' (known: " + join_names(model_presets()) + ")");
  if (spec.num_classes < 2)
    throw std::invalid_argument("a classifier needs at least 2 classes, got " +
                                std::to_string(spec.num_classes));
  if (spec.dropout >= 1.f)
    throw std::invalid_argument("dropout " + std::to_string(spec.dropout) + " must be below 1");
  if (!(spec.drop_path >= 0.f && spec.drop_path < 1.f))
    throw std::invalid_argument("drop path " + std::to_string(spec.drop_path) +
                                " is outside [0, 1)");
  if (const std::string refusal = drop_path_refusal(spec.preset);
      spec.drop_path > 0.f && !refusal.empty())
    throw std::invalid_argument("drop path " + std::to_string(spec.drop_path) + " for '" +
                                spec.preset + "': " + refusal);
  const std::vector<std::string> stems = model_stems();
  if (std::find(stems.begin(), stems.end(), spec.stem) == stems.end())
    throw std::invalid_argument("unknown stem '" + spec.stem + "' (known: " + join_names(stems) +
                                ")");
  if (const std::string refusal = stem_refusal(spec.preset);
      spec.stem != "patch" && !refusal.empty())
    throw std::invalid_argument("stem '" + spec.stem + "' for '" + spec.preset + "': " + refusal);
  return it->second(spec, gen, device);
}

}  // namespace forge::models
