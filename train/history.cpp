// history.cpp: epoch and step records to and from JSON lines.
#include "train/history.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <stdexcept>

namespace forge::train {

double float_precision(double value) {
  const float f = static_cast<float>(value);
  if (!std::isfinite(f)) return value;
  char buf[32];
  const auto end = std::to_chars(buf, buf + sizeof buf - 1, f).ptr;  // shortest round trip
  *end = '\0';
  return std::strtod(buf, nullptr);
}

std::string utc_timestamp(std::chrono::system_clock::time_point t) {
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  const std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char buf[40];
  const size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &utc);
  std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(ms % 1000));
  return buf;
}

nlohmann::json epoch_json(const EpochRecord& r) {
  nlohmann::json j = {{"type", "epoch"},
                      {"epoch", r.epoch},
                      {"train_loss", float_precision(r.train_loss)},
                      {"train_accuracy", r.train_accuracy},
                      {"val_loss", float_precision(r.val_loss)},
                      {"val_accuracy", r.val_accuracy},
                      {"test_loss", float_precision(r.test_loss)},
                      {"test_accuracy", r.test_accuracy},
                      {"lr", float_precision(r.learning_rate)},
                      {"images_per_second", float_precision(r.images_per_second)},
                      {"seconds", float_precision(r.seconds)}};
  if (r.ema_val_loss) j["ema_val_loss"] = float_precision(*r.ema_val_loss);
  if (r.ema_val_accuracy) j["ema_val_accuracy"] = *r.ema_val_accuracy;
  return j;
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
  if (j.contains("ema_val_loss")) r.ema_val_loss = j.at("ema_val_loss").get<double>();
  if (j.contains("ema_val_accuracy")) r.ema_val_accuracy = j.at("ema_val_accuracy").get<double>();
  return r;
}

nlohmann::json step_json(const StepRecord& r) {
  return {{"type", "step"},
          {"step", r.step},
          {"epoch", r.epoch},
          {"loss", float_precision(r.loss)},
          {"lr", float_precision(r.learning_rate)},
          {"images_per_second", float_precision(r.images_per_second)},
          {"time", r.time}};
}

StepRecord step_from_json(const nlohmann::json& j) {
  StepRecord r;
  r.step = j.at("step");
  r.epoch = j.at("epoch");
  r.loss = j.at("loss");
  r.learning_rate = j.at("lr");
  r.images_per_second = j.at("images_per_second");
  r.time = j.at("time");
  return r;
}

// Calls take(row) for each row of `path` whose "type" is `type` (rows without one: "epoch").
template <class Take>
static void read_rows(const std::string& path, const std::string& type, Take take) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.empty()) continue;
    try {
      const nlohmann::json row = nlohmann::json::parse(line);
      if (row.value("type", "epoch") == type) take(row);
    } catch (const std::exception& e) {
      throw std::runtime_error(path + ":" + std::to_string(n) + ": not a " + type + " record (" +
                               e.what() + ")");
    }
  }
}

std::vector<EpochRecord> read_history(const std::string& path) {
  std::vector<EpochRecord> out;
  read_rows(path, "epoch", [&](const nlohmann::json& j) { out.push_back(epoch_from_json(j)); });
  return out;
}

std::vector<StepRecord> read_step_history(const std::string& path) {
  std::vector<StepRecord> out;
  read_rows(path, "step", [&](const nlohmann::json& j) { out.push_back(step_from_json(j)); });
  return out;
}

std::string history_jsonl(const std::vector<EpochRecord>& history,
                          const std::vector<StepRecord>& steps) {
  std::string text;
  size_t s = 0;
  for (const auto& r : history) {
    for (; s < steps.size() && steps[s].epoch <= r.epoch; ++s)
      text += step_json(steps[s]).dump() + "\n";
    text += epoch_json(r).dump() + "\n";
  }
  return text;
}

std::string history_metadata(const std::vector<EpochRecord>& history) {
  nlohmann::json all = nlohmann::json::array();
  for (const auto& r : history) all.push_back(epoch_json(r));
  return all.dump();
}

std::string step_history_metadata(const std::vector<StepRecord>& steps) {
  nlohmann::json all = nlohmann::json::array();
  for (const auto& r : steps) all.push_back(step_json(r));
  return all.dump();
}

template <class Record, class FromJson>
static std::vector<Record> records_from_metadata(const std::string& text, const std::string& source,
                                                 const char* what, FromJson from_json) {
  std::vector<Record> out;
  try {
    for (const auto& j : nlohmann::json::parse(text)) out.push_back(from_json(j));
  } catch (const std::exception& e) {
    throw std::runtime_error(source + ": the " + what + " in its metadata is malformed (" +
                             e.what() + ")");
  }
  return out;
}

std::vector<EpochRecord> history_from_metadata(const std::string& text, const std::string& source) {
  return records_from_metadata<EpochRecord>(text, source, "history", epoch_from_json);
}

std::vector<StepRecord> step_history_from_metadata(const std::string& text,
                                                   const std::string& source) {
  return records_from_metadata<StepRecord>(text, source, "step history", step_from_json);
}

void StepLog::start_epoch() {
  images_since_row_ = 0;
  last_row_ = std::chrono::steady_clock::now();
}

void StepLog::after_step(int64_t step, int epoch, double loss, double lr, long images) {
  images_since_row_ += images;
  if (step % step_row_interval != 0) return;
  const auto now = std::chrono::steady_clock::now();
  const double seconds = std::chrono::duration<double>(now - last_row_).count();
  rows_.push_back({.step = step,
                   .epoch = epoch,
                   .loss = loss,
                   .learning_rate = lr,
                   .images_per_second = seconds > 0 ? images_since_row_ / seconds : 0,
                   .time = utc_timestamp(std::chrono::system_clock::now())});
  images_since_row_ = 0;
  last_row_ = now;
}

}  // namespace forge::train
