// batch_stream.cpp: training batches uploaded one ahead on the copy stream (see batch_stream.h).
#include "train/batch_stream.h"

#include <stdexcept>
#include <utility>

#include "train/run_data.h"

namespace forge::train {

BatchStream::BatchStream(Device device, int batch_size, Uploads uploads)
    : device_(device),
      batch_size_(batch_size),
      copy_stream_(uploads == Uploads::copy_stream && device != Device::cpu) {
  if (batch_size < 1)
    throw std::invalid_argument("BatchStream: batch size " + std::to_string(batch_size));
}

void BatchStream::stage_ahead() {
  have_ahead_ = source_(ahead_);
  if (!have_ahead_ || !copy_stream_) return;
  if (ahead_.n > batch_size_)
    throw std::invalid_argument("BatchStream: a batch of " + std::to_string(ahead_.n) +
                                " images, more than the batch size " + std::to_string(batch_size_));
  if (!slots_)
    slots_ =
        make_gpu_upload_slots(device_, size_t(batch_size_) * size_t(ahead_.c) * size_t(ahead_.h) *
                                           size_t(ahead_.w) * sizeof(float));
  slots_->stage(ahead_.images.data(), ahead_.images.size() * sizeof(float));
}

void BatchStream::start(Source source) {
  if (have_ahead_)
    throw std::logic_error("BatchStream: start() before the last pass was read to its end");
  source_ = std::move(source);
  stage_ahead();
}

bool BatchStream::next(data::Batch& batch) {
  if (holding_) {
    slots_->release();
    holding_ = false;
  }
  images_ = Tensor();
  if (!have_ahead_) return false;
  batch = std::move(ahead_);
  ahead_ = data::Batch();
  if (copy_stream_) {
    images_ = Tensor::over_storage(slots_->acquire(), {batch.n, batch.c, batch.h, batch.w});
    holding_ = true;
  } else {
    images_ = batch_tensor(batch, device_);
  }
  stage_ahead();
  return true;
}

}  // namespace forge::train
