// tsan.h: ThreadSanitizer annotations for the emulator's fibers (FORGE_TSAN=ON); no-ops otherwise.
//
// TSan does not know that a fiber switch changes the running CUDA thread. Told about it, it gives
// each fiber its own history, and a race between two threads of a block (a missing
// __syncthreads) is reported like a race between two OS threads. What TSan must be told:
// - every fiber switch, with no happens-before implied: only barriers order memory, as on a GPU;
// - each barrier: every arriving thread releases a sync object, every departing thread acquires
//   it. The object is fresh for each barrier generation, or a thread that departs late would also
//   acquire what faster threads wrote after the barrier, hiding exactly the races we look for;
// - the emulator's own bookkeeping, which the scheduler and the fibers share without locks
//   (safe: they never run at once), is hidden from race detection.
#pragma once

#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
extern "C" {
void AnnotateIgnoreReadsBegin(const char* file, int line);
void AnnotateIgnoreReadsEnd(const char* file, int line);
void AnnotateIgnoreWritesBegin(const char* file, int line);
void AnnotateIgnoreWritesEnd(const char* file, int line);
}
#endif

namespace forge::sim::tsan {

#if defined(__SANITIZE_THREAD__)
inline constexpr bool enabled = true;
inline void* current_fiber() {
  return __tsan_get_current_fiber();
}
inline void* create_fiber() {
  return __tsan_create_fiber(0);
}
inline void destroy_fiber(void* fiber) {
  __tsan_destroy_fiber(fiber);
}
inline void switch_to(void* fiber) {
  __tsan_switch_to_fiber(fiber, __tsan_switch_to_fiber_no_sync);
}
inline void release(void* sync_object) {
  __tsan_release(sync_object);
}
inline void acquire(void* sync_object) {
  __tsan_acquire(sync_object);
}
inline void ignore_begin() {
  AnnotateIgnoreReadsBegin(__FILE__, __LINE__);
  AnnotateIgnoreWritesBegin(__FILE__, __LINE__);
}
inline void ignore_end() {
  AnnotateIgnoreWritesEnd(__FILE__, __LINE__);
  AnnotateIgnoreReadsEnd(__FILE__, __LINE__);
}
#else
inline constexpr bool enabled = false;
inline void* current_fiber() {
  return nullptr;
}
inline void* create_fiber() {
  return nullptr;
}
inline void destroy_fiber(void*) {}
inline void switch_to(void*) {}
inline void release(void*) {}
inline void acquire(void*) {}
inline void ignore_begin() {}
inline void ignore_end() {}
#endif

// Hides the memory accesses of a scope (the emulator's bookkeeping) from race detection.
class Hidden {
 public:
  Hidden() { ignore_begin(); }
  ~Hidden() { ignore_end(); }
  Hidden(const Hidden&) = delete;
  Hidden& operator=(const Hidden&) = delete;
};

}  // namespace forge::sim::tsan
