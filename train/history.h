// history.h: what a training run records each epoch. The history travels in every checkpoint's
// metadata (key "history", a JSON array), the commit point of an epoch; metrics.jsonl (one JSON
// line per epoch) is rebuilt from it, so a kill never loses a finished epoch's line.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace forge::train {

struct EpochRecord {
  int epoch = 0;  // 1-based
  double train_loss = 0, train_accuracy = 0;
  double val_loss = 0, val_accuracy = 0;  // the validation side: chooses best.safetensors
  double test_loss = 0, test_accuracy = 0;
  double learning_rate = 0;      // at the end of the epoch
  double images_per_second = 0;  // training throughput, data loading included
  double seconds = 0;            // wall time of the epoch, evaluation included
};

nlohmann::json epoch_json(const EpochRecord& r);
EpochRecord epoch_from_json(const nlohmann::json& j);
// Reads a metrics.jsonl file; lines that do not parse are an error naming the line.
std::vector<EpochRecord> read_history(const std::string& path);
// metrics.jsonl's text: one line per record.
std::string history_jsonl(const std::vector<EpochRecord>& history);
// The history as a checkpoint's metadata value, and back (an error names `source`).
std::string history_metadata(const std::vector<EpochRecord>& history);
std::vector<EpochRecord> history_from_metadata(const std::string& text, const std::string& source);

}  // namespace forge::train
