// history.h: what a training run records each epoch (one JSON line per epoch in metrics.jsonl).
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace forge::train {

struct EpochRecord {
  int epoch = 0;  // 1-based
  double train_loss = 0, train_accuracy = 0;
  double test_loss = 0, test_accuracy = 0;
  double learning_rate = 0;      // at the end of the epoch
  double images_per_second = 0;  // training throughput, data loading included
  double seconds = 0;            // wall time of the epoch, evaluation included
};

nlohmann::json epoch_json(const EpochRecord& r);
EpochRecord epoch_from_json(const nlohmann::json& j);
// Reads a metrics.jsonl file; lines that do not parse are an error naming the line.
std::vector<EpochRecord> read_history(const std::string& path);

}  // namespace forge::train
