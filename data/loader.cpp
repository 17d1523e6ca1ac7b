// loader.cpp: decoding into the cache, and the batch-producing worker threads.
#include "data/loader.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <stdexcept>

#include "data/decode.h"
#include "engine/random.h"

namespace forge::data {

ImageCache::ImageCache(const ImageFolder& folder, const CacheOptions& o,
                       const std::vector<size_t>* subset)
    : folder_(folder), size_(o.image_size), images_(folder.samples.size()) {
  std::vector<size_t> todo;
  if (subset)
    todo = *subset;
  else
    for (size_t i = 0; i < images_.size(); ++i) todo.push_back(i);
  std::vector<std::string> errors(images_.size());
  std::atomic<size_t> next{0}, attempted{0};
  auto decode_some = [&](bool reports) {
    for (size_t k; (k = next++) < todo.size();) {
      const size_t i = todo.at(k);
      const std::string path =
          (std::filesystem::path(folder_.root) / folder_.samples[i].file).string();
      try {
        images_[i] = resize_square(decode_image_file(path), size_, o.fit);
      } catch (const DecodeError& e) {
        errors[i] = e.what();
      }
      if (const size_t d = ++attempted; reports && o.progress && d < todo.size())
        o.progress(d, todo.size());
    }
  };
  std::vector<std::thread> threads;
  for (int t = 1; t < std::max(1, o.workers); ++t) threads.emplace_back(decode_some, false);
  decode_some(true);
  for (auto& t : threads) t.join();
  if (o.progress && !todo.empty()) o.progress(todo.size(), todo.size());
  for (size_t i = 0; i < errors.size(); ++i) {
    if (errors[i].empty()) continue;
    if (o.strict) throw std::runtime_error("unreadable image (strict mode): " + errors[i]);
    if (o.verbose) std::fprintf(stderr, "warning: skipping %s\n", errors[i].c_str());
    skipped_.push_back(errors[i]);
  }
  if (o.verbose && !skipped_.empty())
    std::fprintf(stderr, "warning: skipped %zu of %zu files that are not readable images\n",
                 skipped_.size(), todo.size());
  // A class whose every file failed to decode would be trained (or scored) with no images: the
  // scan could not see it, as only decoding tells an image from a corrupt file.
  std::vector<size_t> tried(folder_.classes.size()), decoded(folder_.classes.size());
  std::vector<size_t> first_failure(folder_.classes.size());
  for (size_t k = todo.size(); k-- > 0;) {
    const int label = folder_.samples[todo[k]].label;
    ++tried[label];
    if (usable(todo[k]))
      ++decoded[label];
    else
      first_failure[label] = todo[k];
  }
  for (size_t c = 0; c < tried.size(); ++c)
    if (tried[c] > 0 && decoded[c] == 0)
      throw std::runtime_error(
          "class folder '" + (std::filesystem::path(folder_.root) / folder_.classes[c]).string() +
          "' has no readable images: all " + std::to_string(tried[c]) +
          " of its files failed to decode (first: " + errors[first_failure[c]] + ")");
}

std::vector<size_t> ImageCache::usable_indices() const {
  std::vector<size_t> out;
  for (size_t i = 0; i < images_.size(); ++i)
    if (usable(i)) out.push_back(i);
  return out;
}

uint64_t sample_seed(uint64_t seed, int epoch, size_t index) {
  return splitmix64(splitmix64(seed ^ 0xA5A5A5A5ull) ^ splitmix64((uint64_t(epoch) << 32) ^ index));
}

Loader::Loader(std::shared_ptr<const ImageCache> cache, std::vector<size_t> indices,
               const LoaderOptions& options)
    : cache_(std::move(cache)), indices_(std::move(indices)), options_(options) {
  if (options_.batch_size <= 0) throw std::invalid_argument("batch size must be positive");
  for (size_t i : indices_)
    if (i >= cache_->folder().samples.size() || !cache_->usable(i))
      throw std::invalid_argument("loader: sample " + std::to_string(i) + " is not a usable image");
}

Loader::~Loader() {
  stop_workers();
}

int64_t Loader::batches_per_epoch() const {
  const int64_t n = static_cast<int64_t>(indices_.size()), b = options_.batch_size;
  return options_.drop_last ? n / b : (n + b - 1) / b;
}

void Loader::stop_workers() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
  workers_.clear();
  stopping_ = false;
}

void Loader::start_epoch(int epoch) {
  stop_workers();
  order_ = indices_;
  if (options_.shuffle) {  // Fisher-Yates with the epoch's own generator
    Generator gen(splitmix64(options_.seed) ^ splitmix64(uint64_t(epoch) + 0x5151));
    for (size_t i = order_.size(); i > 1; --i) std::swap(order_[i - 1], order_[gen.below(i)]);
  }
  epoch_ = epoch;
  total_ = batches_per_epoch();
  next_to_build_ = next_to_return_ = 0;
  ready_.clear();
  for (int t = 0; t < std::max(1, options_.workers); ++t)
    workers_.emplace_back(&Loader::work, this);
}

void Loader::prepare(size_t index, uint64_t seed, float* chw) const {
  const Image& img = cache_->image(index);
  if (!options_.augment) return normalize_into(img, options_.normalization, chw);
  Generator gen(seed);
  normalize_into(augment(img, options_.augment_options, gen), options_.normalization, chw);
  if (options_.erasing.prob > 0.f)
    random_erase(chw, 3, cache_->image_size(), cache_->image_size(), options_.erasing, gen);
}

RowRange shard_range(size_t rows, int shard, int shards) {
  const size_t base = rows / size_t(shards), extra = rows % size_t(shards), s = size_t(shard);
  const size_t begin = s * base + std::min(s, extra);
  return {begin, begin + base + (s < extra ? 1 : 0)};
}

Batch Loader::build(int64_t k) const {
  const size_t global_begin = size_t(k) * options_.batch_size;
  const size_t global_end = std::min(order_.size(), global_begin + options_.batch_size);
  const RowRange share = shard_range(global_end - global_begin, options_.shard, options_.shards);
  const size_t begin = global_begin + share.begin, end = global_begin + share.end;
  const int s = cache_->image_size();
  const bool mixing = options_.augment && options_.mix.enabled();
  Batch b;
  b.n = static_cast<int>(end - begin);
  b.h = b.w = s;
  b.images.resize(size_t(b.n) * 3 * s * s);
  std::vector<float> partner_pixels(mixing ? size_t(3) * s * s : 0);
  for (size_t j = begin; j < end; ++j) {
    const size_t index = order_[j];
    float* dst = &b.images[(j - begin) * 3 * s * s];
    const uint64_t seed = sample_seed(options_.seed, epoch_, index);
    prepare(index, seed, dst);
    if (mixing) {  // the partner and the draw from the sample's own stream (data/mixup.h)
      Generator mix_gen(splitmix64(seed ^ 0x6D69'7875'7063'7574ull));
      const size_t partner = indices_[mix_gen.below(indices_.size())];
      const MixDraw draw = draw_mix(options_.mix, s, s, mix_gen);
      if (draw.kind != MixDraw::Kind::none) {
        prepare(partner, sample_seed(options_.seed, epoch_, partner), partner_pixels.data());
        apply_mix(draw, dst, partner_pixels.data(), 3, s, s);
      }
      b.mix_labels.push_back(cache_->folder().samples[partner].label);
      b.mix_weights.push_back(draw.lam);
    }
    b.labels.push_back(cache_->folder().samples[index].label);
    b.indices.push_back(index);
    b.seeds.push_back(seed);
  }
  return b;
}

void Loader::work() {
  for (;;) {
    int64_t k;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      // Build ahead, but no further than `prefetch` batches past what the consumer has taken.
      cv_.wait(lock, [&] {
        return stopping_ || next_to_build_ >= total_ ||
               next_to_build_ < next_to_return_ + options_.prefetch;
      });
      if (stopping_ || next_to_build_ >= total_) return;
      k = next_to_build_++;
    }
    Batch b = build(k);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ready_.emplace(k, std::move(b));
    }
    cv_.notify_all();
  }
}

bool Loader::next(Batch& batch) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (next_to_return_ >= total_) return false;
  cv_.wait(lock, [&] { return ready_.count(next_to_return_) > 0; });
  auto it = ready_.find(next_to_return_);
  batch = std::move(it->second);
  ready_.erase(it);
  ++next_to_return_;
  lock.unlock();
  cv_.notify_all();
  return true;
}

}  // namespace forge::data
