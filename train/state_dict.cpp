// state_dict.cpp: the renames and reshapes between forge's names and timm's (table in
// state_dict.h). One rename table, used in both directions.
#include "train/state_dict.h"

#include <algorithm>
#include <map>
#include <stdexcept>
#include <utility>
#include <vector>

namespace forge::train {

namespace {

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// forge -> timm name pieces: a whole-name prefix, and a piece inside a block's name.
const std::vector<std::pair<std::string, std::string>> kTimmPrefixes = {
    {"patch_embed.", "patch_embed.proj."}};
const std::vector<std::pair<std::string, std::string>> kTimmBlockPieces = {
    {".mlp.0.", ".mlp.fc1."}, {".mlp.3.", ".mlp.fc2."}};

// forge's `name` in timm's terms, or timm's in forge's when `back`.
std::string rename(const std::string& name, bool back) {
  for (const auto& [forge_prefix, timm_prefix] : kTimmPrefixes) {
    const std::string& from = back ? timm_prefix : forge_prefix;
    const std::string& to = back ? forge_prefix : timm_prefix;
    if (name.rfind(from, 0) == 0) return to + name.substr(from.size());
  }
  if (name.rfind("blocks.", 0) == 0)
    for (const auto& [forge_piece, timm_piece] : kTimmBlockPieces) {
      const std::string& from = back ? timm_piece : forge_piece;
      const std::string& to = back ? forge_piece : timm_piece;
      if (const size_t at = name.find(from); at != std::string::npos)
        return name.substr(0, at) + to + name.substr(at + from.size());
    }
  return name;
}

// The leading axes of extent 1 timm has where forge has none: cls_token [1, 1, e] for forge's
// [e], pos_embed [1, t, e] for [t, e].
size_t leading_ones(const std::string& forge_name) {
  return forge_name == "cls_token" ? 2 : forge_name == "pos_embed" ? 1 : 0;
}

// Where timm's state_dict() puts each forge tensor: the embeddings' parameters first.
int timm_rank(const std::string& forge_name) {
  if (forge_name == "cls_token") return 0;
  if (forge_name == "pos_embed") return 1;
  return 2;
}

Shape timm_shape(const std::string& forge_name, Shape shape) {
  shape.insert(shape.begin(), leading_ones(forge_name), 1);
  return shape;
}

}  // namespace

const char* state_dict_format_name(StateDictFormat format) {
  return format == StateDictFormat::timm ? "timm" : "forge";
}

StateDictFormat parse_state_dict_format(const std::string& name) {
  if (name == "timm") return StateDictFormat::timm;
  if (name == "forge") return StateDictFormat::forge;
  throw std::invalid_argument("unknown state dict format '" + name + "' (known: timm, forge)");
}

NamedTensors export_state_dict(const NamedTensors& model, const std::string& family,
                               StateDictFormat format, int64_t steps) {
  NamedTensors out;
  if (format == StateDictFormat::forge) {
    for (const auto& [name, tensor] : model) {
      out.emplace_back(name, tensor);
      if (ends_with(name, ".running_var"))  // the last of a batch norm's four tensors
        out.emplace_back(name.substr(0, name.size() - 11) + "num_batches_tracked",
                         Tensor::from_vector({static_cast<float>(steps)}, {}));
    }
    return out;
  }
  if (family != "vit")
    throw std::invalid_argument("timm has no equivalent of forge's '" + family +
                                "' model; export it with --format forge (bench/pytorch_models.py "
                                "loads that)");
  std::vector<std::pair<int, size_t>> order;
  for (size_t i = 0; i < model.size(); ++i) order.emplace_back(timm_rank(model[i].first), i);
  std::stable_sort(order.begin(), order.end());
  for (const auto& [rank, i] : order) {
    const auto& [name, tensor] = model[i];
    out.emplace_back(rename(name, false), tensor.reshape(timm_shape(name, tensor.shape())));
  }
  return out;
}

NamedTensors import_state_dict(const NamedTensors& state_dict, StateDictFormat format) {
  NamedTensors out;
  for (const auto& [name, tensor] : state_dict) {
    if (format == StateDictFormat::forge) {
      if (!ends_with(name, ".num_batches_tracked")) out.emplace_back(name, tensor);
      continue;
    }
    const std::string forge_name = rename(name, true);
    // Drops the leading ones timm adds; any other shape is left for the loader to refuse.
    const Shape& shape = tensor.shape();
    const size_t ones = leading_ones(forge_name);
    const bool timm_layout = shape.size() > ones && std::all_of(shape.begin(), shape.begin() + ones,
                                                                [](int64_t n) { return n == 1; });
    out.emplace_back(forge_name, timm_layout
                                     ? tensor.reshape(Shape(shape.begin() + ones, shape.end()))
                                     : tensor);
  }
  return out;
}

}  // namespace forge::train
