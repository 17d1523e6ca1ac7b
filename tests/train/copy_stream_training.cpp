// copy_stream_training.cpp: batches uploaded on the copy stream (train/batch_stream.h,
// engine/cuda/upload_slots.h) on Device::sim, whose emulated copy stream runs its copies at once
// in forward order and only when waited for in reverse order (kernels/sim/copy_stream.h); CTest
// runs it in both orders:
//   - vit-micro trained through the copy stream, plain steps and --cuda-graph steps, with a
//     partial last batch each epoch, equals training with in-stream-order uploads bit for bit.
//     Without the compute stream's wait for a slot's upload (upload_slots.h acquire) the reverse
//     order trains on the slot's previous batch and the weights differ (checked by hand);
//   - the host waits for nothing in that loop;
//   - the slots' own rules: the copy lands only when waited for (reverse order), the slot count,
//     the size, acquire and release out of turn.
#include <doctest/doctest.h>

#include <memory>
#include <random>
#include <stdexcept>
#include <vector>

#include "engine/cuda/builtin.h"
#include "engine/cuda/upload_slots.h"
#include "engine/optim/optimizer.h"
#include "kernels/sim/runtime.h"
#include "models/model.h"
#include "train/batch_stream.h"
#include "train/graph_step.h"
#include "train/step_metrics.h"
#include "train/train_step.h"

using namespace forge;
using namespace forge::train;

namespace {

constexpr int kBatch = 4, kSize = 16, kFullBatches = 3, kEpochs = 2;

// Batch `index` of the synthetic data: n images of random pixels, labels by parity.
data::Batch synthetic_batch(int index, int n) {
  std::mt19937 random(uint32_t(1000 + index));
  std::normal_distribution<float> pixel(0.f, 1.f);
  data::Batch b;
  b.n = n;
  b.h = b.w = kSize;
  b.images.resize(size_t(n) * 3 * kSize * kSize);
  for (float& v : b.images) v = pixel(random);
  for (int i = 0; i < n; ++i) b.labels.push_back((index + i) % 2);
  return b;
}

struct Trained {
  std::vector<std::vector<float>> weights;
  double loss_sum = 0;
  long correct = 0;
};

// Trains vit-micro on sim for kEpochs of kFullBatches full batches and a partial one of 2.
Trained train_on_sim(BatchStream::Uploads uploads, bool cuda_graph) {
  register_builtin_backends();
  Generator gen(5);
  auto model = models::create_model({"vit-micro", 2, kSize}, gen, Device::sim);
  model->train();
  AdamW optimizer(model->parameters(), AdamOptions{.lr = 1e-3f, .weight_decay = 0.05f});
  StepMetrics metrics(Device::sim);
  std::unique_ptr<GraphStep> graph;
  if (cuda_graph)
    graph = std::make_unique<GraphStep>(*model, optimizer, metrics, Device::sim, kBatch, 2);
  BatchStream batches(Device::sim, kBatch, uploads);
  uint64_t step = 0;
  const GpuSyncCount waits_before = gpu_sync_count(Device::sim);
  for (int epoch = 0; epoch < kEpochs; ++epoch) {
    int served = 0;
    batches.start([&](data::Batch& b) {
      if (served > kFullBatches) return false;
      b = synthetic_batch(epoch * 10 + served, served == kFullBatches ? 2 : kBatch);
      ++served;
      return true;
    });
    data::Batch batch;
    while (batches.next(batch)) {
      const StepSettings settings{
          .step = step, .lr = 1e-3f / float(1 + step), .label_smoothing = 0.1f, .clip_grad = 1.f};
      if (graph && graph->takes(batch)) {
        graph->run(batch, batches.images(), settings);
      } else {
        const StepResult r =
            train_step(*model, optimizer, batches.images(), batch.labels, settings);
        metrics.add(r.loss, r.logits, batch.labels, int64_t(step));
      }
      ++step;
    }
  }
  // The host never waited for the device in the loop: neither for a slot (its last copy had
  // run by the time it was staged again) nor for anything else.
  const GpuSyncCount waits_after = gpu_sync_count(Device::sim);
  CHECK(waits_after.host_waits == waits_before.host_waits);
  CHECK(waits_after.blocking_uploads == waits_before.blocking_uploads);
  Trained t;
  const MetricsSnapshot m = metrics.read();
  t.loss_sum = m.loss_sum;
  t.correct = m.correct;
  for (const Tensor& p : model->parameters()) t.weights.push_back(p.to_vector());
  if (graph) CHECK(graph->steps_run() == kEpochs * kFullBatches);
  return t;
}

void check_equal(const Trained& a, const Trained& b) {
  CHECK(a.loss_sum == b.loss_sum);
  CHECK(a.correct == b.correct);
  REQUIRE(a.weights.size() == b.weights.size());
  for (size_t i = 0; i < a.weights.size(); ++i) {
    CAPTURE(i);
    CHECK(a.weights[i] == b.weights[i]);
  }
}

}  // namespace

TEST_CASE("batches on sim's copy stream train as in-stream-order uploads do, bit for bit") {
  const Trained reference = train_on_sim(BatchStream::Uploads::in_stream_order, false);
  for (const bool cuda_graph : {false, true}) {
    CAPTURE(cuda_graph);
    check_equal(reference, train_on_sim(BatchStream::Uploads::copy_stream, cuda_graph));
  }
}

TEST_CASE("upload slots on sim: the copy lands when waited for, and the slots go round in turn") {
  register_builtin_backends();
  const sim::Order before = sim::order();
  sim::set_order(sim::Order::reverse);  // in either run: copies run only when waited for
  {
    auto slots = make_gpu_upload_slots(Device::sim, 4 * sizeof(float));
    const std::vector<float> first = {1, 2, 3, 4}, second = {5, 6, 7, 8}, third = {9, 9, 9, 9};
    slots->stage(first.data(), 16);
    slots->stage(second.data(), 16);
    CHECK_THROWS_AS(slots->stage(third.data(), 16), std::logic_error);  // both slots staged
    const std::shared_ptr<Storage> a = slots->acquire();
    const float* on_device = static_cast<const float*>(a->data);
    CHECK(std::vector<float>(on_device, on_device + 4) == first);
    const std::shared_ptr<Storage> b = slots->acquire();
    CHECK(b != a);
    CHECK(std::vector<float>(static_cast<const float*>(b->data),
                             static_cast<const float*>(b->data) + 4) == second);
    CHECK_THROWS_AS(slots->acquire(), std::logic_error);  // nothing staged
    slots->release();
    slots->stage(third.data(), 16);  // into the first slot again, not yet copied
    CHECK(std::vector<float>(on_device, on_device + 4) == first);
    CHECK(slots->acquire() == a);  // the wait runs the copy
    CHECK(std::vector<float>(on_device, on_device + 4) == third);
    slots->release();
    slots->release();
    CHECK_THROWS_AS(slots->release(), std::logic_error);                     // nothing acquired
    CHECK_THROWS_AS(slots->stage(third.data(), 20), std::invalid_argument);  // over the slot
  }
  CHECK_THROWS_AS(make_gpu_upload_slots(Device::sim, 16, 1), std::invalid_argument);
  CHECK_THROWS_AS(make_gpu_upload_slots(Device::cpu, 16), std::invalid_argument);
  sim::set_order(before);
}
