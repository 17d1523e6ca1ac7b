// gpu_upload_slots.cpp: the double-buffered uploads of upload_slots.h, on copy_stream.h's stream
// and events, built for sim and for cuda.
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/cuda/copy_stream.h"
#include "engine/cuda/upload_slots.h"

namespace forge::FORGE_GPU_NS {

namespace {

class UploadSlots final : public GpuUploadSlots {
 public:
  UploadSlots(size_t slot_bytes, int slots) : bytes_(slot_bytes) {
    if (slots < 2)
      throw std::invalid_argument("upload slots: " + std::to_string(slots) +
                                  " slots; double buffering needs 2 or more");
#if FORGE_SIM_BUILD
    const Device device = Device::sim;
#else
    const Device device = Device::cuda;
#endif
    slots_.resize(size_t(slots));
    for (Slot& s : slots_) {
      s.pinned = pinned_malloc(slot_bytes);
      s.device = std::make_shared<Storage>(device, slot_bytes);
      s.uploaded = event_create();
      s.consumed = event_create();
    }
  }
  ~UploadSlots() override {
    for (Slot& s : slots_) {
      try {  // the device buffer goes back to the caching allocator, which assumes stream order
        host_waits_for(s.uploaded);
        host_waits_for(s.consumed);
      } catch (...) {
        // At process exit the CUDA context may be gone; the memory goes with it.
      }
      event_destroy(s.uploaded);
      event_destroy(s.consumed);
      pinned_free(s.pinned);
    }
  }

  size_t slot_bytes() const override {
    return bytes_;
  }

  void stage(const void* src, size_t bytes) override {
    if (bytes > bytes_)
      throw std::invalid_argument("upload slots: " + std::to_string(bytes) +
                                  " bytes do not fit a slot of " + std::to_string(bytes_));
    if (staged_ + acquired_ == slots_.size())
      throw std::logic_error("upload slots: all " + std::to_string(slots_.size()) +
                             " are staged or in use (release one first)");
    Slot& s = slots_[(first_acquired_ + acquired_ + staged_) % slots_.size()];
    host_waits_for(s.uploaded);  // the last copy out of the pinned buffer has read it
    std::memcpy(s.pinned, src, bytes);
    copy_stream_waits(s.consumed);  // the last reader of the device buffer has finished
    copy_h2d_on_copy_stream(s.device->data, s.pinned, bytes);
    record_on_copy_stream(s.uploaded);
    ++staged_;
  }

  std::shared_ptr<Storage> acquire() override {
    if (staged_ == 0) throw std::logic_error("upload slots: acquire with nothing staged");
    Slot& s = slots_[(first_acquired_ + acquired_) % slots_.size()];
    compute_stream_waits(s.uploaded);
    --staged_;
    ++acquired_;
    return s.device;
  }

  void release() override {
    if (acquired_ == 0) throw std::logic_error("upload slots: release with nothing acquired");
    record_on_compute_stream(slots_[first_acquired_].consumed);
    first_acquired_ = (first_acquired_ + 1) % slots_.size();
    --acquired_;
  }

 private:
  struct Slot {
    void* pinned = nullptr;
    std::shared_ptr<Storage> device;
    void* uploaded = nullptr;  // events (copy_stream.h)
    void* consumed = nullptr;
  };
  size_t bytes_;
  std::vector<Slot> slots_;
  // The slots in use form a run in ring order: acquired ones from first_acquired_, then staged.
  size_t first_acquired_ = 0, acquired_ = 0, staged_ = 0;
};

}  // namespace

std::unique_ptr<GpuUploadSlots> make_upload_slots(size_t slot_bytes, int slots) {
  return std::make_unique<UploadSlots>(slot_bytes, slots);
}

}  // namespace forge::FORGE_GPU_NS
