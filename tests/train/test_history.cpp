// test_history.cpp: metrics.jsonl's rows (train/history.h): numbers written as the shortest
// decimal of their float, epoch and step rows told apart by "type", and the step rows' way
// through a checkpoint's metadata.
#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "train/history.h"

using namespace forge::train;
namespace fs = std::filesystem;

TEST_CASE("history: float values are written as the shortest decimal of their float") {
  CHECK(nlohmann::json(float_precision(double(0.0005f))).dump() == "0.0005");
  CHECK(nlohmann::json(double(0.0005f)).dump() == "0.0005000000237487257");  // what it fixes
  CHECK(float_precision(0.1f) == 0.1);
  CHECK(float_precision(1e-7f) == 1e-7);
  EpochRecord r{.epoch = 2,
                .train_loss = double(0.6931472f),
                .train_accuracy = 2.0 / 3,
                .learning_rate = double(3e-4f),
                .images_per_second = double(41.7f)};
  const std::string line = epoch_json(r).dump();
  CHECK(line.find("\"lr\":0.0003,") != std::string::npos);
  CHECK(line.find("\"train_loss\":0.6931472,") != std::string::npos);
  CHECK(line.find("\"images_per_second\":41.7,") != std::string::npos);
  // accuracies are ratios of counts: exact, so resumed runs choose best.safetensors alike
  CHECK(epoch_from_json(epoch_json(r)).train_accuracy == 2.0 / 3);
  CHECK(line.find("\"type\":\"epoch\"") != std::string::npos);
}

TEST_CASE("history: UTC timestamps with milliseconds") {
  using namespace std::chrono;
  const system_clock::time_point t{milliseconds(1764588003512)};  // 2025-12-01 11:20:03.512
  CHECK(utc_timestamp(t) == "2025-12-01T11:20:03.512Z");
}

TEST_CASE("history: step rows sit before their epoch's row and readers tell them apart") {
  StepLog log;
  log.start_epoch();
  for (int64_t step = 1; step <= 25; ++step)
    log.after_step(step, step <= 12 ? 1 : 2, 1.0 / step, 1e-3, 8);
  REQUIRE(log.rows().size() == 2);  // steps 10 and 20: every step_row_interval-th
  CHECK(log.rows()[0].step == 10);
  CHECK(log.rows()[0].epoch == 1);
  CHECK(log.rows()[1].step == 20);
  CHECK(log.rows()[1].loss == doctest::Approx(0.05));
  CHECK(log.rows()[1].time.size() == 24);

  const std::vector<EpochRecord> epochs{{.epoch = 1}, {.epoch = 2}};
  const std::string text = history_jsonl(epochs, log.rows());
  std::vector<std::string> types;
  for (size_t at = 0; (at = text.find("\"type\":\"", at)) != std::string::npos; at += 8)
    types.push_back(text.substr(at + 8, text.find('"', at + 8) - at - 8));
  CHECK(types == std::vector<std::string>{"step", "epoch", "step", "epoch"});

  const fs::path file = fs::temp_directory_path() / "forge_test_history_metrics.jsonl";
  {
    std::ofstream out(file);
    out << text << R"({"epoch":3,"train_loss":1,"train_accuracy":0,"test_loss":1,)"
        << R"("test_accuracy":0,"lr":0.1,"images_per_second":1,"seconds":1})"
        << "\n";
  }
  const auto read = read_history(file.string());  // a row without "type": an epoch (older runs)
  REQUIRE(read.size() == 3);
  CHECK(read[2].epoch == 3);
  const auto steps = read_step_history(file.string());
  REQUIRE(steps.size() == 2);
  CHECK(steps[1].step == 20);
  CHECK(steps[1].time == log.rows()[1].time);
  fs::remove(file);

  // Through a checkpoint's metadata: the same rows back.
  const auto back = step_history_from_metadata(step_history_metadata(log.rows()), "ckpt");
  REQUIRE(back.size() == 2);
  CHECK(back[0].step == 10);
  CHECK(back[0].learning_rate == doctest::Approx(1e-3));
  CHECK_THROWS_WITH(step_history_from_metadata("[{\"step\":1}]", "x.safetensors"),
                    doctest::Contains("x.safetensors: the step history"));
}
