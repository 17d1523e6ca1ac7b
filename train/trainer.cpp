// trainer.cpp: the training loop (see trainer.h for the run folder it writes).
//
// Each epoch: for every batch, set the step (dropout masks), set the scheduled learning rate,
// forward, cross-entropy, backward, clip, optimizer step; then evaluate the validation and test
// sides without gradients and commit the epoch (best.safetensors when validation improved,
// last.safetensors with the history, metrics.jsonl rebuilt). A non-finite loss stops the run
// before the broken weights are saved.
#include "train/trainer.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <stdexcept>

#include "engine/autograd.h"
#include "engine/io/atomic_file.h"
#include "engine/io/checkpoint.h"
#include "engine/ops.h"
#include "engine/optim/optimizer.h"
#include "engine/optim/schedule.h"
#include "models/model.h"
#include "train/evaluate.h"
#include "train/exit_code.h"
#include "train/history.h"
#include "train/options.h"
#include "train/precision.h"
#include "train/progress.h"
#include "train/report_html.h"
#include "train/resume.h"
#include "train/run_data.h"
#include "train/run_folder.h"
#include "train/saved_model.h"
#include "train/train_step.h"

namespace fs = std::filesystem;

namespace forge::train {
namespace {

std::unique_ptr<Optimizer> make_optimizer(const TrainOptions& o, std::vector<Tensor> params) {
  if (o.opt == "adamw")
    return std::make_unique<AdamW>(std::move(params),
                                   AdamOptions{.lr = o.lr, .weight_decay = o.weight_decay});
  if (o.opt == "adam")
    return std::make_unique<Adam>(std::move(params),
                                  AdamOptions{.lr = o.lr, .weight_decay = o.weight_decay});
  if (o.opt == "sgd")
    return std::make_unique<SGD>(
        std::move(params),
        SgdOptions{
            .lr = o.lr, .momentum = o.momentum, .weight_decay = o.weight_decay, .nesterov = true});
  throw std::invalid_argument("unknown optimizer '" + o.opt + "' (expected adamw, adam or sgd)");
}

LrSchedule make_schedule(const TrainOptions& o, int64_t steps_per_epoch) {
  const int64_t total = int64_t(o.epochs) * steps_per_epoch;
  // A warm-up longer than the run (tiny smoke runs) ends one step before the end instead.
  const int64_t warmup =
      std::min<int64_t>(std::llround(o.warmup_epochs * steps_per_epoch), total - 1);
  if (o.sched == "cosine") return LrSchedule::cosine(o.lr, total, warmup, o.min_lr);
  if (o.sched == "step")
    return LrSchedule::step_decay(o.lr, int64_t(o.decay_epochs) * steps_per_epoch, o.decay_rate,
                                  warmup);
  throw std::invalid_argument("unknown schedule '" + o.sched + "' (expected cosine or step)");
}

// Reports a NaN or infinite loss and returns the exit code; last.safetensors (if any) is the
// checkpoint of the last epoch whose weights were finite.
int stop_on_non_finite(const char* which, double value, int epoch, int batch,
                       const fs::path& run_dir, ProgressLine& progress) {
  progress.finish();
  std::fprintf(stderr,
               "error: the %s loss became %f in epoch %d (after %d training batches); stopping "
               "without saving the broken weights; %s. Try a lower --lr or a --clip-grad.\n",
               which, value, epoch + 1, batch, last_good_checkpoint(run_dir).c_str());
  return exit_code::non_finite_loss;
}

// The history a resumed run continues: from the checkpoint (checkpoints from before the history
// was part of them: from metrics.jsonl).
std::vector<EpochRecord> resumed_history(const std::string& checkpoint, const Metadata& metadata,
                                         const fs::path& metrics_file, int epochs_done) {
  std::vector<EpochRecord> history;
  if (auto it = metadata.find("history"); it != metadata.end())
    history = history_from_metadata(it->second, checkpoint);
  else if (fs::exists(metrics_file))
    history = read_history(metrics_file.string());
  std::erase_if(history, [&](const EpochRecord& r) { return r.epoch > epochs_done; });
  return history;
}

// The step rows a resumed run keeps: those of its finished epochs (none from older checkpoints).
std::vector<StepRecord> resumed_steps(const std::string& checkpoint, const Metadata& metadata,
                                      int epochs_done) {
  std::vector<StepRecord> steps;
  if (auto it = metadata.find("step_history"); it != metadata.end())
    steps = step_history_from_metadata(it->second, checkpoint);
  std::erase_if(steps, [&](const StepRecord& r) { return r.epoch > epochs_done; });
  return steps;
}

// The first epoch with the best validation accuracy: the one best.safetensors holds.
const EpochRecord& best_on_validation(const std::vector<EpochRecord>& history,
                                      const fs::path& run_dir) {
  if (history.empty())
    throw std::runtime_error("no epoch history to report on in " + run_dir.string() +
                             " (a checkpoint from before the history was kept, without its "
                             "metrics.jsonl?)");
  return *std::max_element(history.begin(), history.end(), [](const auto& a, const auto& b) {
    return a.val_accuracy < b.val_accuracy;
  });
}

int train_in_folder(const TrainOptions& o, RunFolder& folder) {
  const fs::path& run_dir = folder.path();
  // Refused before anything in the run folder changes (RunFolder restores its lock file).
  if (!o.resume.empty())
    check_resume(read_checkpoint_info(o.resume).metadata, o, run_dir / "split.csv");

  // ---- data ----------------------------------------------------------------------------------
  RunData data = prepare_run_data(o, run_dir);
  std::printf("data: %s, classes:", o.data_dir.c_str());
  for (const auto& c : data.class_names) std::printf(" %s", c.c_str());
  std::printf("; %zu train / %zu validation / %zu test images\n", data.train->size(),
              data.val->size(), data.test->size());

  // ---- model and optimizer -------------------------------------------------------------------
  Generator gen(o.seed);
  models::ModelSpec spec{o.model, static_cast<int>(data.class_names.size()), o.image_size,
                         o.dropout};
  auto model = models::create_model(spec, gen, o.device);
  std::printf("model: %s, %lld parameters, device %s\n", o.model.c_str(),
              static_cast<long long>(model->parameter_count()), device_name(o.device));
  auto optimizer = make_optimizer(o, model->parameters());
  const int64_t steps_per_epoch = data.train->batches_per_epoch();
  const LrSchedule schedule = make_schedule(o, steps_per_epoch);

  Metadata metadata = saved_model_metadata(spec, data.class_names, data.normalization,
                                           data::parse_fit(o.fit), data.train_files);
  metadata[run_options_key] = recorded_options(o, data.split_digest);

  int start_epoch = 0;
  double best_val_accuracy = -1;
  std::vector<EpochRecord> history;
  StepLog steps;
  const fs::path metrics_file = run_dir / "metrics.jsonl";
  if (!o.resume.empty()) {
    CheckpointInfo info = load_checkpoint(o.resume, model_tensors(*model), optimizer.get());
    require_finite(model_tensors(*model), o.resume);
    start_epoch = static_cast<int>(info.epoch);
    history = resumed_history(o.resume, info.metadata, metrics_file, start_epoch);
    steps = StepLog(resumed_steps(o.resume, info.metadata, start_epoch));
    for (const auto& r : history) best_val_accuracy = std::max(best_val_accuracy, r.val_accuracy);
    std::printf("resumed from %s after epoch %d (step %lld)\n", o.resume.c_str(), start_epoch,
                static_cast<long long>(info.step));
  }
  // Nothing in the folder changes before the first epoch of this invocation is committed (see
  // run_folder.h); then metrics.jsonl is rebuilt from the history, whatever a kill left of it.
  bool committed = false;
  auto commit_run_files = [&] {
    if (committed) return;
    if (!data.resumed) write_file_atomically((run_dir / "split.csv").string(), data.split_csv);
    write_file_atomically((run_dir / "config.json").string(), options_json(o).dump(2) + "\n");
    for (const char* stale : {"report.txt", "report.json", "report.html"}) {
      std::error_code ec;  // reports of an earlier model of this folder
      fs::remove(run_dir / stale, ec);
    }
    committed = true;
  };

  // ---- epochs --------------------------------------------------------------------------------
  const int end_epoch =
      o.stop_after_epochs > 0 ? std::min(o.epochs, start_epoch + o.stop_after_epochs) : o.epochs;
  for (int epoch = start_epoch; epoch < end_epoch; ++epoch) {
    model->train();
    char label[64];
    std::snprintf(label, sizeof label, "epoch %d/%d", epoch + 1, o.epochs);
    ProgressLine progress(label, steps_per_epoch, stdout, 20,
                          {.later_epochs = end_epoch - epoch - 1,
                           .epoch_seconds = history.empty() ? 0 : history.back().seconds});
    double loss_sum = 0;
    long seen = 0, correct = 0;
    int batch_index = 0;
    data.train->start_epoch(epoch);
    steps.start_epoch();
    Batch batch;
    while (data.train->next(batch)) {
      const int64_t step = int64_t(epoch) * steps_per_epoch + batch_index;
      const float lr = schedule.lr(step);
      const StepResult r =
          train_step(*model, *optimizer, batch_tensor(batch, o.device), batch.labels,
                     {.step = static_cast<uint64_t>(step),
                      .lr = lr,
                      .label_smoothing = o.label_smoothing,
                      .clip_grad = o.clip_grad});
      const float loss_value = r.loss_value;
      const Tensor& logits = r.logits;
      // train_step took no step on a non-finite loss: the weights are still the last good ones.
      if (!std::isfinite(loss_value))
        return stop_on_non_finite("training", loss_value, epoch, batch_index, run_dir, progress);
      loss_sum += double(loss_value) * batch.labels.size();
      correct += count_correct(logits, batch.labels);
      seen += static_cast<long>(batch.labels.size());
      ++batch_index;
      steps.after_step(step + 1, epoch + 1, loss_value, lr, long(batch.labels.size()));
      progress.update(batch_index, loss_sum / seen, double(correct) / seen, seen);
    }
    progress.finish();
    const double train_seconds = progress.seconds();

    Evaluation val =
        evaluate(*model, *data.val, data.class_names, o.device, 0, pass_progress("validation"));
    Evaluation test =
        evaluate(*model, *data.test, data.class_names, o.device, 0, pass_progress("test"));
    // Weights that overflowed show up here even when no training batch did: do not save them.
    if (!std::isfinite(val.loss))
      return stop_on_non_finite("validation", val.loss, epoch, batch_index, run_dir, progress);
    if (!std::isfinite(test.loss))
      return stop_on_non_finite("test", test.loss, epoch, batch_index, run_dir, progress);
    EpochRecord rec;
    rec.epoch = epoch + 1;
    rec.train_loss = loss_sum / std::max(1L, seen);
    rec.train_accuracy = double(correct) / std::max(1L, seen);
    rec.val_loss = val.loss;
    rec.val_accuracy = val.report.accuracy;
    rec.test_loss = test.loss;
    rec.test_accuracy = test.report.accuracy;
    rec.learning_rate = optimizer->lr();
    rec.images_per_second = seen / std::max(1e-9, train_seconds);
    rec.seconds = progress.seconds();
    history.push_back(rec);
    std::printf(
        "epoch %d/%d  train loss %.4f acc %.4f | val loss %.4f acc %.4f | test loss %.4f acc "
        "%.4f | lr %.2e | %.1f img/s | %s\n",
        rec.epoch, o.epochs, rec.train_loss, rec.train_accuracy, rec.val_loss, rec.val_accuracy,
        rec.test_loss, rec.test_accuracy, rec.learning_rate, rec.images_per_second,
        format_duration(rec.seconds).c_str());
    std::fflush(stdout);

    // The epoch's commit: best.safetensors first (chosen on validation, never on test: a kill
    // after it only makes the resumed run redo the identical epoch), then last.safetensors, the
    // commit point that carries the history, then metrics.jsonl rebuilt from that history.
    commit_run_files();
    CheckpointInfo info{
        .step = int64_t(epoch + 1) * steps_per_epoch, .epoch = epoch + 1, .metadata = metadata};
    info.metadata["history"] = history_metadata(history);
    info.metadata["step_history"] = step_history_metadata(steps.rows());
    if (rec.val_accuracy > best_val_accuracy) {
      best_val_accuracy = rec.val_accuracy;
      save_checkpoint((run_dir / "best.safetensors").string(), model_tensors(*model), nullptr,
                      info);
    }
    save_checkpoint((run_dir / "last.safetensors").string(), model_tensors(*model), optimizer.get(),
                    info);
    folder.keep();
    write_file_atomically(metrics_file.string(), history_jsonl(history, steps.rows()));
  }

  if (end_epoch < o.epochs) {
    std::printf("stopped after epoch %d of %d as asked; continue with --resume %s\n", end_epoch,
                o.epochs, (run_dir / "last.safetensors").c_str());
    return 0;
  }

  // ---- final report: the test side, on the final model and on the best-on-validation one -----
  if (!committed) {  // a resumed run that had no epoch left: its folder, repaired
    commit_run_files();
    folder.keep();
    write_file_atomically(metrics_file.string(), history_jsonl(history, steps.rows()));
  }
  const EpochRecord& best = best_on_validation(history, run_dir);
  Evaluation final_eval = evaluate(*model, *data.test, data.class_names, o.device,
                                   o.report_examples, pass_progress("test, final model"));
  SavedModel best_model = load_saved_model((run_dir / "best.safetensors").string(), o.device);
  Evaluation best_eval = evaluate(*best_model.model, *data.test, data.class_names, o.device, 0,
                                  pass_progress("test, best-on-validation model"));
  char best_label[96];
  std::snprintf(best_label, sizeof best_label,
                "best-on-validation model (best.safetensors, epoch %d, validation accuracy %.4f)",
                best.epoch, best.val_accuracy);
  const std::vector<LabelledReport> reports{
      {"final model (last.safetensors, epoch " + std::to_string(o.epochs) + ")", final_eval.report},
      {best_label, best_eval.report}};
  std::string text;
  for (const auto& r : reports)
    text += (text.empty() ? "" : "\n") + std::string("test set, ") + r.label + ":\n" +
            format_report(r.report);
  std::printf("\n%s", text.c_str());
  nlohmann::json json = report_json(final_eval.report);  // top level: the final model, as before
  json["model"] = "final";
  json["parameters"] = model->parameter_count();
  json["epoch"] = o.epochs;
  json["best_on_validation"] = report_json(best_eval.report);
  json["best_on_validation"]["epoch"] = best.epoch;
  json["best_on_validation"]["val_accuracy"] = best.val_accuracy;
  write_file_atomically((run_dir / "report.txt").string(), text);
  write_file_atomically((run_dir / "report.json").string(), json.dump(2) + "\n");
  write_file_atomically((run_dir / "report.html").string(),
                        render_report_html(o.model + " on " + o.data_dir, options_json(o), history,
                                           reports, final_eval.examples));
  std::printf("run folder: %s (report.html, metrics.jsonl, last/best.safetensors)\n",
              run_dir.c_str());
  return 0;
}

}  // namespace

int run_training(const TrainOptions& o) {
  const ScopedPrecision precision(o.device, o.precision, o.tf32);  // refused before the folder
  RunFolder folder(o);
  std::printf("run folder: %s\n", folder.path().c_str());
  try {
    return train_in_folder(o, folder);
  } catch (const WriteError& e) {  // a full disk: say what is still safe
    throw WriteError(std::string(e.what()) + "; " + last_good_checkpoint(folder.path()));
  }
}

}  // namespace forge::train
