// trainer.h: one training run, from an image folder to a run folder.
//
// A run folder holds:
//   train.lock           the lock of the run using the folder, with its pid (train/run_folder.h)
//   config.json          every option of the run (what produced it)
//   split.csv            each image and its side (train/val/test), reusable with --split
//   metrics.jsonl        one line per finished epoch: losses and accuracies on the training,
//                        validation and test sides, learning rate, images/s; before it, a step
//                        row every 10 steps (train/history.h)
//   last.safetensors     the model, optimizer, progress and history after the latest epoch
//   best.safetensors     the model of the epoch with the best validation accuracy so far (the
//                        test side never chooses anything)
//   ema.safetensors      with --model-ema: the average of the weights after the latest epoch
//                        (also in last.safetensors, under "ema.", for --resume)
//   report.txt / .json   classification report and confusion matrix on the test side, of the
//                        final model, of the best-on-validation one (and of the EMA), each labelled
//   report.html          the same with curves, saliency maps and test predictions, rewritten
//                        after every epoch (train/report_html.h)
//
// One run owns its folder; a fresh run is refused a folder that holds a run unless --resume or
// --overwrite; without --output a new runs/<model>-<seed>[-N] is made; a run that fails before
// its first epoch leaves the folder as it found it (train/run_folder.h).
//
// Durability: every file goes through one checked writer (engine/io/atomic_file.h), so a file is
// whole or absent, and a full disk stops the run naming the file and the last good checkpoint.
// An epoch commits in the order best.safetensors, last.safetensors (the commit point: its
// metadata carries the history, every finished epoch's record), metrics.jsonl (rebuilt from that
// history). After any kill -9, --resume continues from last.safetensors and metrics.jsonl again
// holds every finished epoch exactly once. Nothing is written before the first epoch commits.
//
// Reproducibility: weights, the split, shuffles, augmentations and dropout masks all derive from
// the seed and the step, so --resume from last.safetensors finishes exactly as an uninterrupted
// run would (same losses, same weights).
#pragma once
#include <cstdint>
#include <string>

#include "data/mixup.h"
#include "data/random_erasing.h"
#include "data/transforms.h"
#include "engine/device.h"

namespace forge::train {

struct TrainOptions {
  // model
  std::string model = "vit";
  std::string stem = "patch";  // the ViT's embedding: "patch" or "conv" (models/conv_stem.h)
  int image_size = 120;
  std::string fit = "crop";  // square input from any aspect ratio: centre "crop" or "pad"
  float dropout = -1.f;      // < 0: the preset's own rate
  // data
  std::string data_dir = "../shared/data/selfie2anime";
  std::string split_file;  // reuse a split.csv instead of drawing one
  float train_fraction = 0.7f;
  float val_fraction = 0.1f;  // of the training side, held out to choose best.safetensors
  int workers = 2;
  bool strict = false;  // refuse unreadable images instead of skipping them
  bool drop_last = false;
  data::AugmentOptions augment;  // training images only (the seed paper's Table 2)
  // optimisation
  int epochs = 20;
  int batch_size = 32;
  float lr = 5e-4f;
  std::string opt = "adamw";     // adamw | adam | sgd
  std::string sched = "cosine";  // cosine | step
  float warmup_epochs = 1.f;
  float min_lr = 1e-6f;
  int decay_epochs = 10;  // step schedule: multiply by decay_rate every decay_epochs
  float decay_rate = 0.1f;
  float weight_decay = 0.05f;
  float momentum = 0.9f;  // sgd
  float label_smoothing = 0.1f;
  float clip_grad = 1.f;  // <= 0: no clipping
  // regularisers of a timm recipe, all off by default
  float drop_path = 0.f;         // stochastic depth of the last residual block (models/model.h)
  data::MixOptions mix;          // mixup and cutmix (data/mixup.h)
  data::ErasingOptions erasing;  // random erasing (data/random_erasing.h)
  bool model_ema = false;        // an average of the weights (train/model_ema.h)
  float model_ema_decay = 0.9998f;
  // run
  uint64_t seed = 42;
  Device device = Device::cpu;
  std::string output;            // run folder; default: see train/run_folder.h
  std::string resume;            // a last.safetensors to continue from
  bool overwrite = false;        // a fresh run may replace the run in `output`
  int max_images_per_class = 0;  // > 0: a smaller data set (smoke runs)
  int stop_after_epochs = 0;     // > 0: stop after this many epochs of this invocation
  int report_examples = 48;      // test images shown in report.html
  std::string command_line;      // as given, for report.html (set by tools/train)
  // precision (docs/MIXED_PRECISION.md)
  std::string precision = "fp32";  // fp32 | bf16: the inputs of the GPU matmuls
  bool tf32 = false;               // fp32 GEMMs with tf32 inputs (sim and cuda)
  // data-parallel training (mpirun -np N; train/data_parallel.h)
  bool sync_bn = false;     // batch-norm statistics over every rank's share, not per rank
  float bucket_mb = 25;     // gradient all-reduce bucket size in MiB (DDP's bucket_cap_mb)
  bool cuda_graph = false;  // the step captured as a CUDA graph (cuda; sim emulates): graph_step.h
};

// Runs training; returns the process exit code (0 on success). Errors that stop a run (a NaN
// loss, bad data) are printed with what to do; the last good checkpoint is kept.
int run_training(const TrainOptions& options);

}  // namespace forge::train
