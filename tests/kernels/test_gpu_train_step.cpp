// test_gpu_train_step.cpp: the trainer's step (train/train_step.h) with its running metrics
// (train/step_metrics.h) makes the host wait for nothing on the GPU backend: the device's counts of
// transfers to the host and synchronize calls (engine/cuda/builtin.h gpu_sync_count) do not move
// over steps between two log points, and the one read at the log point is one wait. The figures
// read there agree with the same steps on the CPU. And after two warm-up steps the step keeps the
// rules of CUDA stream capture (engine/cuda/builtin.h GpuCaptureCheck): no device allocation,
// transfer to the host, blocking upload or synchronize, images upload included.
#include <doctest/doctest.h>

#include <cmath>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/cuda/builtin.h"
#include "engine/optim/optimizer.h"
#include "engine/random.h"
#include "models/model.h"
#include "tests/kernels/test_devices.h"
#include "train/step_metrics.h"
#include "train/train_step.h"

using namespace forge;

namespace {

constexpr int kSteps = 6;

struct StepsRun {
  train::MetricsSnapshot shown;
  uint64_t waits_in_steps = 0, waits_in_read = 0, uploads_in_steps = 0;
};

// A warm-up step, then kSteps of vit-micro (dropout on) with their metrics summed on the device,
// then one read; the sync counts of each part (0 on the cpu, which has none).
StepsRun run_steps(Device device) {
  Generator gen(31);
  auto model = models::create_model({"vit-micro", 3, 32, 0.1f}, gen, device);
  Generator data(32);
  const Tensor images = Tensor::randn({8, 3, 32, 32}, data).to(device);
  const std::vector<int32_t> labels{0, 2, 1, 2, 1, 0, 0, 2};
  AdamW optimizer(model->parameters(), AdamOptions{.lr = 1e-3f, .weight_decay = 0.05f});
  model->train();
  auto step = [&](int index) {
    return train::train_step(*model, optimizer, images, labels,
                             {.step = uint64_t(index), .lr = 1e-3f, .clip_grad = 0.5f});
  };
  step(0);  // first use: the allocator's cache fills
  train::StepMetrics metrics(device);
  const bool gpu = device != Device::cpu;
  const GpuSyncCount start = gpu ? gpu_sync_count(device) : GpuSyncCount{};
  for (int i = 1; i <= kSteps; ++i) {
    const train::StepResult r = step(i);
    metrics.add(r.loss, r.logits, labels, i);
  }
  const GpuSyncCount after_steps = gpu ? gpu_sync_count(device) : GpuSyncCount{};
  StepsRun run;
  run.shown = metrics.read();
  const GpuSyncCount after_read = gpu ? gpu_sync_count(device) : GpuSyncCount{};
  run.waits_in_steps = after_steps.host_waits - start.host_waits;
  run.uploads_in_steps = after_steps.blocking_uploads - start.blocking_uploads;
  run.waits_in_read = after_read.host_waits - after_steps.host_waits;
  return run;
}

}  // namespace

TEST_CASE("gpu training step: the host waits for nothing between log points") {
  register_builtin_backends();
  const StepsRun want = run_steps(Device::cpu);
  REQUIRE(want.shown.first_non_finite_step == -1);
  for (Device device : forge::testing::gpu_test_devices()) {
    const std::string on = device_name(device);
    CAPTURE(on);
    const StepsRun got = run_steps(device);
    CHECK(got.waits_in_steps == 0);
    CHECK(got.waits_in_read == 1);
    MESSAGE(on << ": " << got.uploads_in_steps << " blocking uploads in " << kSteps << " steps");
    CHECK(got.shown.first_non_finite_step == -1);
    // The loss sum of 6 steps of 8 images: as test_gpu_models' allowance for a few AdamW steps.
    CHECK(std::fabs(got.shown.loss_sum - want.shown.loss_sum) <= 1e-3 * want.shown.loss_sum);
    CHECK(got.shown.correct == want.shown.correct);
    CHECK(std::fabs(got.shown.last_loss - want.shown.last_loss) <= 1e-3 * want.shown.last_loss);
  }
}

TEST_CASE("gpu training step: capturable after two warm-up steps") {
  register_builtin_backends();
  for (Device device : forge::testing::gpu_test_devices()) {
    const std::string on = device_name(device);
    CAPTURE(on);
    Generator gen(41);
    auto model = models::create_model({"vit-micro", 3, 32, 0.1f}, gen, device);
    Generator data(42);
    const std::vector<float> host_images = Tensor::randn({8, 3, 32, 32}, data).to_vector();
    const std::vector<int32_t> labels{0, 2, 1, 2, 1, 0, 0, 2};
    AdamW optimizer(model->parameters(), AdamOptions{.lr = 1e-3f, .weight_decay = 0.05f});
    model->train();
    train::StepMetrics metrics(device);
    // The trainer's step with its upload of the batch and its metrics.
    auto step = [&](int index) {
      const Tensor images = Tensor::from_vector(host_images, {8, 3, 32, 32}, device);
      const train::StepResult r =
          train::train_step(*model, optimizer, images, labels,
                            {.step = uint64_t(index), .lr = 1e-3f, .clip_grad = 0.5f});
      metrics.add(r.loss, r.logits, labels, index);
      return r;
    };
    // The warm-up: two steps, since the first runs its forward with no gradients alive and every
    // later one with the last step's (train_step zeroes them after the forward). After them, what
    // a step allocates is in the allocator's cache. (Run alone, one warm-up step fails here.)
    step(0);
    step(1);
    {
      GpuCaptureCheck capture(device);
      // As in the trainer, a step's result (its graph) is gone before the next step starts.
      for (int index = 2; index <= 3; ++index) CHECK_NOTHROW(step(index));
      train::StepResult r;
      CHECK_NOTHROW(r = step(4));
      // What the old step did each time, and any allocation the cache cannot serve, are refused.
      CHECK_THROWS_WITH_AS(
          r.loss.item(),
          doctest::Contains("to the host (cudaMemcpy device to host) during capture"),
          std::logic_error);
      CHECK_THROWS_WITH_AS(backend(device).allocate(123456789),
                           doctest::Contains("cudaMalloc during capture"), std::logic_error);
    }
    CHECK(metrics.read().first_non_finite_step == -1);
  }
}

// A captured graph (engine/cuda/builtin.h GpuGraph) repeats its kernels' arguments: an Adam step
// whose learning rate is the step values' (engine/backend.h set_step_values) follows each new
// value at replay, one given another learning rate by value replays the captured one, on sim as on
// a GPU. Each replay agrees with the CPU's step with the values it should have used (to 1e-6;
// the learning rates differ by 0.1, moving each weight by about that).
TEST_CASE("gpu graph: replays read the step values, and arguments as captured") {
  register_builtin_backends();
  const std::vector<float> p0{0.5f, -1.f, 2.f}, g{0.1f, -0.2f, 0.3f};
  // Two Adam steps on the CPU: lr_first at t = 1, lr_second at t = 2.
  const auto cpu_two_steps = [&](float lr_first, float lr_second) {
    std::vector<float> p = p0, m(3, 0.f), v(3, 0.f);
    for (int t = 1; t <= 2; ++t) {
      const AdamTensor a{p.data(), g.data(), m.data(), v.data(), 3, t};
      backend(Device::cpu)
          .adam_step(&a, 1, t == 1 ? lr_first : lr_second, 0.9f, 0.999f, 1e-8f, 0.01f, true);
    }
    return p;
  };
  for (Device device : forge::testing::gpu_test_devices()) {
    const std::string on = device_name(device);
    CAPTURE(on);
    Backend& be = backend(device);
    for (const bool by_value : {false, true}) {
      CAPTURE(by_value);
      const Tensor p = Tensor::from_vector(p0, {3}, device),
                   grad = Tensor::from_vector(g, {3}, device);
      const Tensor m = Tensor::zeros({3}, device), v = Tensor::zeros({3}, device);
      const AdamTensor a{p.data(), grad.data(), m.data(), v.data(), 3, 1};
      {  // a warm-up step on tensors of its own, as the trainer's (train/graph_step.h): a capture
         // may not allocate, so the step's table must find its block in the cache
        const Tensor wp = Tensor::from_vector(p0, {3}, device), wm = Tensor::zeros({3}, device),
                     wv = Tensor::zeros({3}, device);
        const AdamTensor w{wp.data(), grad.data(), wm.data(), wv.data(), 3, 1};
        be.adam_step(&w, 1, 0.1f, 0.9f, 0.999f, 1e-8f, 0.01f, true);
      }
      be.set_step_values({.step = 0, .lr = 0.1f, .optimizer_steps = 0});
      GpuGraph graph(device);
      graph.begin_capture();
      // by_value: a learning rate that is not the step values', so it stays an argument.
      be.adam_step(&a, 1, by_value ? 0.3f : 0.1f, 0.9f, 0.999f, 1e-8f, 0.01f, true);
      graph.end_capture();
      CHECK(p.to_vector() == p0);  // captured, not run
      graph.replay();
      be.set_step_values({.step = 1, .lr = 0.2f, .optimizer_steps = 1});
      graph.replay();
      const std::vector<float> got = p.to_vector(), want = by_value ? cpu_two_steps(0.3f, 0.3f)
                                                                    : cpu_two_steps(0.1f, 0.2f);
      for (size_t i = 0; i < got.size(); ++i) CHECK(std::fabs(got[i] - want[i]) <= 1e-6f);
    }
  }
}

// The graph's memory pool: a block freed during the capture stays the graph's (its kernels reuse
// the address at every replay), so nothing outside gets it until the graph is destroyed.
TEST_CASE("gpu graph: blocks of the capture stay reserved until the graph is destroyed") {
  register_builtin_backends();
  for (Device device : forge::testing::gpu_test_devices()) {
    const std::string on = device_name(device);
    CAPTURE(on);
    Backend& be = backend(device);
    constexpr size_t kBytes = 777 * 1024;  // a bin of its own in this program
    void* cached = be.allocate(kBytes);
    be.deallocate(cached, kBytes);
    auto graph = std::make_unique<GpuGraph>(device);
    graph->begin_capture();
    void* inside = be.allocate(kBytes);  // from the cache, now the graph's
    CHECK(inside == cached);
    be.fill(static_cast<float*>(inside), 4, 1.f);
    be.deallocate(inside, kBytes);
    graph->end_capture();
    CHECK(graph->pool_blocks() >= 1);
    void* outside = be.allocate(kBytes);
    CHECK(outside != inside);
    be.deallocate(outside, kBytes);
    graph.reset();
    void* after = be.allocate(kBytes);  // the graph's blocks are back in the cache
    CHECK((after == inside || after == outside));
    be.deallocate(after, kBytes);
  }
}
