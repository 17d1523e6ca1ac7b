// eval: the classification report and confusion matrix of a checkpoint on an image folder.
//
// The test side of a run's split:
//   build/bin/eval --checkpoint runs/vit/last.safetensors --data ../shared/data/selfie2anime
//                  --split runs/vit/split.csv
// Every image of a folder, as JSON:
//   build/bin/eval --checkpoint model.safetensors --data other_images/ --json
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>

#include "data/split.h"
#include "engine/cuda/builtin.h"
#include "tools/program.h"
#include "train/evaluate.h"
#include "train/progress.h"
#include "train/saved_model.h"

using namespace forge;

// The program itself; program::run (tools/program.h) makes `app` and catches what escapes.
int eval_main(CLI::App& app, int argc, char** argv) {
  forge::register_builtin_backends();  // --device sim / cuda, when built in
  std::string checkpoint, data_dir, split_file, device = "cpu";
  int batch_size = 64, workers = 2;
  bool json = false, strict = false;
  app.add_option("--checkpoint", checkpoint, "a .safetensors written by train")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("--data", data_dir, "image folder, one sub-folder per class")->required();
  app.add_option("--split", split_file, "evaluate the test side of this split.csv")
      ->check(CLI::ExistingFile);
  app.add_flag("--json", json, "print the report as JSON");
  app.add_option("-b,--batch-size", batch_size)->check(CLI::Range(1, 4096))->capture_default_str();
  app.add_option("-j,--workers", workers)->check(CLI::Range(1, 64))->capture_default_str();
  app.add_option("--device", device)
      ->check(CLI::IsMember({"cpu", "sim", "cuda"}))
      ->capture_default_str();
  app.add_flag("--strict", strict, "refuse unreadable images instead of skipping them");
  program::PrecisionFlags precision_flags;
  program::add_precision_flags(app, precision_flags);
  app.parse(argc, argv);
  const Device dev = parse_device(device);
  const train::ScopedPrecision precision = program::scoped_precision(dev, precision_flags);
  train::SavedModel saved = train::load_saved_model(checkpoint, dev);
  data::ImageFolder folder = data::scan_image_folder(data_dir);
  if (folder.classes != saved.class_names) {
    std::string want, got;
    for (auto& c : saved.class_names) want += " " + c;
    for (auto& c : folder.classes) got += " " + c;
    throw std::runtime_error("the checkpoint knows classes" + want + " but " + data_dir +
                             " has class folders" + got);
  }
  std::vector<size_t> wanted;  // the split's test side, or every file
  if (!split_file.empty())
    wanted = data::load_split(folder, split_file).test;
  else
    for (size_t i = 0; i < folder.samples.size(); ++i) wanted.push_back(i);
  if (split_file.empty()) {  // the checkpoint lists its training images: figures would flatter
    std::vector<std::string> files;
    for (const auto& s : folder.samples) files.push_back(s.file);
    if (const size_t trained = train::count_training_images(saved, files); trained > 0)
      std::fprintf(stderr,
                   "eval: warning: %zu of the %zu images in %s were training images of this "
                   "checkpoint; to evaluate its test side only, pass --split with the run's "
                   "split.csv\n",
                   trained, files.size(), data_dir.c_str());
  }
  auto cache = std::make_shared<const data::ImageCache>(
      folder,
      data::CacheOptions{.image_size = saved.image_size,
                         .fit = saved.fit,
                         .workers = workers,
                         .strict = strict,
                         .verbose = true,
                         .progress = train::pass_progress("decoding")},
      &wanted);
  std::vector<size_t> indices = cache->usable_indices();
  if (indices.empty()) throw std::runtime_error("no readable images to evaluate");
  auto source = train::make_eval_source(cache, indices, batch_size, workers, saved.normalization);
  train::Evaluation ev = train::evaluate(*saved.model, *source, saved.class_names, dev, 0,
                                         train::pass_progress("evaluating"));
  if (json) {
    nlohmann::json j = train::report_json(ev.report);
    j["loss"] = ev.loss;
    j["checkpoint"] = checkpoint;
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    std::printf("%s: %zu images, mean loss %.4f\n\n%s", checkpoint.c_str(), indices.size(), ev.loss,
                train::format_report(ev.report).c_str());
  }
  return 0;
}

int main(int argc, char** argv) {
  return program::run(
      "eval",
      "Evaluate a trained classifier: per-class precision, recall, F1, accuracy and the "
      "confusion matrix.",
      [&](CLI::App& app) { return eval_main(app, argc, argv); });
}
