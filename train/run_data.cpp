// run_data.cpp: the data layer wired up for a run: scan, decode into the cache, split, loaders.
#include "train/run_data.h"

#include <cstdio>
#include <stdexcept>

#include "data/split.h"
#include "engine/dist/communicator.h"
#include "train/progress.h"
#include "train/resume.h"
#include "train/trainer.h"

namespace forge::train {
namespace {

// A data::Loader seen as a BatchSource.
class LoaderSource final : public BatchSource {
 public:
  explicit LoaderSource(std::unique_ptr<data::Loader> loader) : loader_(std::move(loader)) {}
  void start_epoch(int epoch) override { loader_->start_epoch(epoch); }
  bool next(Batch& batch) override { return loader_->next(batch); }
  size_t size() const override { return loader_->size(); }
  int64_t batches_per_epoch() const override { return loader_->batches_per_epoch(); }
  std::string file(size_t index) const override {
    return loader_->cache().folder().samples[index].file;
  }
  std::vector<float> mean() const override {
    const auto& m = loader_->options().normalization.mean;
    return {m.begin(), m.end()};
  }
  std::vector<float> std() const override {
    const auto& s = loader_->options().normalization.std;
    return {s.begin(), s.end()};
  }

 private:
  std::unique_ptr<data::Loader> loader_;
};

}  // namespace

std::unique_ptr<BatchSource> make_eval_source(std::shared_ptr<const data::ImageCache> cache,
                                              std::vector<size_t> indices, int batch_size,
                                              int workers, const data::Normalization& norm) {
  data::LoaderOptions lo;
  lo.normalization = norm;
  lo.batch_size = batch_size;
  lo.workers = workers;
  lo.shuffle = false;
  lo.augment = false;
  return std::make_unique<LoaderSource>(
      std::make_unique<data::Loader>(std::move(cache), std::move(indices), lo));
}

RunData prepare_run_data(const TrainOptions& o, const std::filesystem::path& run_dir) {
  data::ImageFolder folder = data::scan_image_folder(o.data_dir, o.max_images_per_class);
  std::fprintf(stderr, "decoding %zu images at %dx%d with %d threads...\n", folder.samples.size(),
               o.image_size, o.image_size, o.workers);
  auto cache = std::make_shared<const data::ImageCache>(
      folder, data::CacheOptions{.image_size = o.image_size,
                                 .fit = data::parse_fit(o.fit),
                                 .workers = o.workers,
                                 .strict = o.strict,
                                 .progress = pass_progress("decoding")});
  // A resumed run reads its own split back (check_resume has verified its digest); the trainer
  // never rewrites it.
  const std::filesystem::path run_split = run_dir / "split.csv";
  const bool resumed = !o.resume.empty();
  data::Split split = resumed ? data::load_split(folder, run_split.string())
                      : o.split_file.empty()
                          ? data::stratified_split(folder, cache->usable_indices(),
                                                   o.train_fraction, o.seed, o.val_fraction)
                          : data::load_split(folder, o.split_file);
  // A reused split may list files that no longer decode: they were warned about; leave them out.
  auto keep_usable = [&](std::vector<size_t>& idx) {
    std::erase_if(idx, [&](size_t i) { return !cache->usable(i); });
  };
  keep_usable(split.train);
  keep_usable(split.val);
  keep_usable(split.test);
  if (split.train.empty() || split.test.empty())
    throw std::runtime_error("the split leaves no " +
                             std::string(split.train.empty() ? "training" : "test") +
                             " images: add images or change --train-fraction");
  if (split.val.empty())
    throw std::runtime_error(
        "the split leaves no validation images (they choose best.safetensors): raise "
        "--val-fraction, or, with --split, use a split.csv that has a 'val' side");

  RunData out;
  out.class_names = folder.classes;
  data::LoaderOptions lo;
  lo.batch_size = o.batch_size;
  lo.workers = o.workers;
  lo.drop_last = o.drop_last;
  lo.seed = o.seed;
  lo.augment_options = o.augment;
  lo.erasing = o.erasing;
  lo.mix = o.mix;
  lo.shard = dist::communicator().rank();  // this rank's share of each global batch
  lo.shards = dist::communicator().size();
  out.train =
      std::make_unique<LoaderSource>(std::make_unique<data::Loader>(cache, split.train, lo));
  out.val = make_eval_source(cache, split.val, o.batch_size, o.workers, lo.normalization);
  out.test = make_eval_source(cache, split.test, o.batch_size, o.workers, lo.normalization);
  out.normalization = lo.normalization;
  out.resumed = resumed;
  out.split_csv = data::format_split(folder, split);
  out.split_digest = resumed ? file_digest(run_split) : text_digest(out.split_csv);
  for (size_t i : split.train) out.train_files.push_back(folder.samples[i].file);
  return out;
}

}  // namespace forge::train
