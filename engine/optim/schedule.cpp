// schedule.cpp: the learning-rate schedules of schedule.h (formulas there). Computed in double so
// that lr(s) is the formula rounded once to float.
#include "engine/optim/schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <stdexcept>
#include <string>

namespace forge {

static void check(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument("LrSchedule: " + what);
}

LrSchedule LrSchedule::cosine(float base_lr, int64_t total_steps, int64_t warmup_steps,
                              float floor_lr) {
  check(base_lr >= 0.f && floor_lr >= 0.f && floor_lr <= base_lr,
        "need 0 <= floor_lr <= base_lr, got base " + std::to_string(base_lr) + ", floor " +
            std::to_string(floor_lr));
  check(warmup_steps >= 0 && total_steps > warmup_steps,
        "need 0 <= warmup_steps < total_steps, got warm-up " + std::to_string(warmup_steps) +
            ", total " + std::to_string(total_steps));
  LrSchedule s(Kind::cosine, base_lr, warmup_steps);
  s.total_ = total_steps;
  s.floor_ = floor_lr;
  return s;
}

LrSchedule LrSchedule::step_decay(float base_lr, int64_t step_size, float gamma,
                                  int64_t warmup_steps) {
  check(base_lr >= 0.f && step_size > 0 && gamma > 0.f && warmup_steps >= 0,
        "step decay needs base_lr >= 0, step_size > 0, gamma > 0, warmup_steps >= 0; got base " +
            std::to_string(base_lr) + ", step size " + std::to_string(step_size) + ", gamma " +
            std::to_string(gamma) + ", warm-up " + std::to_string(warmup_steps));
  LrSchedule s(Kind::step_decay, base_lr, warmup_steps);
  s.step_size_ = step_size;
  s.gamma_ = gamma;
  return s;
}

float LrSchedule::lr(int64_t step) const {
  check(step >= 0, "negative step " + std::to_string(step));
  if (step < warmup_) return static_cast<float>(double(base_) * double(step + 1) / double(warmup_));
  const int64_t since = step - warmup_;
  if (kind_ == Kind::step_decay)
    return static_cast<float>(double(base_) * std::pow(double(gamma_), double(since / step_size_)));
  const double progress = std::min(1.0, double(since) / double(total_ - warmup_));
  return static_cast<float>(floor_ + (double(base_) - floor_) * 0.5 *
                                         (1.0 + std::cos(std::numbers::pi * progress)));
}

}  // namespace forge
