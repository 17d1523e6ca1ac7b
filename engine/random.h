// random.h: seeded random numbers that give the same values on every machine and device.
//
// Generator: a small, portable stream (splitmix64 seeding xoshiro256**) with its own uniform and
// Box-Muller normal, so initialisation and shuffles do not depend on the standard library's
// distributions (which differ between implementations).
// counter_uniform: a stateless hash of (seed, index) to [0, 1), usable inside kernels; dropout
// uses it so that a mask can be recomputed in backward instead of stored.
#pragma once
#include <cstdint>

#if defined(__CUDACC__)
#define FORGE_HOST_DEVICE __host__ __device__
#else
#define FORGE_HOST_DEVICE
#endif

namespace forge {

FORGE_HOST_DEVICE inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Uniform in [0, 1) from the top 24 bits of a hash of (seed, index): exact in float32.
FORGE_HOST_DEVICE inline float counter_uniform(uint64_t seed, uint64_t index) {
  uint64_t h = splitmix64(seed ^ splitmix64(index));
  return static_cast<float>(h >> 40) * (1.0f / 16777216.0f);
}

// The seed of call `call` of a dropout layer keyed `key` at training step `step` (engine/nn
// Dropout): a function of the step, so that a GPU kernel can derive it from the step in device
// memory (engine/backend.h set_step_values) as the host does.
FORGE_HOST_DEVICE inline uint64_t step_seed(uint64_t key, uint64_t step, uint64_t call) {
  return splitmix64(key ^ splitmix64(step * 0x100000001B3ull + call));
}

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) { reseed(seed); }
  void reseed(uint64_t seed);
  uint64_t next_u64();
  double uniform();  // [0, 1)
  double normal();   // mean 0, std 1 (Box-Muller)
  // Uniform integer in [0, n).
  uint64_t below(uint64_t n);

 private:
  uint64_t s_[4];
  bool has_spare_ = false;
  double spare_ = 0.0;
};

}  // namespace forge
