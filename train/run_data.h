// run_data.h: the data side of a run, as the trainer and evaluator see it: batches of normalised
// images with labels, from the data layer's image folder, split and loader.
#pragma once
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/loader.h"
#include "engine/tensor.h"

namespace forge::train {

struct TrainOptions;

using data::Batch;

// Something that yields batches epoch by epoch.
class BatchSource {
 public:
  virtual ~BatchSource() = default;
  virtual void start_epoch(int epoch) = 0;
  virtual bool next(Batch& batch) = 0;
  virtual size_t size() const = 0;  // images per epoch
  virtual int64_t batches_per_epoch() const = 0;
  virtual std::string file(size_t index) const = 0;  // the image's path, for reports
  // Per-channel mean and std used for normalisation: to show images again in reports.
  virtual std::vector<float> mean() const = 0;
  virtual std::vector<float> std() const = 0;
};

// Everything a training run reads: the classes, a training source (shuffled, augmented), and
// validation and test sources (fixed order, no augmentation).
struct RunData {
  std::vector<std::string> class_names;
  std::unique_ptr<BatchSource> train, val, test;
  data::Normalization normalization;
  std::string split_csv;                 // split.csv's text, for the run folder
  std::string split_digest;              // of that text (train/resume.h)
  bool resumed = false;                  // split.csv was read back from the run folder
  std::vector<std::string> train_files;  // the training side's files, relative to the data folder
};

// Scans the image folder, draws the split (or reads back --split, or, resuming, the run folder's
// own split.csv) and builds the three sources. Errors (missing folder, empty class, an empty
// side, ...) say what to fix.
RunData prepare_run_data(const TrainOptions& options, const std::filesystem::path& run_dir);

// Batches of `indices` in a fixed order without augmentation (evaluation).
std::unique_ptr<BatchSource> make_eval_source(std::shared_ptr<const data::ImageCache> cache,
                                              std::vector<size_t> indices, int batch_size,
                                              int workers, const data::Normalization& norm);

// Copies a batch's images to a tensor [n, c, h, w] on `device`.
Tensor batch_tensor(const Batch& batch, Device device);

}  // namespace forge::train
