// upload_slots.h: double-buffered uploads on a GPU backend's copy stream (copy_stream.h), so that
// the upload of the next batch overlaps the step that reads the current one
// (docs/GPU_BACKEND.md "The copy stream"; train/batch_stream.h is its user).
//
// Each slot is a pinned host buffer, a device buffer of the same size and two events:
//   uploaded  recorded on the copy stream after the copy pinned -> device;
//   consumed  recorded on the compute stream after the work that reads the device buffer.
// stage() fills the next slot: the host waits for the slot's last `uploaded` (its pinned buffer
// may be rewritten once that copy has read it), copies the source into the pinned buffer, and
// queues on the copy stream: a wait for the slot's last `consumed` (the device buffer may be
// rewritten once its last reader has finished), the copy, `uploaded`. acquire() makes the compute
// stream wait for the oldest staged slot's `uploaded` and hands out its device buffer; release()
// records that slot's `consumed` behind the work issued since. Slots go round in order: with two,
// the upload of batch k+1 runs while step k computes.
#pragma once
#include <cstddef>
#include <memory>

#include "engine/device.h"
#include "engine/tensor.h"

namespace forge {

class GpuUploadSlots {
 public:
  virtual ~GpuUploadSlots() = default;  // waits for the slots' copies and readers, then frees
  virtual size_t slot_bytes() const = 0;
  // Throws std::invalid_argument when bytes > slot_bytes(), std::logic_error when every slot is
  // staged or acquired and not yet released.
  virtual void stage(const void* src, size_t bytes) = 0;
  // The oldest staged slot's device buffer (slot_bytes() long), ready for the compute stream's
  // later work; std::logic_error when none is staged.
  virtual std::shared_ptr<Storage> acquire() = 0;
  // The oldest acquired slot may be rewritten after the compute work issued so far;
  // std::logic_error when none is acquired.
  virtual void release() = 0;
};

// `slots` (2 or more) slots of `slot_bytes` on the GPU backend of `device` (sim or cuda); throws
// std::invalid_argument for cpu or a device not built.
std::unique_ptr<GpuUploadSlots> make_gpu_upload_slots(Device device, size_t slot_bytes,
                                                      int slots = 2);

}  // namespace forge
