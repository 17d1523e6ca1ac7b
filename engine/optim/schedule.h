// schedule.h: learning-rate schedules, evaluated per optimizer step.
//
// Both schedules start with a linear warm-up over the first W steps, from base/W up to base
// (early steps of Adam-type optimizers on freshly initialised networks are unstable at full lr):
//   lr(s) = base (s + 1) / W                                    for s < W
// then decay, with s' = s - W counted from the end of the warm-up:
//   cosine:  lr(s) = floor + (base - floor) (1 + cos(pi min(s' / (T - W), 1))) / 2
//            (reaches `floor` at s = T, the total number of steps, and stays there)
//   step:    lr(s) = base gamma^floor(s' / N)          (times gamma every N steps)
// Steps s count from 0: lr(s) is the rate for the (s+1)-th call of Optimizer::step(). A trainer
// working in epochs converts them to steps (epochs * steps per epoch).
#pragma once
#include <cstdint>

namespace forge {

class LrSchedule {
 public:
  // Cosine decay from base_lr to floor_lr over total_steps, after warmup_steps of warm-up.
  static LrSchedule cosine(float base_lr, int64_t total_steps, int64_t warmup_steps,
                           float floor_lr = 0.f);
  // Multiply by gamma every step_size steps, after warmup_steps of warm-up.
  static LrSchedule step_decay(float base_lr, int64_t step_size, float gamma,
                               int64_t warmup_steps = 0);

  float lr(int64_t step) const;

 private:
  enum class Kind { cosine, step_decay };
  LrSchedule(Kind kind, float base, int64_t warmup) : kind_(kind), base_(base), warmup_(warmup) {}

  Kind kind_;
  float base_;
  int64_t warmup_;
  int64_t total_ = 0;      // cosine
  float floor_ = 0.f;      // cosine
  int64_t step_size_ = 1;  // step decay
  float gamma_ = 1.f;      // step decay
};

}  // namespace forge
