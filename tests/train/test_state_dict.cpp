// test_state_dict.cpp: forge's weights under timm's names and back (train/state_dict.h), checked
// against timm itself through fixtures written by bench/timm_fixtures.py (no torch needed here):
//   - the "vit" preset's export has exactly the keys, shapes and order of timm's own state dict
//     of vit_tiny_patch16_224 at img_size 128;
//   - timm's weights of a micro ViT, imported, make forge compute timm's logits;
//   - export -> file (f32, bf16, f16) -> import gives the same weights (rounded for bf16/f16)
//     and bit-identical logits; the forge format carries BatchNorm's num_batches_tracked.
#include <doctest/doctest.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "engine/autograd.h"
#include "engine/io/checkpoint.h"
#include "engine/io/safetensors.h"
#include "kernels/bf16.h"
#include "models/model.h"
#include "tests/temp_dir.h"
#include "train/saved_model.h"
#include "train/state_dict.h"

using namespace forge;
using forge::test::TempDir;
using namespace forge::train;

namespace {

std::vector<uint32_t> bits_of(const Tensor& t) {
  const std::vector<float> v = t.to_vector();
  std::vector<uint32_t> b(v.size());
  if (!v.empty()) std::memcpy(b.data(), v.data(), v.size() * 4);
  return b;
}

// Copies `tensors` (forge's names) into `model` through a checkpoint, which checks that every
// parameter is there with its shape and nothing else is.
void load_into(models::ImageClassifier& model, const NamedTensors& tensors, const TempDir& dir) {
  const std::string path = dir.file("loaded.safetensors");
  save_checkpoint(path, tensors, nullptr, {});
  load_checkpoint(path, model_tensors(model), nullptr);
}

Tensor logits(models::ImageClassifier& model, const Tensor& images) {
  NoGradGuard no_grad;
  model.eval();
  return model.forward(images);
}

}  // namespace

TEST_CASE("state dict: the vit preset's timm export has timm's own keys, shapes and order") {
  std::ifstream in(FORGE_FIXTURES_DIR "/timm_vit_tiny_keys.json");
  REQUIRE(in);
  const nlohmann::json fixture = nlohmann::json::parse(in);
  Generator gen(0);
  auto vit = models::create_model({"vit", 2, 120, -1.f}, gen, Device::cpu);
  CHECK(vit->architecture().at("padded_size") == fixture.at("img_size"));
  const NamedTensors exported =
      export_state_dict(model_tensors(*vit), "vit", StateDictFormat::timm, 0);
  REQUIRE(exported.size() == fixture.at("keys").size());
  for (size_t i = 0; i < exported.size(); ++i) {
    const nlohmann::json& key = fixture.at("keys")[i];
    CAPTURE(key);
    CHECK(exported[i].first == key.at("name").get<std::string>());
    CHECK(exported[i].second.shape() == key.at("shape").get<Shape>());
    CHECK(key.at("dtype") == "float32");
  }
}

TEST_CASE("state dict: timm's weights, imported, give timm's logits") {
  TempDir dir("state_dict");
  const SafetensorsFile fixture =
      load_safetensors(FORGE_FIXTURES_DIR "/timm_vit_micro.safetensors");
  NamedTensors timm_weights;
  for (const auto& [name, tensor] : fixture.tensors)
    if (name.rfind("input.", 0) != 0 && name.rfind("out.", 0) != 0)
      timm_weights.emplace_back(name, tensor);
  REQUIRE(fixture.find("blocks.1.mlp.fc2.weight"));
  Generator gen(0);
  auto vit = models::create_model({"vit-micro", 3, 30, -1.f}, gen, Device::cpu);
  load_into(*vit, import_state_dict(timm_weights, StateDictFormat::timm), dir);
  const std::vector<float> got = logits(*vit, *fixture.find("input.images")).to_vector();
  const std::vector<float> want = fixture.find("out.logits")->to_vector();
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    CAPTURE(i);
    CHECK(got[i] == doctest::Approx(want[i]).epsilon(1e-5).scale(1));
  }
}

TEST_CASE("state dict: export, write, read and import give back the weights and the logits") {
  TempDir dir("state_dict");
  Generator gen(3);
  auto vit = models::create_model({"vit-micro", 2, 30, -1.f}, gen, Device::cpu);
  const NamedTensors original = model_tensors(*vit);
  const Tensor images = Tensor::randn({2, 3, 30, 30}, gen);
  const Tensor expected = logits(*vit, images);

  for (StoredDtype dtype : {StoredDtype::f32, StoredDtype::bf16, StoredDtype::f16}) {
    CAPTURE(stored_dtype_name(dtype));
    const NamedTensors exported = export_state_dict(original, "vit", StateDictFormat::timm, 7);
    StoredDtypes dtypes;
    for (const auto& [name, t] : exported) dtypes[name] = dtype;
    const std::string path = dir.file("timm.safetensors");
    save_safetensors(path, exported, {}, dtypes);
    const SafetensorsFile file = load_safetensors(path);
    CHECK(file.dtypes.at("cls_token") == dtype);
    CHECK(file.find("cls_token")->shape() == Shape{1, 1, 32});
    CHECK(file.find("pos_embed")->shape() == Shape{1, 17, 32});
    CHECK(file.find("blocks.0.mlp.fc1.weight")->shape() == Shape{64, 32});

    const NamedTensors imported = import_state_dict(file.tensors, StateDictFormat::timm);
    Generator other(99);
    auto back = models::create_model({"vit-micro", 2, 30, -1.f}, other, Device::cpu);
    load_into(*back, imported, dir);
    const NamedTensors restored = model_tensors(*back);
    REQUIRE(restored.size() == original.size());
    for (size_t i = 0; i < original.size(); ++i) {
      CAPTURE(original[i].first);
      std::vector<float> want = original[i].second.to_vector();
      for (float& v : want)
        v = dtype == StoredDtype::bf16  ? bf16_to_float(float_to_bf16(v))
            : dtype == StoredDtype::f16 ? f16_bits_to_float(float_to_f16_bits(v))
                                        : v;
      CHECK(restored[i].second.to_vector() == want);
    }
    if (dtype == StoredDtype::f32) CHECK(bits_of(logits(*back, images)) == bits_of(expected));
  }
}

TEST_CASE("state dict: the forge format is the twins' state dict, with num_batches_tracked") {
  TempDir dir("state_dict");
  Generator gen(4);
  auto cnn = models::create_model({"cnn-micro", 2, 20, -1.f}, gen, Device::cpu);
  const NamedTensors original = model_tensors(*cnn);
  const NamedTensors exported = export_state_dict(original, "cnn", StateDictFormat::forge, 1234);
  size_t counters = 0;
  for (const auto& [name, t] : exported)
    if (name.ends_with(".num_batches_tracked")) {
      ++counters;
      CHECK(t.item() == 1234.f);
      CHECK(t.shape() == Shape{});
    }
  CHECK(counters == 4);  // two stages of two conv-BN-ReLU
  CHECK(exported.size() == original.size() + counters);
  REQUIRE(exported[0].first == original[0].first);
  const NamedTensors imported = import_state_dict(exported, StateDictFormat::forge);
  REQUIRE(imported.size() == original.size());
  for (size_t i = 0; i < original.size(); ++i) CHECK(imported[i].first == original[i].first);

  CHECK_THROWS_WITH_AS(export_state_dict(original, "cnn", StateDictFormat::timm, 0),
                       doctest::Contains("--format forge"), std::invalid_argument);
  CHECK(parse_state_dict_format("timm") == StateDictFormat::timm);
  CHECK_THROWS_AS(parse_state_dict_format("onnx"), std::invalid_argument);
}
