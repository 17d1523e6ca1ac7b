// memory.cpp: Device::cpu memory is host memory, 64-byte aligned for AVX-512 loads.
#include <cstdlib>
#include <cstring>
#include <new>

#include "engine/cpu/cpu_backend.h"

namespace forge {

CpuBackend& cpu_backend() {
  static CpuBackend instance;
  return instance;
}

void* CpuBackend::allocate(size_t bytes) {
  void* p = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
  if (!p) throw std::bad_alloc();
  return p;
}
void CpuBackend::deallocate(void* ptr, size_t) {
  std::free(ptr);
}
void CpuBackend::copy_from_host(void* dst, const void* src, size_t n) {
  std::memcpy(dst, src, n);
}
void CpuBackend::copy_to_host(void* dst, const void* src, size_t n) {
  std::memcpy(dst, src, n);
}
void CpuBackend::copy(void* dst, const void* src, size_t n) {
  std::memmove(dst, src, n);
}
void CpuBackend::synchronize() {}

}  // namespace forge
