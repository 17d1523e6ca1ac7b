// bf16_training.cpp: --precision bf16 end to end on Device::sim (docs/MIXED_PRECISION.md):
// vit-micro and cnn-micro train on the tiny image folder of the trainer tests with per-epoch train
// loss within 5% of the fp32 run's, two bf16 runs are bitwise equal (loss history and weights), the
// precision is recorded in config.json, and the choices a device cannot run are refused before a
// run folder exists, and a resume may not change the precision. CTest runs it in both emulator
// orders.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "engine/backend.h"
#include "engine/io/safetensors.h"
#include "tests/temp_dir.h"
#include "tests/train/tiny_run.h"
#include "train/history.h"
#include "train/options.h"
#include "train/resume.h"
#include "train/trainer.h"

using namespace forge;
using forge::test::TempDir;
using namespace forge::train;
namespace fs = std::filesystem;

namespace {

TrainOptions on_sim(const fs::path& data, const fs::path& out, const std::string& model,
                    const std::string& precision) {
  TrainOptions o = forge::test::tiny_on_sim(data, out, model);
  o.precision = precision;
  return o;
}

std::vector<EpochRecord> history_of(const fs::path& run) {
  return read_history((run / "metrics.jsonl").string());
}

}  // namespace

TEST_CASE("bf16 training on sim: vit-micro and cnn-micro follow the fp32 run, deterministically") {
  TempDir dir("train-bf16");
  forge::test::make_images(dir.path / "data", 10);
  for (const std::string model : {"vit-micro", "cnn-micro"}) {
    CAPTURE(model);
    const fs::path fp32 = dir.path / (model + "-fp32"), bf16 = dir.path / (model + "-bf16"),
                   again = dir.path / (model + "-bf16-again");
    REQUIRE(run_training(on_sim(dir.path / "data", fp32, model, "fp32")) == 0);
    REQUIRE(run_training(on_sim(dir.path / "data", bf16, model, "bf16")) == 0);
    REQUIRE(run_training(on_sim(dir.path / "data", again, model, "bf16")) == 0);
    // The run restores the backend's precision when it ends.
    CHECK(backend(Device::sim).matmul_precision() == MatmulPrecision::fp32);

    const auto a = history_of(fp32), b = history_of(bf16), c = history_of(again);
    REQUIRE(a.size() == 3);
    REQUIRE(b.size() == 3);
    REQUIRE(c.size() == 3);
    bool any_difference = false;  // bf16 really ran: some loss differs from fp32's
    for (size_t e = 0; e < a.size(); ++e) {
      CAPTURE(e);
      CHECK(std::abs(b[e].train_loss - a[e].train_loss) <= 0.05 * std::abs(a[e].train_loss));
      CHECK(b[e].train_loss == c[e].train_loss);  // bitwise: the same kernels in the same order
      any_difference |= b[e].train_loss != a[e].train_loss;
    }
    CHECK(any_difference);
    const SafetensorsFile wb = load_safetensors((bf16 / "last.safetensors").string());
    const SafetensorsFile wc = load_safetensors((again / "last.safetensors").string());
    REQUIRE(wb.tensors.size() == wc.tensors.size());
    for (size_t i = 0; i < wb.tensors.size(); ++i) {
      CAPTURE(wb.tensors[i].first);
      CHECK(wb.tensors[i].second.to_vector() == wc.tensors[i].second.to_vector());
    }
    std::ifstream config(bf16 / "config.json");
    CHECK(nlohmann::json::parse(config)["precision"] == "bf16");
  }
}

TEST_CASE("bf16 on cpu and --tf32 with bf16 are refused before a run folder exists") {
  TempDir dir("train-bf16-refused");
  forge::test::make_images(dir.path / "data", 4);
  TrainOptions o = forge::test::tiny(dir.path / "data", dir.path / "run");
  o.precision = "bf16";
  CHECK_THROWS_WITH_AS(run_training(o),
                       doctest::Contains("--precision bf16: device cpu computes in fp32 only"),
                       OptionError);
  o.precision = "fp32";
  o.tf32 = true;
  CHECK_THROWS_WITH_AS(run_training(o), doctest::Contains("--tf32: device cpu"), OptionError);
  o = on_sim(dir.path / "data", dir.path / "run", "cnn-micro", "bf16");
  o.tf32 = true;
  CHECK_THROWS_WITH_AS(run_training(o), doctest::Contains("--tf32 with --precision bf16"),
                       OptionError);
  CHECK_FALSE(fs::exists(dir.path / "run"));
}

TEST_CASE("resume: --precision and --tf32 define the run; a resume may not change them") {
  TempDir dir("train-bf16-resume");
  const fs::path split = dir.path / "split.csv";
  std::ofstream(split) << "file,class,side\na.png,x,train\n";
  TrainOptions run = forge::test::tiny(dir.path / "data", dir.path / "run");
  run.precision = "bf16";
  const Metadata meta{{run_options_key, recorded_options(run, file_digest(split))}};
  TrainOptions again = run;
  again.resume = "run/last.safetensors";
  CHECK_NOTHROW(check_resume(meta, again, split));
  again.precision = "fp32";
  CHECK_THROWS_WITH_AS(check_resume(meta, again, split),
                       doctest::Contains("--precision: the run has bf16, this command fp32"),
                       OptionError);
  again.precision = "bf16";
  again.tf32 = true;
  CHECK_THROWS_WITH_AS(check_resume(meta, again, split), doctest::Contains("--tf32"), OptionError);
}
