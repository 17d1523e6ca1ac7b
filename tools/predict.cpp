// predict: the class and its probability for image files, or every file of folders.
//
//   build/bin/predict --checkpoint runs/vit/last.safetensors photo.jpg more_images/
// prints one line per image: path, predicted class, probability (tab-separated).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <filesystem>

#include "data/decode.h"
#include "data/files.h"
#include "engine/autograd.h"
#include "engine/cuda/builtin.h"
#include "tools/program.h"
#include "train/evaluate.h"
#include "train/saved_model.h"

using namespace forge;
namespace fs = std::filesystem;

// The program itself; program::run (tools/program.h) makes `app` and catches what escapes.
int predict_main(CLI::App& app, int argc, char** argv) {
  forge::register_builtin_backends();  // --device sim / cuda, when built in
  std::string checkpoint, device = "cpu";
  std::vector<std::string> inputs;
  int batch_size = 32;
  app.add_option("--checkpoint", checkpoint, "a .safetensors written by train")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("images", inputs, "image files or folders")->required();
  app.add_option("-b,--batch-size", batch_size)->check(CLI::Range(1, 4096))->capture_default_str();
  app.add_option("--device", device)
      ->check(CLI::IsMember({"cpu", "sim", "cuda"}))
      ->capture_default_str();
  app.parse(argc, argv);
  {
    const Device dev = parse_device(device);
    train::SavedModel saved = train::load_saved_model(checkpoint, dev);
    std::vector<std::string> files;
    for (const auto& in : inputs) {
      if (fs::is_directory(in)) {
        data::FileList found = data::list_regular_files(in, /*recursive=*/true);
        data::warn_skipped(found.skipped);  // FIFOs, devices, symlink loops: never opened
        for (const auto& f : found.files) files.push_back((fs::path(in) / f).string());
      } else {
        files.push_back(in);
      }
    }
    const int s = saved.image_size, classes = static_cast<int>(saved.class_names.size());
    int failed = 0;
    NoGradGuard no_grad;
    for (size_t start = 0; start < files.size(); start += batch_size) {
      std::vector<std::string> names;
      std::vector<float> pixels;
      for (size_t i = start; i < std::min(files.size(), start + batch_size); ++i) {
        try {
          data::Image img = data::resize_square(data::decode_image_file(files[i]), s, saved.fit);
          pixels.resize(pixels.size() + size_t(3) * s * s);
          data::normalize_into(img, saved.normalization,
                               &pixels[pixels.size() - size_t(3) * s * s]);
          names.push_back(files[i]);
        } catch (const data::DecodeError& e) {
          std::fprintf(stderr, "warning: skipping %s\n", e.what());
          ++failed;
        }
      }
      if (names.empty()) continue;
      const int n = static_cast<int>(names.size());
      Tensor logits = saved.model->forward(Tensor::from_vector(pixels, {n, 3, s, s}, dev));
      const std::vector<float> p = train::softmax_rows(logits.to_vector(), classes);
      for (int i = 0; i < n; ++i) {
        const float* row = &p[size_t(i) * classes];
        const int best = static_cast<int>(std::max_element(row, row + classes) - row);
        std::printf("%s\t%s\t%.4f\n", names[i].c_str(), saved.class_names[best].c_str(), row[best]);
      }
    }
    if (failed) std::fprintf(stderr, "warning: %d file(s) were not readable images\n", failed);
    return files.empty() || failed == int(files.size()) ? 1 : 0;
  }
}

int main(int argc, char** argv) {
  return program::run("predict", "Classify images with a trained checkpoint.",
                      [&](CLI::App& app) { return predict_main(app, argc, argv); });
}
