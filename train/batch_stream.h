// batch_stream.h: the training batches, each on the device before its step needs it: on a GPU
// (sim, cuda) uploaded on the copy stream into double-buffered slots (engine/cuda/upload_slots.h),
// one batch ahead, so that the upload of batch k+1 overlaps step k; on cpu a plain copy.
//
//   next() #k+1:  release batch k's slot (its step has been issued: the slot's `consumed` event)
//                 hand out batch k+1, whose upload the compute stream now waits for
//                 take batch k+2 from the source (the loader: decoded and augmented by its
//                 threads meanwhile) and stage it into the slot batch k had (the copy stream
//                 waits for step k to finish, then copies while step k+1 computes)
//
// images() is a view of the slot's device buffer, [n, c, h, w] (a partial batch uses its front);
// valid until the next call to next(): the step reading it must be issued before then.
// The labels and the rest of the batch stay on the host, as the caller uploads them today.
#pragma once
#include <functional>
#include <memory>

#include "data/loader.h"
#include "engine/cuda/upload_slots.h"
#include "engine/tensor.h"

namespace forge::train {

class BatchStream {
 public:
  // Where batches come from: fills the batch and returns true, or returns false at the end.
  using Source = std::function<bool(data::Batch&)>;
  enum class Uploads { copy_stream, in_stream_order };

  // `batch_size`: the most images a batch has (the slots' size, from the first batch's shape).
  // Uploads::in_stream_order (and always on cpu): each batch is Tensor::from_vector'd when it is
  // handed out, on the compute stream, as before the copy stream (for comparing the two).
  BatchStream(Device device, int batch_size, Uploads uploads = Uploads::copy_stream);

  // A new pass (an epoch): `source` is read from now on, one batch ahead of next().
  void start(Source source);
  // The next batch (its host data into `batch`), or false at the source's end.
  bool next(data::Batch& batch);
  const Tensor& images() const { return images_; }

 private:
  void stage_ahead();

  Device device_;
  int batch_size_;
  bool copy_stream_;
  Source source_;
  data::Batch ahead_;
  bool have_ahead_ = false, holding_ = false;
  Tensor images_;
  std::unique_ptr<GpuUploadSlots> slots_;  // made for the first batch's image shape
};

}  // namespace forge::train
