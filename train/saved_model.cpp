// saved_model.cpp: checkpoint metadata to a model, and back (see saved_model.h).
#include "train/saved_model.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <unordered_set>

#include "engine/io/checkpoint.h"
#include "train/build_info.h"
#include "train/history.h"
#include "train/options.h"

namespace forge::train {

NamedTensors model_tensors(const nn::Module& model) {
  NamedTensors all = model.named_parameters();
  for (auto& b : model.named_buffers()) all.push_back(b);
  return all;
}

// Floats (stored as doubles by the JSON library: 0.1f is 0.10000000149011612) as the shortest
// decimal that reads back as the same float.
static nlohmann::ordered_json shortest_floats(nlohmann::ordered_json value) {
  if (value.is_number_float()) return float_precision(value.get<double>());
  if (value.is_structured())
    for (auto& item : value) item = shortest_floats(item);
  return value;
}

std::string architecture_text(const nlohmann::ordered_json& architecture) {
  return shortest_floats(architecture).dump();
}

std::map<std::string, std::string> saved_model_metadata(
    const models::ImageClassifier& model, const std::vector<std::string>& classes,
    const data::Normalization& norm, data::Fit fit, const std::vector<std::string>& train_files) {
  const nlohmann::ordered_json architecture = shortest_floats(model.architecture());
  std::map<std::string, std::string> metadata = {
      {"model", model.spec().preset},
      {"image_size", std::to_string(model.spec().image_size)},
      {"dropout", architecture.at("dropout").dump()},
      {"architecture", architecture.dump()},
      {"class_names", nlohmann::json(classes).dump()},
      {"fit", data::fit_name(fit)},
      {"normalization", nlohmann::json{{"mean", norm.mean}, {"std", norm.std}}.dump()},
      {"train_files", nlohmann::json(train_files).dump()}};
  metadata.merge(build_info());
  return metadata;
}

void require_finite(const NamedTensors& tensors, const std::string& path) {
  for (const auto& [name, tensor] : tensors) {
    const std::vector<float> values = tensor.to_vector();
    for (size_t i = 0; i < values.size(); ++i)
      if (!std::isfinite(values[i]))
        throw std::runtime_error(path + ": tensor '" + name + "' holds a non-finite value (" +
                                 std::to_string(values[i]) + " at element " + std::to_string(i) +
                                 "): the checkpoint's weights are broken");
  }
}

SavedModel load_saved_model(const std::string& path, Device device) {
  const CheckpointInfo info = read_checkpoint_info(path);
  auto field = [&](const char* key) {
    auto it = info.metadata.find(key);
    if (it == info.metadata.end())
      throw std::runtime_error(path + ": checkpoint metadata has no '" + key +
                               "' (not a model checkpoint written by train?)");
    return it->second;
  };
  SavedModel saved;
  models::ModelSpec spec;
  try {
    spec.preset = field("model");
    spec.image_size = std::stoi(field("image_size"));
    spec.dropout = std::stof(field("dropout"));
    // Checkpoints from before --fit existed were all centre-cropped.
    auto fit = info.metadata.find("fit");
    saved.fit = data::parse_fit(fit == info.metadata.end() ? "crop" : fit->second);
    saved.class_names = nlohmann::json::parse(field("class_names")).get<std::vector<std::string>>();
    const auto norm = nlohmann::json::parse(field("normalization"));
    saved.normalization.mean = norm.at("mean").get<std::array<float, 3>>();
    saved.normalization.std = norm.at("std").get<std::array<float, 3>>();
    // A training-only rate, but part of what the preset was built with (architecture()).
    // The ViT's stem likewise (checkpoints from before the conv stem have the patch stem).
    if (auto a = info.metadata.find("architecture"); a != info.metadata.end()) {
      const nlohmann::json architecture = nlohmann::json::parse(a->second);
      spec.drop_path = architecture.value("drop_path", 0.f);
      spec.stem = architecture.value("stem", std::string("patch"));
    }
    if (auto files = info.metadata.find("train_files"); files != info.metadata.end())
      saved.train_files = nlohmann::json::parse(files->second).get<std::vector<std::string>>();
  } catch (const std::runtime_error&) {
    throw;
  } catch (const std::exception& e) {
    throw std::runtime_error(path + ": malformed checkpoint metadata (" + e.what() + ")");
  }
  // Values a model cannot be built or fed with: the training program's own limits.
  const auto& sizes = *std::find_if(option_table().begin(), option_table().end(),
                                    [](const OptionSpec& s) { return s.key == "/image_size"; });
  if (spec.image_size < sizes.min || spec.image_size > sizes.max)
    throw std::runtime_error(path + ": malformed checkpoint metadata (image_size " +
                             std::to_string(spec.image_size) + ", expected " +
                             std::to_string(int(sizes.min)) + " to " +
                             std::to_string(int(sizes.max)) + ")");
  if (!std::isfinite(spec.dropout) || !std::isfinite(spec.drop_path))
    throw std::runtime_error(path +
                             ": malformed checkpoint metadata (dropout or drop_path not finite)");
  for (int c = 0; c < 3; ++c)
    if (!std::isfinite(saved.normalization.mean[c]) || !std::isfinite(saved.normalization.std[c]) ||
        saved.normalization.std[c] <= 0)
      throw std::runtime_error(path +
                               ": malformed checkpoint metadata (normalization needs finite means "
                               "and positive standard deviations)");
  spec.num_classes = static_cast<int>(saved.class_names.size());
  Generator gen(0);  // weights are overwritten by the checkpoint's
  try {
    saved.model = models::create_model(spec, gen, device);
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(path + ": malformed checkpoint metadata (" + e.what() + ")");
  }
  // Checkpoints from before the architecture was recorded have only the preset's name.
  if (auto recorded = info.metadata.find("architecture"); recorded != info.metadata.end()) {
    const std::string built = architecture_text(saved.model->architecture());
    nlohmann::json parsed;  // compared as unordered objects: the order of keys does not matter
    try {
      parsed = nlohmann::json::parse(recorded->second);
    } catch (const nlohmann::json::exception& e) {
      throw std::runtime_error(path + ": malformed checkpoint metadata (architecture: " + e.what() +
                               ")");
    }
    const nlohmann::json built_json = nlohmann::json::parse(built);
    // HRNet's architecture gained drop_path with its stochastic depth: before, it had none (0).
    if (built_json.contains("drop_path") && parsed.is_object() && !parsed.contains("drop_path"))
      parsed["drop_path"] = 0;
    // The ViT's architecture gained "stem" with the conv stem: before, every ViT had the patch one.
    if (built_json.contains("stem") && parsed.is_object() && !parsed.contains("stem"))
      parsed["stem"] = "patch";
    if (parsed != built_json)
      throw std::runtime_error(path + ": the checkpoint's architecture " + parsed.dump() +
                               " differs from what preset '" + spec.preset + "' builds now, " +
                               built + " (written by another version of forge?)");
  }
  saved.epoch = load_checkpoint(path, model_tensors(*saved.model), nullptr).epoch;
  require_finite(model_tensors(*saved.model), path);
  saved.model->eval();
  saved.image_size = spec.image_size;
  return saved;
}

size_t count_training_images(const SavedModel& saved, const std::vector<std::string>& files) {
  const std::unordered_set<std::string> trained(saved.train_files.begin(), saved.train_files.end());
  return std::count_if(files.begin(), files.end(),
                       [&](const std::string& f) { return trained.count(f) > 0; });
}

}  // namespace forge::train
