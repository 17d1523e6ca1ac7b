// bench_loader: images per second of the data pipeline on an image folder.
//   cold:   decoding every file into the cache (stb_image, resize to the model's input)
//   cached: one training epoch of batches from the cache (augmentation + normalisation)
// each with 1 and 2 worker threads. Timings are wall clock (steady_clock), one run each after
// the OS file cache is warm (a first untimed pass reads the files once).
//
//   build/bin/bench_loader --data ../shared/data/selfie2anime
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>

#include "data/loader.h"
#include "tools/program.h"

using namespace forge::data;
using Clock = std::chrono::steady_clock;

static double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// The program itself; program::run (tools/program.h) makes `app` and catches what escapes.
int bench_loader_main(CLI::App& app, int argc, char** argv) {
  std::string dir = "../shared/data/selfie2anime";
  int size = 120, batch = 32;
  app.add_option("--data", dir, "image folder")->capture_default_str();
  app.add_option("--img-size", size)->capture_default_str();
  app.add_option("-b,--batch-size", batch)->capture_default_str();
  app.parse(argc, argv);
  ImageFolder folder = scan_image_folder(dir);
  const double n = static_cast<double>(folder.samples.size());
  ImageCache warm(folder,
                  CacheOptions{.image_size = size, .workers = 2, .verbose = false, .progress = {}});
  std::printf("%s: %zu images, %dx%d, batch %d\n", dir.c_str(), folder.samples.size(), size, size,
              batch);
  std::printf("%-8s %8s %12s\n", "pass", "workers", "images/s");
  for (int workers : {1, 2}) {
    auto t = Clock::now();
    auto cache = std::make_shared<const ImageCache>(
        folder,
        CacheOptions{.image_size = size, .workers = workers, .verbose = false, .progress = {}});
    std::printf("%-8s %8d %12.1f\n", "cold", workers, n / seconds_since(t));
    LoaderOptions lo;
    lo.batch_size = batch;
    lo.workers = workers;
    Loader loader(cache, cache->usable_indices(), lo);
    t = Clock::now();
    loader.start_epoch(0);
    size_t images = 0;
    for (Batch b; loader.next(b);) images += b.n;
    std::printf("%-8s %8d %12.1f\n", "cached", workers, images / seconds_since(t));
  }
  if (!warm.skipped().empty()) std::printf("(%zu files skipped)\n", warm.skipped().size());
  return 0;
}

int main(int argc, char** argv) {
  return forge::program::run(
      "bench_loader", "Benchmark the image loader: cold decoding and cached, augmented epochs.",
      [&](CLI::App& app) { return bench_loader_main(app, argc, argv); });
}
