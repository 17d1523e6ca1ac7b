// graph_training.cpp: --cuda-graph end to end on Device::sim, whose emulated graphs keep every
// captured kernel's arguments by value as a GPU does (engine/cuda/builtin.h GpuGraph): vit-micro,
// cnn-micro, hrnet-micro and vit-micro with the conv stem train for 3 epochs with a partial last
// batch each epoch, a learning rate that changes every step (warm-up, then cosine) and the run
// report's examples between epochs, and with the graph the loss history and the final weights
// (batch-norm running statistics and optimizer counts included) equal those without it bit for bit,
// while the step's launches drop to the replays; so does cnn-micro with --model-ema, its update
// part of the graph. A step value left as a kernel argument (the learning rate by value, say)
// breaks the equality: the replays would reuse the captured step's; so does a host count that the
// replays do not advance (the batch-norm models' Grad-CAM drops the gradients between epochs, and
// Adam's update counts once followed them: the partial batch after the replays then took a stale
// bias correction). Also: --cuda-graph is refused on cpu and with the options that upload per-step
// data, naming the flag; `bench model --cuda-graph` counts one launch a step. CTest runs it in
// both emulator orders.
#include <doctest/doctest.h>

#include <filesystem>

#include "engine/backend.h"
#include "engine/cuda/builtin.h"
#include "engine/io/safetensors.h"
#include "tests/temp_dir.h"
#include "tests/train/tiny_run.h"
#include "tools/bench/model_bench.h"
#include "train/graph_step.h"
#include "train/history.h"
#include "train/options.h"
#include "train/trainer.h"

using namespace forge;
using forge::test::TempDir;
using namespace forge::train;
namespace fs = std::filesystem;

namespace {

TrainOptions on_sim(const fs::path& data, const fs::path& out, const std::string& model,
                    bool cuda_graph) {
  TrainOptions o = forge::test::tiny_on_sim(data, out, model);
  o.batch_size = 4;  // 14 training images: 3 full batches and a partial one of 2 each epoch
  o.cuda_graph = cuda_graph;
  return o;
}

// Trains `o` (on sim, output <dir>/<name>-plain) without and with --cuda-graph and checks that the
// graph ran and that the two runs' histories and last.safetensors (weights, running statistics,
// optimizer state, the EMA's tensors) are equal bit for bit.
void check_graph_equals_plain(TrainOptions o, const fs::path& dir, const std::string& name) {
  const fs::path plain = dir / (name + "-plain"), graph = dir / (name + "-graph");
  o.cuda_graph = false;
  o.output = plain.string();
  const uint64_t start = gpu_launch_count(Device::sim);
  REQUIRE(run_training(o) == 0);
  const uint64_t between = gpu_launch_count(Device::sim);
  o.cuda_graph = true;
  o.output = graph.string();
  REQUIRE(run_training(o) == 0);
  const uint64_t end = gpu_launch_count(Device::sim);
  // The graph ran: of 3 full batches an epoch, all from the fourth on were replays, each one
  // launch where the step has dozens (at least 10 fewer a replay, a loose bound).
  MESSAGE(name << ": launches without the graph " << between - start << ", with it "
               << end - between);
  const uint64_t replays = 3 * uint64_t(o.epochs) - 3;
  CHECK(end - between + 10 * replays <= between - start);

  const auto a = read_history((plain / "metrics.jsonl").string());
  const auto b = read_history((graph / "metrics.jsonl").string());
  REQUIRE(a.size() == size_t(o.epochs));
  REQUIRE(b.size() == size_t(o.epochs));
  for (size_t e = 0; e < a.size(); ++e) {
    CAPTURE(e);
    CHECK(a[e].train_loss == b[e].train_loss);
    CHECK(a[e].train_accuracy == b[e].train_accuracy);
    CHECK(a[e].val_loss == b[e].val_loss);
    CHECK(a[e].ema_val_loss == b[e].ema_val_loss);
  }
  const SafetensorsFile wa = load_safetensors((plain / "last.safetensors").string());
  const SafetensorsFile wb = load_safetensors((graph / "last.safetensors").string());
  REQUIRE(wa.tensors.size() == wb.tensors.size());
  for (size_t i = 0; i < wa.tensors.size(); ++i) {
    CAPTURE(wa.tensors[i].first);
    CHECK(wa.tensors[i].first == wb.tensors[i].first);
    CHECK(wa.tensors[i].second.to_vector() == wb.tensors[i].second.to_vector());
  }
}

}  // namespace

TEST_CASE("--cuda-graph on sim: training equals training without it, bit for bit") {
  TempDir dir("train-graph");
  forge::test::make_images(dir.path / "data", 11);
  for (const std::string model : {"vit-micro", "cnn-micro", "hrnet-micro"}) {
    CAPTURE(model);
    check_graph_equals_plain(on_sim(dir.path / "data", "", model, false), dir.path, model);
  }
  TrainOptions conv_stem = on_sim(dir.path / "data", "", "vit-micro", false);
  conv_stem.stem = "conv";  // the ViT with batch norms in its stem
  check_graph_equals_plain(conv_stem, dir.path, "vit-micro-conv-stem");
}

TEST_CASE("--cuda-graph with --model-ema: the average's update is captured, bit for bit") {
  TempDir dir("train-graph-ema");
  forge::test::make_images(dir.path / "data", 11);
  TrainOptions o = on_sim(dir.path / "data", "", "cnn-micro", false);  // running stats averaged
  o.epochs = 2;
  o.model_ema = true;
  o.model_ema_decay = 0.9f;
  check_graph_equals_plain(o, dir.path, "cnn-micro-ema");
}

TEST_CASE("--cuda-graph is refused on cpu and with per-step uploads, naming the flag") {
  TempDir dir("train-graph-refused");
  TrainOptions o = on_sim(dir.path / "data", dir.path / "run", "vit-micro", true);
  CHECK_NOTHROW(check_cuda_graph_options(o, 1));
  o.device = Device::cpu;
  CHECK_THROWS_WITH_AS(check_cuda_graph_options(o, 1),
                       doctest::Contains("--cuda-graph: device cpu has no CUDA graphs"),
                       OptionError);
  CHECK_THROWS_AS(run_training(o), OptionError);
  CHECK_FALSE(fs::exists(dir.path / "run"));
  o.device = Device::sim;
  o.drop_path = 0.1f;
  CHECK_THROWS_WITH_AS(check_cuda_graph_options(o, 1), doctest::Contains("--drop-path"),
                       OptionError);
  o.drop_path = 0.f;
  o.mix.mixup_alpha = 0.2f;
  CHECK_THROWS_WITH_AS(check_cuda_graph_options(o, 1), doctest::Contains("--mixup"), OptionError);
  o.mix.mixup_alpha = 0.f;
  o.model_ema = true;
  CHECK_NOTHROW(check_cuda_graph_options(o, 1));
  o.model_ema = false;
  CHECK_THROWS_WITH_AS(check_cuda_graph_options(o, 2), doctest::Contains("not with 2 ranks"),
                       OptionError);
  for (const char* model : {"cnn", "cnn-micro", "hrnet", "hrnet-micro"}) {
    o.model = model;
    CHECK_NOTHROW(check_cuda_graph_options(o, 1));
  }
}

TEST_CASE("bench model --cuda-graph: one launch a step, the replay") {
  register_builtin_backends();
  bench::ModelBenchOptions o{
      .model = "vit-micro", .device = Device::sim, .batch = 2, .image_size = 16, .steps = 2};
  const bench::ModelResult plain = bench::run_model_bench(o);
  o.cuda_graph = true;
  const bench::ModelResult graph = bench::run_model_bench(o);
  CHECK(plain.launches_per_step > 50);  // 89 for vit-micro
  CHECK(graph.launches_per_step == 1);
  CHECK(bench::model_result_json(graph)["cuda_graph"] == true);
  o.model = "cnn-micro";
  CHECK(bench::run_model_bench(o).launches_per_step == 1);
  o.device = Device::cpu;
  CHECK_THROWS_WITH_AS(bench::run_model_bench(o), doctest::Contains("--cuda-graph"),
                       std::invalid_argument);
}
