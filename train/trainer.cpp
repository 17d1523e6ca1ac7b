// trainer.cpp: the training loop (see trainer.h for the run folder it writes).
//
// Each epoch: for every batch, set the step (dropout masks), set the scheduled learning rate,
// forward, cross-entropy, backward, clip, optimizer step; then evaluate the test side without
// gradients, append a metrics line and write last.safetensors (and best.safetensors). A
// non-finite loss stops the run before the broken weights are saved.
#include "train/trainer.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>

#include "engine/autograd.h"
#include "engine/io/checkpoint.h"
#include "engine/ops.h"
#include "engine/optim/optimizer.h"
#include "engine/optim/schedule.h"
#include "models/model.h"
#include "train/evaluate.h"
#include "train/history.h"
#include "train/progress.h"
#include "train/report_html.h"
#include "train/run_data.h"
#include "train/saved_model.h"
#include "train/train_step.h"

namespace fs = std::filesystem;

namespace forge::train {
namespace {

// A float as the shortest decimal that reads back as the same float (0.2, not 0.200000003).
double tidy(float v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.7g", v);
  return std::strtod(buf, nullptr);
}

nlohmann::json options_json(const TrainOptions& o) {
  return {{"model", o.model},
          {"image_size", o.image_size},
          {"fit", o.fit},
          {"dropout", tidy(o.dropout)},
          {"data_dir", o.data_dir},
          {"split_file", o.split_file},
          {"train_fraction", tidy(o.train_fraction)},
          {"workers", o.workers},
          {"strict", o.strict},
          {"drop_last", o.drop_last},
          {"augment",
           {{"rotate_degrees", tidy(o.augment.rotate_degrees)},
            {"rotate_prob", tidy(o.augment.rotate_prob)},
            {"hflip_prob", tidy(o.augment.hflip_prob)},
            {"vflip_prob", tidy(o.augment.vflip_prob)},
            {"crop_prob", tidy(o.augment.crop_prob)},
            {"crop_scale_min", tidy(o.augment.crop_scale_min)},
            {"brightness_prob", tidy(o.augment.brightness_prob)},
            {"brightness_range", {tidy(o.augment.brightness_min), tidy(o.augment.brightness_max)}},
            {"blur_prob", tidy(o.augment.blur_prob)},
            {"blur_sigma_max", tidy(o.augment.blur_sigma_max)}}},
          {"epochs", o.epochs},
          {"batch_size", o.batch_size},
          {"lr", tidy(o.lr)},
          {"opt", o.opt},
          {"sched", o.sched},
          {"warmup_epochs", tidy(o.warmup_epochs)},
          {"min_lr", tidy(o.min_lr)},
          {"decay_epochs", o.decay_epochs},
          {"decay_rate", tidy(o.decay_rate)},
          {"weight_decay", tidy(o.weight_decay)},
          {"momentum", tidy(o.momentum)},
          {"label_smoothing", tidy(o.label_smoothing)},
          {"clip_grad", tidy(o.clip_grad)},
          {"seed", o.seed},
          {"device", device_name(o.device)},
          {"max_images_per_class", o.max_images_per_class}};
}

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

void append_line(const fs::path& file, const std::string& line) {
  std::ofstream out(file, std::ios::app);
  out << line << "\n";
  if (!out) throw std::runtime_error("cannot write " + file.string());
}

void write_file(const fs::path& file, const std::string& text) {
  std::ofstream out(file);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + file.string());
}

// Reports a NaN or infinite loss and returns the exit code; last.safetensors (if any) is the
// checkpoint of the last epoch whose weights were finite.
int stop_on_non_finite(const char* which, double value, int epoch, int batch,
                       const fs::path& run_dir, ProgressLine& progress) {
  progress.finish();
  const fs::path last = run_dir / "last.safetensors";
  std::fprintf(stderr,
               "error: the %s loss became %f in epoch %d (after %d training batches); stopping "
               "without saving the broken weights. Last good checkpoint: %s. Try a lower --lr or "
               "a --clip-grad.\n",
               which, value, epoch + 1, batch,
               fs::exists(last) ? last.c_str() : "none (no epoch had finished)");
  return 3;
}

}  // namespace

int run_training(const TrainOptions& o) {
  const fs::path run_dir = o.output.empty()
                               ? fs::path("runs") / (o.model + "-" + std::to_string(o.seed))
                               : fs::path(o.output);
  fs::create_directories(run_dir);

  // ---- data ----------------------------------------------------------------------------------
  RunData data = prepare_run_data(o, run_dir);
  std::printf("data: %s, classes:", o.data_dir.c_str());
  for (const auto& c : data.class_names) std::printf(" %s", c.c_str());
  std::printf("; %zu train / %zu test images\n", data.train->size(), data.test->size());

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

  const Metadata metadata =
      saved_model_metadata(spec, data.class_names, data.normalization, data::parse_fit(o.fit));

  int start_epoch = 0;
  double best_accuracy = -1;
  std::vector<EpochRecord> history;
  const fs::path metrics_file = run_dir / "metrics.jsonl";
  if (!o.resume.empty()) {
    CheckpointInfo info = load_checkpoint(o.resume, model_tensors(*model), optimizer.get());
    start_epoch = static_cast<int>(info.epoch);
    if (fs::exists(metrics_file)) {
      for (const auto& r : read_history(metrics_file.string()))
        if (r.epoch <= start_epoch) history.push_back(r);
    }
    for (const auto& r : history) best_accuracy = std::max(best_accuracy, r.test_accuracy);
    std::printf("resumed from %s after epoch %d (step %lld)\n", o.resume.c_str(), start_epoch,
                static_cast<long long>(info.step));
  }
  // metrics.jsonl holds exactly the epochs done, also after a resume from an earlier epoch.
  {
    std::string kept;
    for (const auto& r : history) kept += epoch_json(r).dump() + "\n";
    write_file(metrics_file, kept);
  }
  write_file(run_dir / "config.json", options_json(o).dump(2) + "\n");

  // ---- epochs --------------------------------------------------------------------------------
  const int end_epoch =
      o.stop_after_epochs > 0 ? std::min(o.epochs, start_epoch + o.stop_after_epochs) : o.epochs;
  for (int epoch = start_epoch; epoch < end_epoch; ++epoch) {
    model->train();
    char label[64];
    std::snprintf(label, sizeof label, "epoch %d/%d", epoch + 1, o.epochs);
    ProgressLine progress(label, static_cast<int>(steps_per_epoch));
    double loss_sum = 0;
    long seen = 0, correct = 0;
    int batch_index = 0;
    data.train->start_epoch(epoch);
    Batch batch;
    while (data.train->next(batch)) {
      const int64_t step = int64_t(epoch) * steps_per_epoch + batch_index;
      const StepResult r =
          train_step(*model, *optimizer, batch_tensor(batch, o.device), batch.labels,
                     {.step = static_cast<uint64_t>(step),
                      .lr = schedule.lr(step),
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
      progress.update(batch_index, loss_sum / seen, double(correct) / seen, seen);
    }
    progress.finish();
    const double train_seconds = progress.seconds();

    Evaluation test = evaluate(*model, *data.test, data.class_names, o.device);
    // Weights that overflowed show up here even when no training batch did: do not save them.
    if (!std::isfinite(test.loss))
      return stop_on_non_finite("test", test.loss, epoch, batch_index, run_dir, progress);
    EpochRecord rec;
    rec.epoch = epoch + 1;
    rec.train_loss = loss_sum / std::max(1L, seen);
    rec.train_accuracy = double(correct) / std::max(1L, seen);
    rec.test_loss = test.loss;
    rec.test_accuracy = test.report.accuracy;
    rec.learning_rate = optimizer->lr();
    rec.images_per_second = seen / std::max(1e-9, train_seconds);
    rec.seconds = progress.seconds();
    history.push_back(rec);
    std::printf(
        "epoch %d/%d  train loss %.4f acc %.4f | test loss %.4f acc %.4f | lr %.2e | %.1f img/s "
        "| %s\n",
        rec.epoch, o.epochs, rec.train_loss, rec.train_accuracy, rec.test_loss, rec.test_accuracy,
        rec.learning_rate, rec.images_per_second, format_duration(rec.seconds).c_str());

    CheckpointInfo info{
        .step = int64_t(epoch + 1) * steps_per_epoch, .epoch = epoch + 1, .metadata = metadata};
    save_checkpoint((run_dir / "last.safetensors").string(), model_tensors(*model), optimizer.get(),
                    info);
    if (rec.test_accuracy > best_accuracy) {
      best_accuracy = rec.test_accuracy;
      save_checkpoint((run_dir / "best.safetensors").string(), model_tensors(*model), nullptr,
                      info);
    }
    append_line(metrics_file, epoch_json(rec).dump());
  }

  if (end_epoch < o.epochs) {
    std::printf("stopped after epoch %d of %d as asked; continue with --resume %s\n", end_epoch,
                o.epochs, (run_dir / "last.safetensors").c_str());
    return 0;
  }

  // ---- final report (the model after the last epoch) -----------------------------------------
  Evaluation final_eval =
      evaluate(*model, *data.test, data.class_names, o.device, o.report_examples);
  const std::string text = format_report(final_eval.report);
  std::printf("\ntest set, model after epoch %d:\n%s", o.epochs, text.c_str());
  write_file(run_dir / "report.txt", text);
  write_file(run_dir / "report.json", report_json(final_eval.report).dump(2) + "\n");
  write_file(run_dir / "report.html",
             render_report_html(o.model + " on " + o.data_dir, options_json(o), history,
                                final_eval.report, final_eval.examples));
  std::printf("run folder: %s (report.html, metrics.jsonl, last/best.safetensors)\n",
              run_dir.c_str());
  return 0;
}

}  // namespace forge::train
