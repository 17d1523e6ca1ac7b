// test_model_ema.cpp: the weight average (train/model_ema.h) against its closed form after k
// steps, its refusal of a model of another architecture, and its round trip through a checkpoint.
#include <doctest/doctest.h>

#include <cmath>

#include "engine/io/checkpoint.h"
#include "models/model.h"
#include "tests/temp_dir.h"
#include "train/model_ema.h"
#include "train/saved_model.h"

using namespace forge;
using namespace forge::train;

namespace {

std::unique_ptr<models::ImageClassifier> micro(uint64_t seed,
                                               const std::string& preset = "cnn-micro") {
  Generator gen(seed);
  return models::create_model({preset, 2, 16}, gen, Device::cpu);
}

// Sets every tensor of the model (parameters and buffers) to fresh random values.
std::vector<std::vector<float>> randomise(const nn::Module& model, Generator& gen) {
  std::vector<std::vector<float>> values;
  for (const auto& [name, t] : model_tensors(model)) {
    Tensor v = Tensor::randn(t.shape(), gen);
    t.copy_from(v);
    values.push_back(v.to_vector());
  }
  return values;
}

}  // namespace

TEST_CASE("model EMA: after k steps it is decay^k w0 + (1 - decay) sum decay^(k-j) w_j") {
  const float decay = 0.7f;
  auto model = micro(1);
  Generator gen(2);
  std::vector<std::vector<std::vector<float>>> w{randomise(*model, gen)};  // w[j][tensor][i]
  ModelEma ema(micro(99), *model, decay);
  for (int k = 1; k <= 5; ++k) {
    w.push_back(randomise(*model, gen));
    ema.update(*model);
  }
  const NamedTensors averaged = ema.tensors();
  REQUIRE(averaged.size() == w[0].size());
  CHECK(averaged.size() > model->named_parameters().size());  // batch-norm buffers averaged too
  const int k = 5;
  for (size_t t = 0; t < averaged.size(); ++t) {
    CAPTURE(averaged[t].first);
    const std::vector<float> got = averaged[t].second.to_vector();
    for (size_t i = 0; i < got.size(); ++i) {
      double expected = std::pow(decay, k) * w[0][t][i];
      for (int j = 1; j <= k; ++j) expected += (1 - decay) * std::pow(decay, k - j) * w[j][t][i];
      REQUIRE(got[i] == doctest::Approx(expected).epsilon(1e-5).scale(1));
    }
  }
  CHECK_FALSE(ema.model().training());  // evaluated as is
}

TEST_CASE("model EMA: decay 1 keeps the start, decay 0 follows the model; bad input refused") {
  auto model = micro(1);
  const std::vector<float> start = model_tensors(*model)[0].second.to_vector();
  ModelEma frozen(micro(5), *model, 1.f), follower(micro(6), *model, 0.f);
  Generator gen(3);
  const auto now = randomise(*model, gen);
  frozen.update(*model);
  follower.update(*model);
  CHECK(frozen.tensors()[0].second.to_vector() == start);
  CHECK(follower.tensors()[0].second.to_vector() == now[0]);
  CHECK_THROWS_WITH_AS(ModelEma(micro(7, "vit-micro"), *model, 0.9f),
                       doctest::Contains("model EMA"), std::invalid_argument);
  CHECK_THROWS_AS(ModelEma(micro(7), *model, 1.5f), std::invalid_argument);
}

TEST_CASE("model EMA: a checkpoint stores it under ema. and restores it exactly") {
  forge::test::TempDir dir("ema-checkpoint");
  auto model = micro(1);
  ModelEma ema(micro(2), *model, 0.9f);
  Generator gen(4);
  randomise(*model, gen);
  ema.update(*model);
  const std::string path = (dir.path / "last.safetensors").string();
  save_checkpoint(path, model_tensors(*model), nullptr, {.step = 1, .epoch = 1, .metadata = {}},
                  ema.tensors());

  auto restored_model = micro(8);
  ModelEma restored(micro(9), *restored_model, 0.9f);
  const NamedTensors restored_tensors = restored.tensors();
  load_checkpoint(path, model_tensors(*restored_model), nullptr, &restored_tensors);
  const NamedTensors a = ema.tensors();
  for (size_t t = 0; t < a.size(); ++t)
    CHECK(restored_tensors[t].second.to_vector() == a[t].second.to_vector());
  // A checkpoint without an average is refused when one is asked for, naming the tensor.
  const std::string plain = (dir.path / "plain.safetensors").string();
  save_checkpoint(plain, model_tensors(*model), nullptr, {.step = 1, .epoch = 1, .metadata = {}});
  CHECK_THROWS_WITH_AS(
      load_checkpoint(plain, model_tensors(*restored_model), nullptr, &restored_tensors),
      doctest::Contains("missing tensor ema."), std::runtime_error);
  // Without `average`, the ema. tensors are ignored (evaluation).
  CHECK_NOTHROW(load_checkpoint(path, model_tensors(*restored_model), nullptr));
}
