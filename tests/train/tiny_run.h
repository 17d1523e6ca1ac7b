// tiny_run.h: the tiny synthetic image folder and the small, fast TrainOptions the trainer tests
// share (test_trainer.cpp, bf16_training.cpp, graph_training.cpp).
#pragma once
#include <doctest/doctest.h>
#include <stb/stb_image_write.h>

#include <filesystem>
#include <string>
#include <vector>

#include "engine/cuda/builtin.h"
#include "engine/random.h"
#include "train/trainer.h"

namespace forge::test {

// Two classes that a micro model can tell apart: reddish and bluish noisy squares. `decoys`
// more images per class look like the other class ("decoy<i>.png").
inline void make_images(const std::filesystem::path& root, int per_class, int decoys = 0) {
  Generator gen(11);
  for (int c = 0; c < 2; ++c) {
    std::filesystem::create_directories(root / (c ? "blue" : "red"));
    for (int i = 0; i < per_class + decoys; ++i) {
      const bool decoy = i >= per_class;
      std::vector<uint8_t> px(20 * 20 * 3);
      for (size_t p = 0; p < px.size(); ++p) {
        const bool strong = int(p % 3) == ((c == 1) != decoy ? 2 : 0);
        px[p] = static_cast<uint8_t>((strong ? 150 : 40) + gen.below(80));
      }
      const std::string name =
          decoy ? "decoy" + std::to_string(i - per_class) : "im" + std::to_string(i);
      const std::filesystem::path file = root / (c ? "blue" : "red") / (name + ".png");
      REQUIRE(stbi_write_png(file.c_str(), 20, 20, 3, px.data(), 0));
    }
  }
}

inline train::TrainOptions tiny(const std::filesystem::path& data,
                                const std::filesystem::path& out) {
  train::TrainOptions o;
  o.model = "cnn-micro";
  o.data_dir = data.string();
  o.output = out.string();
  o.image_size = 16;
  o.epochs = 3;
  o.batch_size = 8;
  o.lr = 3e-3f;
  o.warmup_epochs = 0.5f;
  o.workers = 2;
  o.report_examples = 6;
  return o;
}

// tiny() for `model` on Device::sim, its backend registered (the test must link forge_backends).
inline train::TrainOptions tiny_on_sim(const std::filesystem::path& data,
                                       const std::filesystem::path& out, const std::string& model) {
  register_builtin_backends();
  train::TrainOptions o = tiny(data, out);
  o.device = Device::sim;
  o.model = model;
  return o;
}

}  // namespace forge::test
