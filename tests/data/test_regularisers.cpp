// test_regularisers.cpp: the per-sample regularising augmentations: mixup and cutmix draws
// (data/mixup.h: lam's distribution, the box area, the mixed pixels and labels), random erasing
// (data/random_erasing.h: area and aspect within bounds, p = 0 the identity), and the loader
// giving every image the same mix and erasure whatever batch it lands in.
#include <doctest/doctest.h>

#include <cmath>
#include <map>

#include "data/dataset.h"
#include "data/loader.h"
#include "data/mixup.h"
#include "data/random_erasing.h"
#include "tests/data/helpers.h"

using namespace forge;
using namespace forge::data;
using namespace forge::data::test;

namespace {

struct Moments {
  double mean = 0, variance = 0;
};

Moments moments(const std::vector<double>& xs) {
  Moments m;
  for (double x : xs) m.mean += x;
  m.mean /= double(xs.size());
  for (double x : xs) m.variance += (x - m.mean) * (x - m.mean);
  m.variance /= double(xs.size());
  return m;
}

}  // namespace

TEST_CASE("mixup: Beta variates have the mean and variance of Beta(a, b)") {
  // Beta(a, b): mean a / (a + b), variance ab / ((a + b)^2 (a + b + 1)); a < 1 takes the boost.
  for (auto [a, b] : std::vector<std::pair<double, double>>{{0.2, 0.2}, {0.8, 0.8}, {2, 5}}) {
    CAPTURE(a);
    Generator gen(17);
    std::vector<double> xs(20000);
    for (double& x : xs) {
      x = sample_beta(a, b, gen);
      REQUIRE((x >= 0.0 && x <= 1.0));
    }
    const Moments m = moments(xs);
    const double mean = a / (a + b), var = a * b / ((a + b) * (a + b) * (a + b + 1));
    // 20,000 draws: the mean's standard error is sqrt(var / 20000) < 0.0035.
    CHECK(m.mean == doctest::Approx(mean).epsilon(0.02));
    CHECK(m.variance == doctest::Approx(var).epsilon(0.05));
  }
}

TEST_CASE("mixup: lam ~ Beta(alpha, alpha), mixed with the given probability, never cutmix") {
  MixOptions o{.mixup_alpha = 0.8f, .prob = 0.6f};
  Generator gen(3);
  std::vector<double> lams;
  int unmixed = 0;
  for (int i = 0; i < 20000; ++i) {
    const MixDraw d = draw_mix(o, 10, 10, gen);
    REQUIRE(d.kind != MixDraw::Kind::cutmix);
    if (d.kind == MixDraw::Kind::none) {
      CHECK(d.lam == 1.f);
      ++unmixed;
    } else {
      lams.push_back(d.lam);
    }
  }
  CHECK(std::abs(unmixed - 0.4 * 20000) < 300);  // binomial sd 69
  const Moments m = moments(lams);
  CHECK(m.mean == doctest::Approx(0.5).epsilon(0.02));
  CHECK(m.variance == doctest::Approx(1.0 / (4 * (2 * 0.8 + 1))).epsilon(0.05));
  CHECK(draw_mix(MixOptions{}, 10, 10, gen).kind == MixDraw::Kind::none);  // both alphas 0: off
}

TEST_CASE("cutmix: the pasted box's area is 1 - lam, inside the image; switch_prob picks it") {
  MixOptions o{.mixup_alpha = 0.8f, .cutmix_alpha = 1.f, .switch_prob = 0.25f};
  Generator gen(4);
  int cutmix = 0;
  const int h = 24, w = 30, n = 8000;
  for (int i = 0; i < n; ++i) {
    const MixDraw d = draw_mix(o, h, w, gen);
    REQUIRE(d.kind != MixDraw::Kind::none);  // prob 1
    if (d.kind != MixDraw::Kind::cutmix) continue;
    ++cutmix;
    REQUIRE((0 <= d.top && d.top <= d.bottom && d.bottom <= h));
    REQUIRE((0 <= d.left && d.left <= d.right && d.right <= w));
    const double area = double(d.bottom - d.top) * (d.right - d.left) / (h * w);
    CHECK(double(d.lam) == doctest::Approx(1.0 - area).epsilon(1e-6));
  }
  CHECK(std::abs(cutmix - 0.25 * n) < 200);  // binomial sd 39
}

TEST_CASE("mixup and cutmix: the mixed pixels are the stated mixtures") {
  const int c = 3, h = 6, w = 5, n = c * h * w;
  std::vector<float> self(n), partner(n);
  for (int i = 0; i < n; ++i) self[i] = float(i), partner[i] = float(1000 + i);
  MixDraw mix{.kind = MixDraw::Kind::mixup, .lam = 0.25f};
  std::vector<float> mixed = self;
  apply_mix(mix, mixed.data(), partner.data(), c, h, w);
  for (int i = 0; i < n; ++i) CHECK(mixed[i] == doctest::Approx(0.25 * i + 0.75 * (1000 + i)));
  MixDraw cut{
      .kind = MixDraw::Kind::cutmix, .lam = 0.6f, .top = 1, .bottom = 4, .left = 2, .right = 4};
  std::vector<float> pasted = self;
  apply_mix(cut, pasted.data(), partner.data(), c, h, w);
  int from_partner = 0;
  for (int ch = 0; ch < c; ++ch)
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        const int i = (ch * h + y) * w + x;
        const bool inside = y >= 1 && y < 4 && x >= 2 && x < 4;
        CHECK(pasted[i] == (inside ? partner[i] : self[i]));
        from_partner += inside;
      }
  CHECK(from_partner == 3 * 3 * 2);
}

TEST_CASE("random erasing: p = 0 is the identity; boxes lie within the area and aspect bounds") {
  const int c = 3, h = 40, w = 50;
  std::vector<float> img(c * h * w, 7.f);
  Generator gen(5);
  ErasingOptions off;  // prob 0
  for (int i = 0; i < 100; ++i) CHECK(random_erase(img.data(), c, h, w, off, gen).height == 0);
  CHECK(std::count(img.begin(), img.end(), 7.f) == c * h * w);

  for (const std::string mode : {"pixel", "rand", "const"}) {
    CAPTURE(mode);
    ErasingOptions o{.prob = 1.f, .mode = mode};
    int erased = 0;
    for (int i = 0; i < 500; ++i) {
      std::vector<float> x(c * h * w, 7.f);
      const ErasedBox b = random_erase(x.data(), c, h, w, o, gen);
      if (b.height == 0) continue;
      ++erased;
      REQUIRE((b.top >= 0 && b.left >= 0 && b.top + b.height <= h && b.left + b.width <= w));
      // Rounded sides: the area within the bounds up to the rounding of each side by 1/2.
      const double area = double(b.height) * b.width;
      CHECK(area <= (std::sqrt(o.max_area * h * w / o.min_aspect) + 0.5) *
                            (std::sqrt(o.max_area * h * w * o.min_aspect) + 0.5) +
                        1e-9);
      CHECK(area >= 1.0);
      const double aspect = double(b.height) / b.width;
      CHECK(aspect >= o.min_aspect * 0.5);
      CHECK(aspect <= 2.0 / o.min_aspect);
      // Exactly the box changed (7 never comes out of a normal draw); "const" writes zeros.
      int changed = 0;
      for (int ch = 0; ch < c; ++ch)
        for (int y = 0; y < h; ++y)
          for (int xx = 0; xx < w; ++xx) {
            const float v = x[(ch * h + y) * w + xx];
            const bool inside =
                y >= b.top && y < b.top + b.height && xx >= b.left && xx < b.left + b.width;
            CHECK((v != 7.f) == inside);
            if (inside && mode == "const") CHECK(v == 0.f);
            changed += inside;
          }
      CHECK(changed == c * b.height * b.width);
    }
    CHECK(erased > 450);  // 10 attempts: nearly always one fits at these sizes
  }
  ErasingOptions bad{.prob = 1.f, .mode = "noise"};
  CHECK_THROWS_WITH_AS(random_erase(img.data(), c, h, w, bad, gen),
                       doctest::Contains("mode 'noise'"), std::invalid_argument);
}

TEST_CASE("loader: mixup, cutmix and erasing are a function of the image, not of its batch") {
  TempDir dir;
  make_folder(dir.path, {"a", "b"}, 9);
  ImageFolder f = scan_image_folder(dir.path.string());
  auto cache =
      std::make_shared<const ImageCache>(f, CacheOptions{.image_size = 12, .verbose = false});
  struct Sample {
    std::vector<float> pixels;
    int32_t label, mix_label;
    float mix_weight;
  };
  auto epoch_of = [&](int batch_size, const MixOptions& mix) {
    LoaderOptions o;
    o.batch_size = batch_size;
    o.seed = 9;
    o.mix = mix;
    o.erasing.prob = 0.5f;
    Loader loader(cache, cache->usable_indices(), o);
    loader.start_epoch(2);
    std::map<size_t, Sample> out;
    const size_t px = 3 * 12 * 12;
    for (Batch b; loader.next(b);) {
      REQUIRE(b.mix_labels.size() == size_t(b.n));
      REQUIRE(b.mix_weights.size() == size_t(b.n));
      for (int i = 0; i < b.n; ++i)
        out[b.indices[i]] = {
            std::vector<float>(b.images.begin() + i * px, b.images.begin() + (i + 1) * px),
            b.labels[i], b.mix_labels[i], b.mix_weights[i]};
    }
    return out;
  };
  const MixOptions both{.mixup_alpha = 0.8f, .cutmix_alpha = 1.f, .prob = 0.8f};
  const auto small = epoch_of(4, both), large = epoch_of(7, both);
  REQUIRE(small.size() == 18);
  int mixed = 0, across_classes = 0;
  for (const auto& [index, s] : small) {
    const Sample& t = large.at(index);
    CHECK(s.pixels == t.pixels);
    CHECK(s.mix_label == t.mix_label);
    CHECK(s.mix_weight == t.mix_weight);
    CHECK((s.mix_weight > 0.f && s.mix_weight <= 1.f));
    mixed += s.mix_weight < 1.f;
    across_classes += s.mix_weight < 1.f && s.mix_label != s.label;
  }
  CHECK(mixed > 0);
  CHECK(across_classes > 0);  // labels are mixed, not only pixels
  // Off, the batch carries no mix targets.
  LoaderOptions plain;
  Loader loader(cache, cache->usable_indices(), plain);
  loader.start_epoch(0);
  Batch b;
  REQUIRE(loader.next(b));
  CHECK(b.mix_labels.empty());
}
