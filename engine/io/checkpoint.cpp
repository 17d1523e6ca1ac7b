// checkpoint.cpp: checkpoints on top of safetensors (layout in checkpoint.h). The loader checks
// the whole file against what the caller expects before copying anything, so a mismatched
// checkpoint (another model preset, another optimizer) fails cleanly instead of half-loading.
#include "engine/io/checkpoint.h"

#include <charconv>
#include <stdexcept>

namespace forge {

namespace {

constexpr const char* kModelPrefix = "model.";
constexpr const char* kOptimPrefix = "optim.";
constexpr const char* kAveragePrefix = "ema.";
constexpr const char* kStepKey = "checkpoint.step";
constexpr const char* kEpochKey = "checkpoint.epoch";
constexpr const char* kOptimStepKey = "optim.step";

[[noreturn]] void fail(const std::string& path, const std::string& problem) {
  throw std::runtime_error("checkpoint: " + path + ": " + problem);
}

bool starts_with(const std::string& s, const char* prefix) {
  return s.rfind(prefix, 0) == 0;
}

int64_t parse_count(const std::string& path, const Metadata& metadata, const char* key) {
  const auto it = metadata.find(key);
  if (it == metadata.end()) fail(path, std::string("metadata lacks ") + key);
  int64_t value = -1;
  const std::string& text = it->second;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < 0)
    fail(path, std::string("metadata ") + key + " = '" + text + "' is not a count");
  return value;
}

// The caller's part of the metadata: everything but the reserved keys.
CheckpointInfo info_from(const std::string& path, Metadata metadata) {
  CheckpointInfo info;
  info.step = parse_count(path, metadata, kStepKey);
  info.epoch = parse_count(path, metadata, kEpochKey);
  metadata.erase(kStepKey);
  metadata.erase(kEpochKey);
  metadata.erase(kOptimStepKey);
  info.metadata = std::move(metadata);
  return info;
}

// Finds `name` in the file with `shape`, or names the problem.
const Tensor& expect(const std::string& path, const SafetensorsFile& file, const std::string& name,
                     const Shape& shape) {
  const Tensor* t = file.find(name);
  if (!t) fail(path, "missing tensor " + name);
  if (t->shape() != shape)
    fail(path, "tensor " + name + " has shape " + shape_str(t->shape()) + ", the model expects " +
                   shape_str(shape));
  return *t;
}

}  // namespace

void save_checkpoint(const std::string& path, const NamedTensors& model, const Optimizer* optimizer,
                     const CheckpointInfo& info, const NamedTensors& average) {
  Metadata metadata = info.metadata;
  for (const char* key : {kStepKey, kEpochKey, kOptimStepKey})
    if (metadata.count(key))
      throw std::invalid_argument("checkpoint: " + path + ": metadata key " + key + " is reserved");
  metadata[kStepKey] = std::to_string(info.step);
  metadata[kEpochKey] = std::to_string(info.epoch);

  NamedTensors tensors;
  for (const auto& [name, tensor] : model) tensors.emplace_back(kModelPrefix + name, tensor);
  if (optimizer) {
    OptimizerState state = optimizer->state();
    for (auto& [name, tensor] : state.tensors) tensors.emplace_back(kOptimPrefix + name, tensor);
    metadata[kOptimStepKey] = std::to_string(state.step);
  }
  for (const auto& [name, tensor] : average) tensors.emplace_back(kAveragePrefix + name, tensor);
  save_safetensors(path, tensors, metadata);
}

CheckpointInfo load_checkpoint(const std::string& path, const NamedTensors& model,
                               Optimizer* optimizer, const NamedTensors* average) {
  SafetensorsFile file = load_safetensors(path);
  CheckpointInfo info = info_from(path, file.metadata);

  // Model: every expected tensor present with its shape, nothing unexpected.
  std::vector<const Tensor*> sources;
  for (const auto& [name, tensor] : model)
    sources.push_back(&expect(path, file, kModelPrefix + name, tensor.shape()));
  size_t model_in_file = 0;
  for (const auto& [name, tensor] : file.tensors) model_in_file += starts_with(name, kModelPrefix);
  if (model_in_file != model.size()) {
    for (const auto& [name, tensor] : file.tensors) {
      if (!starts_with(name, kModelPrefix)) continue;
      bool expected = false;
      for (const auto& [model_name, model_tensor] : model)
        expected |= name == kModelPrefix + model_name;
      if (!expected) fail(path, "tensor " + name + " is not part of the model");
    }
  }

  std::vector<const Tensor*> average_sources;
  if (average)
    for (const auto& [name, tensor] : *average)
      average_sources.push_back(&expect(path, file, kAveragePrefix + name, tensor.shape()));

  // Optimizer: its own names, with the prefix stripped; load_state checks them.
  OptimizerState state;
  if (optimizer) {
    state.step = parse_count(path, file.metadata, kOptimStepKey);
    for (const auto& [name, tensor] : file.tensors)
      if (starts_with(name, kOptimPrefix))
        state.tensors.emplace_back(name.substr(std::string(kOptimPrefix).size()), tensor);
    // Check (and load) the optimizer before touching the model: load_state validates first.
    try {
      optimizer->load_state(state);
    } catch (const std::invalid_argument& e) {
      fail(path, e.what());
    }
  }
  for (size_t i = 0; i < model.size(); ++i) model[i].second.copy_from(*sources[i]);
  for (size_t i = 0; i < average_sources.size(); ++i)
    (*average)[i].second.copy_from(*average_sources[i]);
  return info;
}

CheckpointInfo read_checkpoint_info(const std::string& path) {
  return info_from(path, load_safetensors_metadata(path));
}

}  // namespace forge
