// test_saved_model.cpp: what a checkpoint's metadata says about its model (train/saved_model.h):
// the whole architecture with resolved values (no -1 placeholders), the forge that wrote it, and
// a refusal when the recorded architecture is not what the preset builds.
#include <doctest/doctest.h>

#include <functional>
#include <regex>

#include "engine/io/checkpoint.h"
#include "models/model.h"
#include "tests/temp_dir.h"
#include "train/saved_model.h"

using namespace forge;
using forge::test::TempDir;
using namespace forge::train;

namespace {

std::map<std::string, std::string> metadata_of(const models::ImageClassifier& model) {
  return saved_model_metadata(model, {"anime", "selfie", "other"}, data::Normalization{},
                              data::Fit::crop, {});
}

// Every number in `j`, with its path.
void each_number(const nlohmann::json& j, const std::string& path,
                 const std::function<void(const std::string&, double)>& fn) {
  if (j.is_number()) fn(path, j.get<double>());
  if (j.is_structured())
    for (auto it = j.begin(); it != j.end(); ++it)
      each_number(*it, path + "/" + (j.is_object() ? it.key() : "[]"), fn);
}

// `model` saved as a checkpoint at `path` with `metadata`, and loaded back.
SavedModel save_and_load(const models::ImageClassifier& model,
                         const std::map<std::string, std::string>& metadata,
                         const std::string& path) {
  save_checkpoint(path, model_tensors(model), nullptr, {0, 1, metadata});
  return load_saved_model(path, Device::cpu);
}

// The metadata of `model` as a checkpoint written before `key` was recorded would have it.
std::map<std::string, std::string> metadata_without(const models::ImageClassifier& model,
                                                    const std::string& key) {
  auto metadata = metadata_of(model);
  auto architecture = nlohmann::json::parse(metadata.at("architecture"));
  architecture.erase(key);
  metadata["architecture"] = architecture.dump();
  return metadata;
}

// `loaded` is `model`: the same architecture, the same outputs (eval mode) on random images.
void check_same_model(models::ImageClassifier& loaded, models::ImageClassifier& model, int size) {
  CHECK(loaded.architecture() == model.architecture());
  Generator data(7);
  const Tensor images = Tensor::randn({2, 3, size, size}, data);
  model.eval();
  CHECK(loaded.forward(images).to_vector() == model.forward(images).to_vector());
}

}  // namespace

TEST_CASE("saved model: the metadata records the resolved architecture and the forge version") {
  Generator gen(1);
  auto vit = models::create_model({"vit-micro", 3, 30, -1.f}, gen, Device::cpu);
  const auto metadata = metadata_of(*vit);
  CHECK(metadata.at("model") == "vit-micro");
  CHECK(metadata.at("dropout") == "0.1");  // the preset's, not -1
  const nlohmann::json a = nlohmann::json::parse(metadata.at("architecture"));
  CHECK(a == nlohmann::json{{"family", "vit"},
                            {"image_size", 30},
                            {"in_channels", 3},
                            {"num_classes", 3},
                            {"stem", "patch"},
                            {"padded_size", 32},
                            {"patch", 8},
                            {"dim", 32},
                            {"depth", 2},
                            {"heads", 2},
                            {"mlp_dim", 64},
                            {"tokens", 17},
                            {"dropout", 0.1},
                            {"drop_path", 0.0},
                            {"norm", "layer_norm"},
                            {"norm_eps", 1e-6},
                            {"activation", "gelu_erf"}});
  // Floats are written as their shortest decimals: "0.1", not 0.10000000149011612.
  CHECK(metadata.at("architecture").find("\"dropout\":0.1,") != std::string::npos);
  CHECK(metadata.at("architecture").find("\"norm_eps\":1e-06") != std::string::npos);

  CHECK(metadata.at("forge_version") == "0.1.0");
  CHECK(std::regex_match(metadata.at("forge_commit"), std::regex("[0-9a-f]{40}|unknown")));
  CHECK(std::regex_match(metadata.at("forge_dirty"), std::regex("true|false|unknown")));

  auto hrnet = models::create_model({"hrnet-micro", 2, 36, 0.f}, gen, Device::cpu);
  const nlohmann::json h = nlohmann::json::parse(metadata_of(*hrnet).at("architecture"));
  CHECK(h.at("branch_channels") == nlohmann::json{4, 8, 12, 16});
  CHECK(h.at("dropout") == 0.0);  // an explicit rate is kept
  CHECK(h.at("norm_momentum") == 0.1);

  // No preset leaves a placeholder: every number is non-negative and every key is set.
  for (const std::string& preset : models::model_presets()) {
    CAPTURE(preset);
    auto model = models::create_model({preset, 2, 36, -1.f}, gen, Device::cpu);
    const auto m = metadata_of(*model);
    CHECK(std::stof(m.at("dropout")) > 0.f);
    each_number(nlohmann::json::parse(m.at("architecture")), "",
                [](const std::string& p, double v) {
                  CAPTURE(p);
                  CHECK(v >= 0);
                });
  }
}

TEST_CASE("saved model: a checkpoint whose architecture the preset no longer builds is refused") {
  TempDir dir("saved_model");
  Generator gen(2);
  auto model = models::create_model({"cnn-micro", 3, 20, -1.f}, gen, Device::cpu);
  auto metadata = metadata_of(*model);
  const std::string good = dir.file("good.safetensors");
  save_checkpoint(good, model_tensors(*model), nullptr, {0, 1, metadata});
  CHECK(load_saved_model(good, Device::cpu).model->architecture() == model->architecture());

  // From before the architecture was recorded: loads from the preset's name.
  const std::string old = dir.file("old.safetensors");
  auto without = metadata;
  without.erase("architecture");
  save_checkpoint(old, model_tensors(*model), nullptr, {0, 1, without});
  CHECK(load_saved_model(old, Device::cpu).class_names.size() == 3);

  const std::string bad = dir.file("bad.safetensors");
  auto other = nlohmann::json::parse(metadata.at("architecture"));
  other["channels"] = {8, 32};
  metadata["architecture"] = other.dump();
  save_checkpoint(bad, model_tensors(*model), nullptr, {0, 1, metadata});
  CHECK_THROWS_WITH_AS(load_saved_model(bad, Device::cpu),
                       doctest::Contains((bad + ": the checkpoint's architecture").c_str()),
                       std::runtime_error);
}

TEST_CASE("saved model: HRNet's drop path round-trips through a checkpoint; older ones load") {
  TempDir dir("saved_model_drop_path");
  Generator gen(4);
  auto model = models::create_model({"hrnet-micro", 3, 20, 0.f, 0.3f}, gen, Device::cpu);
  const SavedModel saved = save_and_load(*model, metadata_of(*model), dir.file("best.safetensors"));
  CHECK(saved.model->spec().drop_path == 0.3f);
  check_same_model(*saved.model, *model, 20);

  // Written before HRNet had stochastic depth: no drop_path in its architecture, read as 0.
  Generator gen_plain(4);
  auto plain = models::create_model({"hrnet-micro", 3, 20, 0.f}, gen_plain, Device::cpu);
  const SavedModel older =
      save_and_load(*plain, metadata_without(*plain, "drop_path"), dir.file("older.safetensors"));
  CHECK(older.model->spec().drop_path == 0.f);
}

TEST_CASE("saved model: the ViT's conv stem round-trips through a checkpoint; older ones load") {
  TempDir dir("saved_model_stem");
  Generator gen(6);
  auto model = models::create_model({"vit-micro", 3, 30, 0.f, 0.f, "conv"}, gen, Device::cpu);
  const auto metadata = metadata_of(*model);
  const nlohmann::json a = nlohmann::json::parse(metadata.at("architecture"));
  CHECK(a.at("stem") == "conv");
  CHECK(a.at("stem_channels") == nlohmann::json{8, 16, 32});
  const SavedModel saved = save_and_load(*model, metadata, dir.file("best.safetensors"));
  CHECK(saved.model->spec().stem == "conv");
  check_same_model(*saved.model, *model, 30);

  // Written before --stem: no "stem" in a ViT's architecture, read as the patch stem.
  Generator gen_patch(6);
  auto patch = models::create_model({"vit-micro", 3, 30, 0.f}, gen_patch, Device::cpu);
  auto older = metadata_without(*patch, "stem");
  const std::string old_path = dir.file("older.safetensors");
  CHECK(save_and_load(*patch, older, old_path).model->spec().stem == "patch");

  // A stem the program does not know is malformed metadata, named as such.
  auto architecture = nlohmann::json::parse(older.at("architecture"));
  architecture["stem"] = "hybrid";
  older["architecture"] = architecture.dump();
  save_checkpoint(old_path, model_tensors(*patch), nullptr, {0, 1, older});
  CHECK_THROWS_WITH_AS(load_saved_model(old_path, Device::cpu),
                       doctest::Contains("malformed checkpoint metadata (unknown stem 'hybrid'"),
                       std::runtime_error);
}
