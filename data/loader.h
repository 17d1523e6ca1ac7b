// loader.h: the image cache and the threaded batch loader.
//
// ImageCache decodes every image of a folder once (in parallel), resized to the model's input,
// and keeps the 8-bit pixels in memory (selfie2anime at 120x120: 6,000 x 43 KB = 260 MB). Files
// that do not decode are skipped with one warning line each and a count at the end, or refused
// in strict mode; a class none of whose files decodes is refused (std::runtime_error naming its
// folder), never left with no images.
//
// Loader turns a list of cached images into batches: a new shuffle each epoch, augmentation for
// training (then normalisation, random erasing, mixup/cutmix with a partner image), and worker
// threads that prepare batches ahead of the training step.
// Every random choice derives from (seed, epoch, image index), so the batches are the same
// whatever the number of workers or their timing.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "data/dataset.h"
#include "data/image.h"
#include "data/mixup.h"
#include "data/random_erasing.h"
#include "data/transforms.h"

namespace forge::data {

struct CacheOptions {
  int image_size = 120;
  Fit fit = Fit::crop;
  int workers = 2;
  bool strict = false;  // throw on the first unreadable file instead of skipping it
  bool verbose = true;  // print warnings and a progress line to stderr
  // Called (images decoded, images to decode) from the constructing thread while decoding, and
  // once with both equal at the end.
  std::function<void(size_t, size_t)> progress;
};

class ImageCache {
 public:
  // Decodes every sample of the folder, or only those listed in `subset` (the rest stay unusable).
  ImageCache(const ImageFolder& folder, const CacheOptions& options,
             const std::vector<size_t>* subset = nullptr);
  const Image& image(size_t index) const { return images_[index]; }
  bool usable(size_t index) const { return images_[index].width > 0; }
  // Indices of the samples that decoded.
  std::vector<size_t> usable_indices() const;
  const std::vector<std::string>& skipped() const { return skipped_; }  // "file: reason"
  const ImageFolder& folder() const { return folder_; }
  int image_size() const { return size_; }

 private:
  ImageFolder folder_;
  int size_;
  std::vector<Image> images_;
  std::vector<std::string> skipped_;
};

struct Batch {
  std::vector<float> images;    // n x 3 x size x size, normalised
  std::vector<int32_t> labels;  // n
  std::vector<size_t> indices;  // sample index of each image in the folder
  std::vector<uint64_t> seeds;  // sample_seed of each image: the key of its own randomness
  // With mixup or cutmix (data/mixup.h): each image's partner label and the weight of its own
  // label (1: not mixed); empty otherwise.
  std::vector<int32_t> mix_labels;
  std::vector<float> mix_weights;
  int n = 0, c = 3, h = 0, w = 0;
};

struct LoaderOptions {
  int batch_size = 32;
  int workers = 2;
  int prefetch = 4;     // batches prepared ahead of the consumer
  bool shuffle = true;  // a new order each epoch
  bool augment = true;  // training augmentations
  bool drop_last = false;
  uint64_t seed = 0;
  AugmentOptions augment_options;
  ErasingOptions erasing;  // after normalisation, with augment only
  MixOptions mix;          // with augment only: each image mixed with a partner of `indices`
  Normalization normalization;
  // Data-parallel training (docs/DISTRIBUTED.md): batch_size is the global batch, and this loader
  // builds only shard `shard` of `shards`, its contiguous share of every global batch (see
  // shard_range); every image keeps the randomness it has in the whole batch.
  int shard = 0, shards = 1;
};

// The rows [begin, end) of a global batch of `rows` that shard `shard` of `shards` takes: the
// first rows % shards shards take one row more than the others, so shares differ by one at most
// (and are empty where rows < shards).
struct RowRange {
  size_t begin, end;
};
RowRange shard_range(size_t rows, int shard, int shards);

class Loader {
 public:
  Loader(std::shared_ptr<const ImageCache> cache, std::vector<size_t> indices,
         const LoaderOptions& options);
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  // Starts (or restarts) producing the batches of `epoch`.
  void start_epoch(int epoch);
  // The next batch of the epoch, in order; false when the epoch is done.
  bool next(Batch& batch);
  size_t size() const { return indices_.size(); }
  int64_t batches_per_epoch() const;
  const ImageCache& cache() const { return *cache_; }
  const LoaderOptions& options() const { return options_; }

 private:
  void stop_workers();
  void work();
  Batch build(int64_t batch_number) const;
  // One image of the epoch as the model sees it, before mixing: augmented, normalised, erased.
  void prepare(size_t index, uint64_t seed, float* chw) const;

  std::shared_ptr<const ImageCache> cache_;
  std::vector<size_t> indices_;
  LoaderOptions options_;
  // State of the current epoch, shared with the workers under mutex_.
  std::vector<size_t> order_;
  int epoch_ = 0;
  int64_t total_ = 0, next_to_build_ = 0, next_to_return_ = 0;
  std::map<int64_t, Batch> ready_;
  bool stopping_ = false;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<std::thread> workers_;
};

// The seed of image `index` in `epoch`: its augmentation does not depend on the batch it lands
// in or the thread that makes it.
uint64_t sample_seed(uint64_t seed, int epoch, size_t index);

}  // namespace forge::data
