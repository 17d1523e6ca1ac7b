// test_models.cpp: each preset's parameter count against a count worked out by hand from the
// architecture (not from the code), output shapes, and a training step lowering the loss.
#include <doctest/doctest.h>

#include <cmath>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "models/conv_stem.h"
#include "models/model.h"

using namespace forge;
using namespace forge::models;

static int64_t conv(int64_t in, int64_t out, int64_t k) {
  return in * out * k * k;
}
static int64_t bn(int64_t c) {
  return 2 * c;
}  // gamma and beta (running stats are buffers)

static int64_t count(const std::string& preset, int classes = 2) {
  Generator gen(1);
  return create_model({preset, classes, 120}, gen, Device::cpu)->parameter_count();
}

TEST_CASE("models: ViT-Ti/16 has the parameter count of its architecture") {
  // width e, depth 12, MLP m, patch 16, 65 tokens (120 padded to 128: 8x8 patches + class token)
  const int64_t e = 192, m = 768, p = 16, tokens = 65, classes = 2;
  const int64_t embed = e * 3 * p * p + e /*bias*/ + e /*class token*/ + tokens * e /*positions*/;
  const int64_t block = 2 * 2 * e /*two layer norms*/ + (3 * e * e + 3 * e) /*qkv*/ +
                        (e * e + e) /*proj*/ + (e * m + m) + (m * e + e) /*MLP*/;
  const int64_t expected = embed + 12 * block + 2 * e /*final norm*/ + e * classes + classes;
  CHECK(expected == 5499458);
  CHECK(count("vit") == expected);
}

TEST_CASE("models: ViT-Ti/16 with the conv stem has the parameter count of its architecture") {
  // The patch embedding (e x 3 x 16 x 16 + bias) replaced by four stride-2 conv3x3 + BN steps to
  // 24, 48, 96, 192 channels and a 1x1 conv with bias to the width; the rest as the patch stem's.
  const int64_t e = 192, p = 16;
  const int64_t stem = conv(3, 24, 3) + bn(24) + conv(24, 48, 3) + bn(48) + conv(48, 96, 3) +
                       bn(96) + conv(96, 192, 3) + bn(192) + conv(192, e, 1) + e;
  const int64_t expected = 5499458 - (e * 3 * p * p + e) + stem;
  CHECK(expected == 5607962);
  Generator gen(1);
  auto model = create_model({"vit", 2, 120, -1.f, 0.f, "conv"}, gen, Device::cpu);
  CHECK(model->parameter_count() == expected);
  CHECK(model->architecture().at("stem") == "conv");
  CHECK(model->architecture().at("stem_channels") == nlohmann::json{24, 48, 96, 192});
  CHECK(model->architecture().at("tokens") == 65);
}

TEST_CASE("models: the conv stem gives the patch stem's token grid") {
  // 120 px is padded to a multiple of the patch first, as for the patch stem: ViT-Ti/16 sees
  // 128 -> 8x8 tokens, vit-micro (patch 8) 120 -> 15x15; the attention maps say the same grid.
  struct Case {
    const char* preset;
    int size, grid, padded;
  };
  for (const Case c :
       {Case{"vit", 120, 8, 128}, Case{"vit-micro", 120, 15, 120}, Case{"vit-micro", 30, 4, 32}}) {
    CAPTURE(std::string(c.preset));
    CAPTURE(c.size);
    Generator gen(7);
    auto model = create_model({c.preset, 2, c.size, -1.f, 0.f, "conv"}, gen, Device::cpu);
    model->eval();
    NoGradGuard no_grad;
    const TokenAttention attention =
        model->attention_probabilities(Tensor::randn({1, 3, c.size, c.size}, gen));
    CHECK(attention.grid == c.grid);
    CHECK(attention.padded_size == c.padded);
    const int64_t tokens = 1 + c.grid * c.grid;
    CHECK(attention.layers.at(0).shape() == Shape{1, attention.layers[0].size(1), tokens, tokens});
    ConvStem stem_only(c.padded / c.grid, 32, gen, Device::cpu);
    CHECK(stem_only.forward(Tensor::randn({1, 3, c.padded, c.padded}, gen)).shape() ==
          Shape{1, 32, c.grid, c.grid});
  }
  CHECK(conv_stem_channels(8, 32) == std::vector<int>{8, 16, 32});
  CHECK_THROWS_WITH_AS(conv_stem_channels(12, 192), doctest::Contains("power of two, got 12"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(conv_stem_channels(16, 36), doctest::Contains("not divisible by 8"),
                       std::invalid_argument);
}

TEST_CASE("models: the cnn and hrnet presets refuse the conv stem; an unknown stem is refused") {
  Generator gen(1);
  for (const char* preset : {"cnn", "cnn-micro", "hrnet", "hrnet-micro"}) {
    CAPTURE(std::string(preset));
    CHECK_THROWS_WITH_AS(create_model({preset, 2, 32, -1.f, 0.f, "conv"}, gen, Device::cpu),
                         doctest::Contains("only the vit presets take a conv stem"),
                         std::invalid_argument);
  }
  CHECK_THROWS_WITH_AS(create_model({"vit-micro", 2, 32, -1.f, 0.f, "hybrid"}, gen, Device::cpu),
                       doctest::Contains("unknown stem 'hybrid' (known: patch, conv)"),
                       std::invalid_argument);
}

TEST_CASE("models: the baseline CNN has the parameter count of its architecture") {
  int64_t expected = 0, in = 3;
  for (int64_t c : {32, 64, 128, 256}) {  // (conv3x3 without bias + BN) x 2 per stage
    expected += conv(in, c, 3) + bn(c) + conv(c, c, 3) + bn(c);
    in = c;
  }
  expected += 256 * 2 + 2;
  CHECK(expected == 1173730);
  CHECK(count("cnn") == expected);
}

TEST_CASE("models: HRNet-W18-small-v1 has the parameter count of its architecture") {
  auto basic = [](int64_t c) { return 2 * (conv(c, c, 3) + bn(c)); };
  // A module: 2 basic blocks a branch, then fusion paths between every pair of branches.
  auto module = [&](std::vector<int64_t> ch) {
    int64_t s = 0;
    for (int64_t c : ch) s += 2 * basic(c);
    for (size_t i = 0; i < ch.size(); ++i)
      for (size_t j = 0; j < ch.size(); ++j)
        if (j > i)  // 1x1 conv + BN from the lower resolution
          s += conv(ch[j], ch[i], 1) + bn(ch[i]);
        else if (j < i)  // (i - j) stride-2 3x3 conv + BN steps, widths ch[j] until the last
          s += int64_t(i - j - 1) * (conv(ch[j], ch[j], 3) + bn(ch[j])) + conv(ch[j], ch[i], 3) +
               bn(ch[i]);
    return s;
  };
  int64_t expected = conv(3, 64, 3) + bn(64) + conv(64, 64, 3) + bn(64);  // stem
  expected += conv(64, 32, 1) + bn(32) + conv(32, 32, 3) + bn(32) +       // bottleneck
              conv(32, 128, 1) + bn(128) + conv(64, 128, 1) + bn(128);    // + shortcut
  expected += conv(128, 16, 3) + bn(16) + conv(128, 32, 3) + bn(32);      // transition 1
  expected += module({16, 32}) + conv(32, 64, 3) + bn(64);                // stage 2, t2
  expected += module({16, 32, 64}) + conv(64, 128, 3) + bn(128);          // stage 3, t3
  expected += module({16, 32, 64, 128});                                  // stage 4
  expected += (16 + 32 + 64 + 128) * 2 + 2;                               // head
  CHECK(expected == 1478402);
  CHECK(count("hrnet") == expected);
}

TEST_CASE("models: unknown presets and too few classes are refused clearly") {
  Generator gen(1);
  CHECK_THROWS_WITH_AS(create_model({"resnet", 2, 120}, gen, Device::cpu),
                       doctest::Contains("unknown model 'resnet' (known: cnn"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(create_model({"cnn", 1, 120}, gen, Device::cpu),
                       doctest::Contains("at least 2 classes"), std::invalid_argument);
}

TEST_CASE("models: full presets map 120x120 images to [batch, classes] logits") {
  for (const char* preset : {"vit", "hrnet", "cnn"}) {
    CAPTURE(preset);
    Generator gen(2);
    auto model = create_model({preset, 3, 120}, gen, Device::cpu);
    model->eval();
    NoGradGuard no_grad;
    Tensor y = model->forward(Tensor::randn({2, 3, 120, 120}, gen));
    CHECK(y.shape() == Shape{2, 3});
    for (float v : y.to_vector()) CHECK(std::isfinite(v));
  }
}

TEST_CASE("models: one training step lowers the loss on a fixed batch") {
  const std::vector<ModelSpec> specs = {{"vit-micro", 2, 32},
                                        {"vit-micro", 2, 32, -1.f, 0.f, "conv"},
                                        {"hrnet-micro", 2, 32},
                                        {"cnn-micro", 2, 32}};
  for (const ModelSpec& spec : specs) {
    CAPTURE(spec.preset);
    CAPTURE(spec.stem);
    Generator gen(3);
    auto model = create_model(spec, gen, Device::cpu);
    Tensor x = Tensor::randn({4, 3, 32, 32}, gen);
    const std::vector<int32_t> y{0, 1, 1, 0};
    auto loss_now = [&] { return cross_entropy(model->forward(x), y); };
    model->eval();  // fixed statistics and no dropout: the same function before and after
    float before;
    {
      NoGradGuard no_grad;
      before = loss_now().item();
    }
    loss_now().backward();
    {
      NoGradGuard no_grad;  // a small plain gradient step
      for (Tensor& p : model->parameters()) p.copy_from(sub(p, mul_scalar(p.grad(), 0.01f)));
      CHECK(loss_now().item() < before);
    }
  }
}

TEST_CASE("models: every preset takes the spec's dropout rate") {
  // With dropout 0, two training-mode forwards at different steps (different dropout masks) give
  // the same logits; a preset that ignored the rate (vit and cnn did) would differ.
  Generator data(5);
  const Tensor images = Tensor::randn({2, 3, 32, 32}, data);
  for (const std::string& preset : model_presets()) {
    CAPTURE(preset);
    Generator gen(3);
    auto model = create_model({preset, 2, 32, 0.f}, gen, Device::cpu);
    model->train();
    NoGradGuard no_grad;
    model->set_step(0);
    const std::vector<float> a = model->forward(images).to_vector();
    model->set_step(1);
    CHECK(model->forward(images).to_vector() == a);
  }
}

TEST_CASE("models: drop path (ViT, HRNet) leaves the weights and eval mode as they were") {
  // Same seed with and without drop path: the same initial weights (drop path draws nothing from
  // the generator) and the same eval-mode logits; in training mode, samples' branches drop. The
  // architecture records the rate (the loader rebuilds with it).
  Generator data(6);
  const Tensor images = Tensor::randn({8, 3, 32, 32}, data);
  for (const char* preset : {"vit-micro", "hrnet-micro"}) {
    CAPTURE(std::string(preset));
    Generator gen_a(3), gen_b(3);
    auto plain = create_model({preset, 2, 32, 0.f}, gen_a, Device::cpu);
    auto dropping = create_model({preset, 2, 32, 0.f, 0.5f}, gen_b, Device::cpu);
    CHECK(dropping->architecture().at("drop_path") == 0.5);
    CHECK(plain->architecture().at("drop_path") == 0.0);
    NoGradGuard no_grad;
    plain->eval();
    dropping->eval();
    CHECK(dropping->forward(images).to_vector() == plain->forward(images).to_vector());
    plain->train();
    dropping->train();
    plain->set_step(0);
    dropping->set_step(0);
    const std::vector<float> dropped = dropping->forward(images).to_vector();
    CHECK(dropped != plain->forward(images).to_vector());
    dropping->set_step(0);  // the same step draws the same masks
    CHECK(dropping->forward(images).to_vector() == dropped);
  }
  Generator gen_c(3);
  CHECK_THROWS_WITH_AS(create_model({"cnn-micro", 2, 32, 0.f, 0.1f}, gen_c, Device::cpu),
                       doctest::Contains("'cnn-micro': the cnn presets have no residual blocks"),
                       std::invalid_argument);
}
