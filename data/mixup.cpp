// mixup.cpp: the per-sample mixup and cutmix draws and their application (see mixup.h).
#include "data/mixup.h"

#include <algorithm>
#include <cmath>

namespace forge::data {
namespace {

// Gamma(shape, 1) by Marsaglia and Tsang's squeeze method; shape < 1 through the boost
// Gamma(a) = Gamma(a + 1) U^(1/a).
double sample_gamma(double shape, Generator& gen) {
  if (shape < 1.0)
    return sample_gamma(shape + 1.0, gen) * std::pow(1.0 - gen.uniform(), 1.0 / shape);
  const double d = shape - 1.0 / 3.0, c = 1.0 / std::sqrt(9.0 * d);
  for (;;) {
    const double x = gen.normal(), t = 1.0 + c * x;
    if (t <= 0.0) continue;
    const double v = t * t * t, u = 1.0 - gen.uniform();  // u in (0, 1]: the log is finite
    if (std::log(u) < 0.5 * x * x + d - d * v + d * std::log(v)) return d * v;
  }
}

}  // namespace

double sample_beta(double a, double b, Generator& gen) {
  const double x = sample_gamma(a, gen), y = sample_gamma(b, gen);
  return x + y > 0.0 ? x / (x + y) : 0.5;  // both underflow only for tiny shapes: the mean
}

MixDraw draw_mix(const MixOptions& o, int height, int width, Generator& gen) {
  MixDraw d;
  if (!o.enabled() || gen.uniform() >= o.prob) return d;
  const bool cutmix =
      o.cutmix_alpha > 0.f && (o.mixup_alpha <= 0.f || gen.uniform() < o.switch_prob);
  const double alpha = cutmix ? o.cutmix_alpha : o.mixup_alpha;
  const double lam = sample_beta(alpha, alpha, gen);
  if (!cutmix) {
    d.kind = MixDraw::Kind::mixup;
    d.lam = float(lam);
    return d;
  }
  // timm's rand_bbox: cut sides int(side * sqrt(1 - lam)), centre uniform, clipped.
  const double ratio = std::sqrt(1.0 - lam);
  const int cut_h = int(height * ratio), cut_w = int(width * ratio);
  const int cy = int(gen.below(uint64_t(height))), cx = int(gen.below(uint64_t(width)));
  d.kind = MixDraw::Kind::cutmix;
  d.top = std::clamp(cy - cut_h / 2, 0, height);
  d.bottom = std::clamp(cy + cut_h / 2, 0, height);
  d.left = std::clamp(cx - cut_w / 2, 0, width);
  d.right = std::clamp(cx + cut_w / 2, 0, width);
  const double area = double(d.bottom - d.top) * (d.right - d.left);
  d.lam = float(1.0 - area / (double(height) * width));
  return d;
}

void apply_mix(const MixDraw& d, float* chw, const float* partner, int channels, int height,
               int width) {
  const int64_t plane = int64_t(height) * width;
  if (d.kind == MixDraw::Kind::mixup) {
    for (int64_t i = 0; i < channels * plane; ++i)
      chw[i] = d.lam * chw[i] + (1.f - d.lam) * partner[i];
  } else if (d.kind == MixDraw::Kind::cutmix) {
    for (int c = 0; c < channels; ++c)
      for (int y = d.top; y < d.bottom; ++y)
        std::copy(partner + c * plane + int64_t(y) * width + d.left,
                  partner + c * plane + int64_t(y) * width + d.right,
                  chw + c * plane + int64_t(y) * width + d.left);
  }
}

}  // namespace forge::data
