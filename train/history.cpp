// history.cpp: epoch records to and from JSON lines.
#include "train/history.h"

#include <fstream>
#include <stdexcept>

namespace forge::train {

nlohmann::json epoch_json(const EpochRecord& r) {
  return {{"epoch", r.epoch},
          {"train_loss", r.train_loss},
          {"train_accuracy", r.train_accuracy},
          {"val_loss", r.val_loss},
          {"val_accuracy", r.val_accuracy},
          {"test_loss", r.test_loss},
          {"test_accuracy", r.test_accuracy},
          {"lr", r.learning_rate},
          {"images_per_second", r.images_per_second},
          {"seconds", r.seconds}};
}

EpochRecord epoch_from_json(const nlohmann::json& j) {
  EpochRecord r;
  r.epoch = j.at("epoch");
  r.train_loss = j.at("train_loss");
  r.train_accuracy = j.at("train_accuracy");
  r.val_loss = j.value("val_loss", 0.0);  // absent in runs from before the validation side
  r.val_accuracy = j.value("val_accuracy", 0.0);
  r.test_loss = j.at("test_loss");
  r.test_accuracy = j.at("test_accuracy");
  r.learning_rate = j.at("lr");
  r.images_per_second = j.at("images_per_second");
  r.seconds = j.at("seconds");
  return r;
}

std::vector<EpochRecord> read_history(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::vector<EpochRecord> out;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.empty()) continue;
    try {
      out.push_back(epoch_from_json(nlohmann::json::parse(line)));
    } catch (const std::exception& e) {
      throw std::runtime_error(path + ":" + std::to_string(n) + ": not an epoch record (" +
                               e.what() + ")");
    }
  }
  return out;
}

std::string history_jsonl(const std::vector<EpochRecord>& history) {
  std::string text;
  for (const auto& r : history) text += epoch_json(r).dump() + "\n";
  return text;
}

std::string history_metadata(const std::vector<EpochRecord>& history) {
  nlohmann::json all = nlohmann::json::array();
  for (const auto& r : history) all.push_back(epoch_json(r));
  return all.dump();
}

std::vector<EpochRecord> history_from_metadata(const std::string& text, const std::string& source) {
  std::vector<EpochRecord> out;
  try {
    for (const auto& j : nlohmann::json::parse(text)) out.push_back(epoch_from_json(j));
  } catch (const std::exception& e) {
    throw std::runtime_error(source + ": the history in its metadata is malformed (" + e.what() +
                             ")");
  }
  return out;
}

}  // namespace forge::train
