// mixup.h: mixup (Zhang et al. 2018) and cutmix (Yun et al. 2019) of one training sample with a
// partner sample, as timm's Mixup with mode "elem" (a draw per sample) and correct_lam:
//
//   with probability `prob` the sample is mixed, otherwise lam = 1; when both alphas are set,
//   cutmix with probability `switch_prob`, else mixup; lam ~ Beta(alpha, alpha) of the chosen one.
//   mixup:  x = lam x_self + (1 - lam) x_partner
//   cutmix: a box of side ratio sqrt(1 - lam), centre uniform over the image, clipped to it, is
//           pasted from the partner; lam is then corrected to 1 - box area / image area.
//   target = lam y_self + (1 - lam) y_partner (the loss: engine/ops.h mixed_cross_entropy).
//
// Unlike timm, which pairs a batch with itself reversed, the partner is drawn from the whole
// training side by the sample's own seed (data/loader.h), so a sample's mix depends on the
// sample and the epoch only, never on the batch it lands in.
#pragma once
#include "engine/random.h"

namespace forge::data {

struct MixOptions {
  float mixup_alpha = 0.f;   // > 0: mixup with lam ~ Beta(alpha, alpha)
  float cutmix_alpha = 0.f;  // > 0: cutmix with lam ~ Beta(alpha, alpha)
  float prob = 1.f;          // the probability that a sample is mixed at all
  float switch_prob = 0.5f;  // both on: the probability of cutmix rather than mixup
  bool enabled() const { return mixup_alpha > 0.f || cutmix_alpha > 0.f; }
};

struct MixDraw {
  enum class Kind { none, mixup, cutmix } kind = Kind::none;
  float lam = 1.f;  // the weight of the sample's own image and label; the partner has 1 - lam
  int top = 0, bottom = 0, left = 0, right = 0;  // cutmix: the pasted rows [top, bottom), columns
};

// A Beta(a, b) variate, from two Gamma variates (Marsaglia and Tsang 2000).
double sample_beta(double a, double b, Generator& gen);

// One sample's draw for an image of `height` x `width`.
MixDraw draw_mix(const MixOptions& options, int height, int width, Generator& gen);

// Mixes the partner's planar image into the sample's (both channels x height x width floats).
void apply_mix(const MixDraw& draw, float* chw, const float* partner_chw, int channels, int height,
               int width);

}  // namespace forge::data
