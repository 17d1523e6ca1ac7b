// train: trains an image classifier on an image folder and writes a run folder (see
// train/trainer.h). Flags follow timm's train.py where one exists.
//
//   build/bin/train --model vit --data ../shared/data/selfie2anime --epochs 20 --output runs/vit
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>

#include "engine/cuda/builtin.h"
#include "models/model.h"
#include "train/trainer.h"

int main(int argc, char** argv) {
  forge::register_builtin_backends();  // --device sim / cuda, when built in
  forge::train::TrainOptions o;
  std::string device = "cpu";
  CLI::App app{
      "Train a ViT, HRNet or CNN image classifier on an image folder (one sub-folder "
      "per class)."};
  app.get_formatter()->column_width(34);
  // A flag given twice takes its last value, so scripts can set defaults that users override.
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  auto presets = forge::models::model_presets();
  app.add_option("--model", o.model, "model preset")
      ->check(CLI::IsMember(presets))
      ->capture_default_str();
  app.add_option("--data", o.data_dir, "image folder, one sub-folder per class")
      ->capture_default_str();
  app.add_option("--split", o.split_file, "reuse a split.csv from an earlier run");
  app.add_option("--train-fraction", o.train_fraction, "share of each class used for training")
      ->check(CLI::Range(0.05, 0.95))
      ->capture_default_str();
  app.add_option("--val-fraction", o.val_fraction,
                 "share of the training side held out to choose best.safetensors")
      ->check(CLI::Range(0.01, 0.9))
      ->capture_default_str();
  app.add_option("--epochs", o.epochs)->check(CLI::Range(1, 100000))->capture_default_str();
  app.add_option("-b,--batch-size", o.batch_size)
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  app.add_option("--lr", o.lr, "peak learning rate")
      ->check(CLI::Range(1e-9, 1e3))
      ->capture_default_str();
  app.add_option("--opt", o.opt, "optimizer")
      ->check(CLI::IsMember({"adamw", "adam", "sgd"}))
      ->capture_default_str();
  app.add_option("--sched", o.sched, "learning-rate schedule")
      ->check(CLI::IsMember({"cosine", "step"}))
      ->capture_default_str();
  app.add_option("--warmup-epochs", o.warmup_epochs)
      ->check(CLI::Range(0.0, 1e4))
      ->capture_default_str();
  app.add_option("--min-lr", o.min_lr, "cosine floor")
      ->check(CLI::Range(0.0, 1e3))
      ->capture_default_str();
  app.add_option("--decay-epochs", o.decay_epochs, "step schedule period")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app.add_option("--decay-rate", o.decay_rate, "step schedule factor")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  app.add_option("--weight-decay", o.weight_decay)
      ->check(CLI::Range(0.0, 10.0))
      ->capture_default_str();
  app.add_option("--momentum", o.momentum, "SGD momentum")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  app.add_option("--smoothing", o.label_smoothing, "label smoothing")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  app.add_option("--clip-grad", o.clip_grad, "max global gradient norm (0: off)")
      ->check(CLI::Range(0.0, 1e6))
      ->capture_default_str();
  app.add_option("--fit", o.fit, "square input: centre crop or pad the shorter side")
      ->check(CLI::IsMember({"crop", "pad"}))
      ->capture_default_str();
  app.add_option("--drop", o.dropout, "dropout rate (default: the preset's)")
      ->check(CLI::Range(0.0, 0.99));
  app.add_option("--img-size", o.image_size, "input size in pixels")
      ->check(CLI::Range(16, 1024))
      ->capture_default_str();
  app.add_option("--seed", o.seed)->capture_default_str();
  app.add_option("--device", device, "cpu, sim or cuda")
      ->check(CLI::IsMember({"cpu", "sim", "cuda"}))
      ->capture_default_str();
  app.add_option("-j,--workers", o.workers, "data loading threads")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--output", o.output, "run folder (default: a new runs/<model>-<seed>[-N])");
  app.add_option("--resume", o.resume, "continue from a last.safetensors");
  app.add_flag("--overwrite", o.overwrite, "let a fresh run replace the run in --output");
  app.add_flag("--strict", o.strict, "refuse unreadable images instead of skipping them");
  app.add_flag("--drop-last", o.drop_last, "drop the last partial batch of each epoch");
  app.add_option("--max-per-class", o.max_images_per_class, "use at most N images of each class")
      ->check(CLI::Range(0, 1 << 30));
  app.add_option("--stop-after", o.stop_after_epochs,
                 "stop after N epochs of this invocation (continue later with --resume)")
      ->check(CLI::Range(0, 100000));
  app.add_option("--report-examples", o.report_examples, "test images shown in report.html")
      ->check(CLI::Range(0, 10000))
      ->capture_default_str();
  // Augmentation (training images only): the seed paper's Table 2.
  auto aug = "Augmentation";
  app.add_option("--rotate", o.augment.rotate_degrees, "max rotation, degrees")
      ->check(CLI::Range(0.0, 180.0))
      ->group(aug)
      ->capture_default_str();
  app.add_option("--rotate-prob", o.augment.rotate_prob)
      ->group(aug)
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  app.add_option("--hflip", o.augment.hflip_prob, "horizontal flip probability")
      ->group(aug)
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  app.add_option("--vflip", o.augment.vflip_prob, "vertical flip probability")
      ->group(aug)
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  app.add_option("--crop-prob", o.augment.crop_prob, "random resized crop probability")
      ->group(aug)
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  app.add_option("--crop-scale", o.augment.crop_scale_min, "smallest crop area fraction")
      ->group(aug)
      ->check(CLI::Range(0.05, 1.0))
      ->capture_default_str();
  app.add_option("--brightness-prob", o.augment.brightness_prob)
      ->group(aug)
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  app.add_option("--brightness-min", o.augment.brightness_min)
      ->group(aug)
      ->check(CLI::Range(0.01, 10.0))
      ->capture_default_str();
  app.add_option("--brightness-max", o.augment.brightness_max)
      ->group(aug)
      ->check(CLI::Range(0.01, 10.0))
      ->capture_default_str();
  app.add_option("--blur-prob", o.augment.blur_prob, "Gaussian smoothing probability")
      ->group(aug)
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  app.add_option("--blur-sigma", o.augment.blur_sigma_max, "largest smoothing sigma")
      ->group(aug)
      ->check(CLI::Range(0.0, 10.0))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
    o.device = forge::parse_device(device);
    return forge::train::run_training(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "train: error: %s\n", e.what());
    return 1;
  }
}
