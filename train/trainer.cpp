// trainer.cpp: the training loop (see trainer.h for the run folder it writes).
//
// Each epoch: for every batch (on a GPU uploaded on the copy stream while the step before runs,
// train/batch_stream.h), set the step (dropout masks), set the scheduled learning rate,
// forward, cross-entropy, backward, clip, optimizer step; then evaluate the validation and test
// sides without gradients and commit the epoch (best.safetensors when validation improved,
// last.safetensors with the history, metrics.jsonl rebuilt). A non-finite loss stops the run
// before the broken weights are saved (the training loss is read back once a log interval,
// train/step_metrics.h, so it is found there, never later than the epoch's end).
#include "train/trainer.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>

#include "engine/autograd.h"
#include "engine/io/atomic_file.h"
#include "engine/io/checkpoint.h"
#include "engine/ops.h"
#include "engine/optim/optimizer.h"
#include "engine/optim/schedule.h"
#include "models/model.h"
#include "train/batch_stream.h"
#include "train/data_parallel.h"
#include "train/evaluate.h"
#include "train/exit_code.h"
#include "train/graph_step.h"
#include "train/history.h"
#include "train/model_ema.h"
#include "train/options.h"
#include "train/precision.h"
#include "train/progress.h"
#include "train/report_html.h"
#include "train/resume.h"
#include "train/run_data.h"
#include "train/run_folder.h"
#include "train/run_report.h"
#include "train/saved_model.h"
#include "train/step_metrics.h"
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

// The same for the training loss, which is read back once a log interval (train/step_metrics.h):
// found at `found_at`, first at shown.first_non_finite_step; the weights of every step since are
// not finite either, and none is saved.
int stop_on_non_finite_training(const MetricsSnapshot& shown, int64_t found_at, int epoch,
                                const fs::path& run_dir, ProgressLine& progress) {
  progress.finish();
  std::fprintf(stderr,
               "error: the training loss became non-finite at step %lld in epoch %d (found at "
               "step %lld: the loss is read back every %d steps); stopping without saving the "
               "broken weights; %s. Try a lower --lr or a --clip-grad.\n",
               static_cast<long long>(shown.first_non_finite_step + 1), epoch + 1,
               static_cast<long long>(found_at + 1), step_row_interval,
               last_good_checkpoint(run_dir).c_str());
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

// `folder`: the run folder on the rank that writes it (rank 0), null on the others.
int train_in_folder(const TrainOptions& o, RunFolder* folder, const fs::path& run_dir,
                    DataParallel& dp) {
  // Refused before anything in the run folder changes (RunFolder restores its lock file).
  if (!o.resume.empty())
    check_resume(read_checkpoint_info(o.resume).metadata, o, run_dir / "split.csv");

  // ---- data ----------------------------------------------------------------------------------
  RunData data = prepare_run_data(o, run_dir);
  std::printf("data: %s, classes:", o.data_dir.c_str());
  for (const auto& c : data.class_names) std::printf(" %s", c.c_str());
  std::printf("; %zu train / %zu validation / %zu test images\n", data.train->size(),
              data.val->size(), data.test->size());
  dp.check_shares(data.train->size(), o.batch_size, o.drop_last);

  // ---- model and optimizer -------------------------------------------------------------------
  Generator gen(o.seed);
  models::ModelSpec spec{o.model,      static_cast<int>(data.class_names.size()),
                         o.image_size, o.dropout,
                         o.drop_path,  o.stem};
  auto model = models::create_model(spec, gen, o.device);
  std::printf("model: %s, %lld parameters, device %s\n", o.model.c_str(),
              static_cast<long long>(model->parameter_count()), device_name(o.device));
  auto optimizer = make_optimizer(o, model->parameters());
  const int64_t steps_per_epoch = data.train->batches_per_epoch();
  const LrSchedule schedule = make_schedule(o, steps_per_epoch);
  std::unique_ptr<ModelEma> ema;
  if (o.model_ema) {
    Generator unused(o.seed);  // the average's own initial weights are overwritten at once
    ema = std::make_unique<ModelEma>(models::create_model(spec, unused, o.device), *model,
                                     o.model_ema_decay);
  }
  const NamedTensors ema_tensors = ema ? ema->tensors() : NamedTensors{};

  Metadata metadata = saved_model_metadata(*model, data.class_names, data.normalization,
                                           data::parse_fit(o.fit), data.train_files);
  metadata[run_options_key] = recorded_options(o, data.split_digest);

  int start_epoch = 0;
  double best_val_accuracy = -1;
  std::vector<EpochRecord> history;
  StepLog steps;
  const fs::path metrics_file = run_dir / "metrics.jsonl";
  if (!o.resume.empty()) {
    CheckpointInfo info = load_checkpoint(o.resume, model_tensors(*model), optimizer.get(),
                                          ema ? &ema_tensors : nullptr);
    require_finite(model_tensors(*model), o.resume);
    start_epoch = static_cast<int>(info.epoch);
    history = resumed_history(o.resume, info.metadata, metrics_file, start_epoch);
    steps = StepLog(resumed_steps(o.resume, info.metadata, start_epoch));
    for (const auto& r : history) best_val_accuracy = std::max(best_val_accuracy, r.val_accuracy);
    std::printf("resumed from %s after epoch %d (step %lld)\n", o.resume.c_str(), start_epoch,
                static_cast<long long>(info.step));
  }
  dp.start(*model, o.sync_bn, o.bucket_mb);
  // report.html: this run's history with the test-side reports of `reports`' models.
  auto write_report = [&](const std::string& status, std::vector<LabelledReport> reports,
                          std::vector<ExamplePrediction> examples) {
    ReportPage page{.title = o.model + " on " + o.data_dir,
                    .summary = {.model = o.model,
                                .parameters = model->parameter_count(),
                                .command_line = o.command_line,
                                .status = status,
                                .epochs = o.epochs,
                                .steps_per_epoch = steps_per_epoch},
                    .config = options_json(o),
                    .history = history,
                    .steps = steps.rows(),
                    .reports = std::move(reports),
                    .examples = std::move(examples)};
    write_run_report((run_dir / "report.html").string(), std::move(page), *model, o.device);
  };
  // Nothing in the folder changes before the first epoch of this invocation is committed (see
  // run_folder.h); then metrics.jsonl is rebuilt from the history, whatever a kill left of it.
  bool committed = false;
  auto commit_run_files = [&] {
    if (committed) return;
    if (!data.resumed) write_file_atomically((run_dir / "split.csv").string(), data.split_csv);
    write_file_atomically((run_dir / "config.json").string(), options_json(o).dump(2) + "\n");
    for (const char* stale : {"report.txt", "report.json", "report.html", "ema.safetensors"}) {
      // Reports of an earlier model of this folder, and its average unless this run keeps one.
      if (o.model_ema && std::string(stale) == "ema.safetensors") continue;
      std::error_code ec;
      fs::remove(run_dir / stale, ec);
    }
    committed = true;
  };

  // ---- epochs --------------------------------------------------------------------------------
  const int end_epoch =
      o.stop_after_epochs > 0 ? std::min(o.epochs, start_epoch + o.stop_after_epochs) : o.epochs;
  std::optional<Evaluation> last_test;    // the test side on the latest epoch's model
  StepMetrics metrics(o.device);          // summed on the device, read once a log interval
  std::unique_ptr<GraphStep> graph_step;  // --cuda-graph: adds to `metrics` (graph_step.h)
  if (o.cuda_graph)
    graph_step = std::make_unique<GraphStep>(*model, *optimizer, metrics, o.device, o.batch_size,
                                             int(data.class_names.size()), ema.get());
  BatchStream batches(o.device, o.batch_size);  // uploads batch k+1 while step k runs
  for (int epoch = start_epoch; epoch < end_epoch; ++epoch) {
    model->train();
    char label[64];
    std::snprintf(label, sizeof label, "epoch %d/%d", epoch + 1, o.epochs);
    // Updated once a log interval: a plain line every 2 updates is one every 20 steps.
    ProgressLine progress(label, steps_per_epoch, stdout, 2,
                          {.later_epochs = end_epoch - epoch - 1,
                           .epoch_seconds = history.empty() ? 0 : history.back().seconds});
    long seen = 0;
    int batch_index = 0;
    data.train->start_epoch(epoch);
    batches.start([&](Batch& b) { return data.train->next(b); });
    steps.start_epoch();
    metrics.reset();
    MetricsSnapshot shown;
    // The host's one wait for the device in a log interval: false when a loss was not finite.
    auto read_metrics = [&] {
      shown = dp.reduce(metrics.read());
      if (shown.first_non_finite_step >= 0) return false;
      progress.update(batch_index, shown.loss_sum / seen, double(shown.correct) / seen, seen);
      return true;
    };
    Batch batch;
    while (batches.next(batch)) {
      const int64_t step = int64_t(epoch) * steps_per_epoch + batch_index;
      const float lr = schedule.lr(step);
      const int64_t rows = dp.global_rows(batch_index, data.train->size(), o.batch_size);
      const StepSettings settings{.step = static_cast<uint64_t>(step),
                                  .lr = lr,
                                  .label_smoothing = o.label_smoothing,
                                  .clip_grad = o.clip_grad,
                                  .sample_keys = batch.seeds,
                                  .mix_labels = batch.mix_labels,
                                  .mix_weights = batch.mix_weights,
                                  .reducer = dp.reducer(),
                                  .grad_weight = dp.step_share(batch.n, rows)};
      // A non-finite loss is found at the next read below, and the run stops without saving:
      // the average may take in the broken weights meanwhile, as the model does.
      if (graph_step && graph_step->takes(batch)) {
        graph_step->run(batch, batches.images(), settings);  // the EMA's update included
      } else {  // the last, partial batch of an epoch with --cuda-graph runs uncaptured
        const StepResult r =
            train_step(*model, *optimizer, batches.images(), batch.labels, settings);
        metrics.add(r.loss, r.logits, batch.labels, step);
        if (ema) ema->update(*model);
      }
      seen += static_cast<long>(rows);
      ++batch_index;
      if ((step + 1) % step_row_interval == 0 && !read_metrics())
        return stop_on_non_finite_training(shown, step, epoch, run_dir, progress);
      // A step row (every step_row_interval-th step) shows its loss: read just above.
      steps.after_step(step + 1, epoch + 1, shown.last_loss, lr, long(rows));
    }
    if (!read_metrics())
      return stop_on_non_finite_training(shown, int64_t(epoch) * steps_per_epoch + batch_index - 1,
                                         epoch, run_dir, progress);
    progress.finish();
    const double train_seconds = progress.seconds();
    if (!dp.writer()) continue;  // rank 0 alone evaluates and writes (train/data_parallel.h)
    if (const std::string line = dp.reduce_summary(); !line.empty())
      std::printf("%s\n", line.c_str());

    Evaluation val =
        evaluate(*model, *data.val, data.class_names, o.device, 0, pass_progress("validation"));
    Evaluation test = evaluate(*model, *data.test, data.class_names, o.device, o.report_examples,
                               pass_progress("test"));
    // Weights that overflowed show up here even when no training batch did: do not save them.
    if (!std::isfinite(val.loss))
      return stop_on_non_finite("validation", val.loss, epoch, batch_index, run_dir, progress);
    if (!std::isfinite(test.loss))
      return stop_on_non_finite("test", test.loss, epoch, batch_index, run_dir, progress);
    EpochRecord rec;
    rec.epoch = epoch + 1;
    rec.train_loss = shown.loss_sum / std::max(1L, seen);
    rec.train_accuracy = double(shown.correct) / std::max(1L, seen);
    rec.val_loss = val.loss;
    rec.val_accuracy = val.report.accuracy;
    rec.test_loss = test.loss;
    rec.test_accuracy = test.report.accuracy;
    rec.learning_rate = optimizer->lr();
    rec.images_per_second = seen / std::max(1e-9, train_seconds);
    rec.seconds = progress.seconds();
    if (ema) {  // on the validation side only: the test side is evaluated once, at the end
      Evaluation ema_val = evaluate(ema->model(), *data.val, data.class_names, o.device, 0,
                                    pass_progress("validation, EMA"));
      rec.ema_val_loss = ema_val.loss;
      rec.ema_val_accuracy = ema_val.report.accuracy;
    }
    history.push_back(rec);
    std::printf(
        "epoch %d/%d  train loss %.4f acc %.4f | val loss %.4f acc %.4f | test loss %.4f acc "
        "%.4f | lr %.2e | %.1f img/s | %s\n",
        rec.epoch, o.epochs, rec.train_loss, rec.train_accuracy, rec.val_loss, rec.val_accuracy,
        rec.test_loss, rec.test_accuracy, rec.learning_rate, rec.images_per_second,
        format_duration(rec.seconds).c_str());
    if (ema)
      std::printf("epoch %d/%d  EMA of the weights: val loss %.4f acc %.4f\n", rec.epoch, o.epochs,
                  *rec.ema_val_loss, *rec.ema_val_accuracy);
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
    if (ema) save_checkpoint((run_dir / "ema.safetensors").string(), ema_tensors, nullptr, info);
    save_checkpoint((run_dir / "last.safetensors").string(), model_tensors(*model), optimizer.get(),
                    info, ema_tensors);
    folder->keep();
    write_file_atomically(metrics_file.string(), history_jsonl(history, steps.rows()));
    write_report(
        "epoch " + std::to_string(rec.epoch) + " of " + std::to_string(o.epochs) +
            " done (rewritten after every epoch; a stopped run keeps its last one)",
        {{"model after epoch " + std::to_string(rec.epoch) + " (last.safetensors)", test.report}},
        test.examples);
    last_test = std::move(test);
  }

  if (!dp.writer()) return 0;
  if (end_epoch < o.epochs) {
    std::printf("stopped after epoch %d of %d as asked; continue with --resume %s\n", end_epoch,
                o.epochs, (run_dir / "last.safetensors").c_str());
    return 0;
  }

  // ---- final report: the test side, on the final model and on the best-on-validation one -----
  if (!committed) {  // a resumed run that had no epoch left: its folder, repaired
    commit_run_files();
    folder->keep();
    write_file_atomically(metrics_file.string(), history_jsonl(history, steps.rows()));
  }
  const EpochRecord& best = best_on_validation(history, run_dir);
  // The final model is the last epoch's: its test pass is reused when this invocation trained it.
  Evaluation final_eval = last_test
                              ? std::move(*last_test)
                              : evaluate(*model, *data.test, data.class_names, o.device,
                                         o.report_examples, pass_progress("test, final model"));
  // When the best epoch is the last, best.safetensors holds the final model's weights: its test
  // report is the final model's, not a second pass over the same weights.
  const ClassificationReport best_report =
      best.epoch == o.epochs
          ? final_eval.report
          : evaluate(*load_saved_model((run_dir / "best.safetensors").string(), o.device).model,
                     *data.test, data.class_names, o.device, 0,
                     pass_progress("test, best-on-validation model"))
                .report;
  char best_label[96];
  std::snprintf(best_label, sizeof best_label,
                "best-on-validation model (best.safetensors, epoch %d, validation accuracy %.4f)",
                best.epoch, best.val_accuracy);
  std::vector<LabelledReport> reports{
      {"final model (last.safetensors, epoch " + std::to_string(o.epochs) + ")", final_eval.report},
      {best_label, best_report}};
  std::optional<Evaluation> ema_eval;
  if (ema) {
    ema_eval = evaluate(ema->model(), *data.test, data.class_names, o.device, 0,
                        pass_progress("test, EMA model"));
    reports.push_back({"EMA of the weights (ema.safetensors, decay " +
                           option_text(float_precision(o.model_ema_decay)) + ", epoch " +
                           std::to_string(o.epochs) + ")",
                       ema_eval->report});
  }
  std::string text;
  for (const auto& r : reports) {
    if (!text.empty()) text += "\n";
    text += "test set, " + r.label + ":\n" + format_report(r.report);
  }
  std::printf("\n%s", text.c_str());
  nlohmann::json json = report_json(final_eval.report);  // top level: the final model, as before
  json["model"] = "final";
  json["parameters"] = model->parameter_count();
  json["epoch"] = o.epochs;
  json["best_on_validation"] = report_json(best_report);
  json["best_on_validation"]["epoch"] = best.epoch;
  json["best_on_validation"]["val_accuracy"] = best.val_accuracy;
  if (ema_eval) {
    json["model_ema"] = report_json(ema_eval->report);
    json["model_ema"]["decay"] = float_precision(o.model_ema_decay);
  }
  write_file_atomically((run_dir / "report.txt").string(), text);
  write_file_atomically((run_dir / "report.json").string(), json.dump(2) + "\n");
  write_report("finished", reports, std::move(final_eval.examples));
  std::printf("run folder: %s (report.html, metrics.jsonl, last/best.safetensors)\n",
              run_dir.c_str());
  return 0;
}

}  // namespace

int run_training(const TrainOptions& o) {
  DataParallel dp(o);  // first: it picks a cuda rank's GPU
  const ScopedPrecision precision(o.device, o.precision, o.tf32);  // refused before the folder
  check_cuda_graph_options(o, dp.ranks());
  std::optional<RunFolder> folder;
  if (dp.writer()) folder.emplace(o);
  const fs::path run_dir = dp.shared_path(folder ? folder->path().string() : "");
  std::printf("run folder: %s\n", run_dir.c_str());
  if (dp.ranks() > 1)
    std::printf("data parallel: %d ranks (%s), global batch %d\n", dp.ranks(),
                dp.comm().name().c_str(), o.batch_size);
  try {
    return train_in_folder(o, folder ? &*folder : nullptr, run_dir, dp);
  } catch (const WriteError& e) {  // a full disk: say what is still safe
    throw WriteError(std::string(e.what()) + "; " + last_good_checkpoint(run_dir));
  }
}

}  // namespace forge::train
