// history.h: what a training run records, each epoch and every few steps. The history travels in
// every checkpoint's metadata (key "history", a JSON array of epochs; key "step_history", the step
// rows), the commit point of an epoch; metrics.jsonl is rebuilt from it, so a kill never loses a
// finished epoch's lines.
//
// metrics.jsonl, one JSON object a line, each with a "type":
//   {"type":"step","step":120,"epoch":3,"loss":0.41,"lr":0.0005,"images_per_second":41.7,
//    "time":"2026-12-01T11:20:03.512Z"}   every step_row_interval-th step (1-based, counted over
//                                         the run); loss is that batch's, img/s over the interval
//   {"type":"epoch","epoch":3,"train_loss":...,"val_accuracy":...,"lr":...,"seconds":...}
//                                         after each epoch, following its step rows; with
//                                         --model-ema also "ema_val_loss", "ema_val_accuracy"
// Numbers measured in float precision (losses, lr, img/s, seconds) are written as the shortest
// decimal that reads back as the same float (0.0005, not 0.0005000000237487257); accuracies are
// ratios of counts, written exactly. Step rows of an epoch a kill interrupted are lost with that
// epoch (they are written when the epoch commits), and are written again when it is redone.
#pragma once
#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
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
  // With --model-ema, the averaged weights' validation figures (train/model_ema.h; the test
  // side is evaluated on them once, for the final report); absent otherwise.
  std::optional<double> ema_val_loss, ema_val_accuracy;
};

struct StepRecord {
  int64_t step = 0;  // 1-based, over the whole run
  int epoch = 0;     // 1-based
  double loss = 0, learning_rate = 0, images_per_second = 0;
  std::string time;  // ISO 8601 UTC, milliseconds: "2026-12-01T11:20:03.512Z"
};

// A step row every this many steps.
inline constexpr int step_row_interval = 10;

// `value` rounded to float precision, as the double whose shortest decimal is the shortest one
// that reads back as that float (what a JSON writer then prints).
double float_precision(double value);
// Now, in StepRecord::time's form.
std::string utc_timestamp(std::chrono::system_clock::time_point t);

nlohmann::json epoch_json(const EpochRecord& r);
EpochRecord epoch_from_json(const nlohmann::json& j);
nlohmann::json step_json(const StepRecord& r);
StepRecord step_from_json(const nlohmann::json& j);

// Reads a metrics.jsonl file's epoch rows (rows without a "type" are epoch rows, as written
// before step rows existed); lines that do not parse are an error naming the line.
std::vector<EpochRecord> read_history(const std::string& path);
// Its step rows.
std::vector<StepRecord> read_step_history(const std::string& path);
// metrics.jsonl's text: each epoch's step rows, then its epoch row.
std::string history_jsonl(const std::vector<EpochRecord>& history,
                          const std::vector<StepRecord>& steps = {});
// The history as a checkpoint's metadata value, and back (an error names `source`).
std::string history_metadata(const std::vector<EpochRecord>& history);
std::vector<EpochRecord> history_from_metadata(const std::string& text, const std::string& source);
std::string step_history_metadata(const std::vector<StepRecord>& steps);
std::vector<StepRecord> step_history_from_metadata(const std::string& text,
                                                   const std::string& source);

// Collects step rows during training: start_epoch() before an epoch's first step (img/s leaves
// out the evaluation between epochs), after_step() after every step.
class StepLog {
 public:
  explicit StepLog(std::vector<StepRecord> kept = {}) : rows_(std::move(kept)) {}
  void start_epoch();
  void after_step(int64_t step, int epoch, double loss, double lr, long images);
  const std::vector<StepRecord>& rows() const { return rows_; }

 private:
  std::vector<StepRecord> rows_;
  long images_since_row_ = 0;
  std::chrono::steady_clock::time_point last_row_ = std::chrono::steady_clock::now();
};

}  // namespace forge::train
