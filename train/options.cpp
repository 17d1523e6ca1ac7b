// options.cpp: the table of training options and what is made from it (see options.h).
#include "train/options.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <type_traits>

#include "models/model.h"
#include "train/history.h"

namespace forge::train {
namespace {

constexpr OptionKind defining = OptionKind::run_defining;
constexpr OptionKind mutable_ = OptionKind::may_change;
const std::string regularise = "Regularisation (timm's options; all off by default)";
const std::string augment = "Augmentation (training images only: the seed paper's Table 2)";

// A number as typed: 0.05, 1e-09, 1073741824, nan.
std::string number_text(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.10g", x);
  return buf;
}

std::vector<OptionSpec> make_table() {
  using O = TrainOptions;
  // Each row: flags, key, help, kind, member, then the range or choices.
  std::vector<OptionSpec> t = {
      {"--model", "/model", "model preset", defining,
       Field<std::string>([](O & o) -> auto& { return o.model; }), 0, 0, models::model_presets()},
      {"--stem", "/stem",
       "the ViT's image embedding: patch (one patch x patch convolution, timm's PatchEmbed) or "
       "conv (Xiao et al. 2021's convolutional stem: stride-2 3x3 conv, batch norm, ReLU steps "
       "to the patch size, then a 1x1 conv; same token grid); the vit presets only",
       defining, Field<std::string>([](O & o) -> auto& { return o.stem; }), 0, 0,
       models::model_stems()},
      {"--data", "/data_dir", "image folder, one sub-folder per class", defining,
       Field<std::string>([](O & o) -> auto& { return o.data_dir; })},
      {"--split",
       "/split_file",
       "reuse a split.csv from an earlier run",
       mutable_,
       Field<std::string>([](O & o) -> auto& { return o.split_file; }),
       0,
       0,
       {},
       "",
       false},
      {"--train-fraction", "/train_fraction", "share of each class used for training", defining,
       Field<float>([](O & o) -> auto& { return o.train_fraction; }), 0.05, 0.95},
      {"--val-fraction", "/val_fraction",
       "share of the training side held out to choose best.safetensors", defining,
       Field<float>([](O & o) -> auto& { return o.val_fraction; }), 0.01, 0.9},
      {"--max-per-class", "/max_images_per_class", "use at most N images of each class (0: all)",
       defining, Field<int>([](O & o) -> auto& { return o.max_images_per_class; }), 0, 1 << 30},
      {"--epochs", "/epochs", "epochs of the whole run", mutable_,
       Field<int>([](O & o) -> auto& { return o.epochs; }), 1, 100000},
      {"-b,--batch-size", "/batch_size", "images per training step", defining,
       Field<int>([](O & o) -> auto& { return o.batch_size; }), 1, 4096},
      {"--drop-last", "/drop_last", "drop the last partial batch of each epoch", defining,
       Field<bool>([](O & o) -> auto& { return o.drop_last; })},
      {"--lr", "/lr", "peak learning rate", defining,
       Field<float>([](O & o) -> auto& { return o.lr; }), 1e-9, 1e3},
      {"--opt",
       "/opt",
       "optimizer",
       defining,
       Field<std::string>([](O & o) -> auto& { return o.opt; }),
       0,
       0,
       {"adamw", "adam", "sgd"}},
      {"--sched",
       "/sched",
       "learning-rate schedule",
       defining,
       Field<std::string>([](O & o) -> auto& { return o.sched; }),
       0,
       0,
       {"cosine", "step"}},
      {"--warmup-epochs", "/warmup_epochs", "linear warm-up length", defining,
       Field<float>([](O & o) -> auto& { return o.warmup_epochs; }), 0, 1e4},
      {"--min-lr", "/min_lr", "cosine floor", defining,
       Field<float>([](O & o) -> auto& { return o.min_lr; }), 0, 1e3},
      {"--decay-epochs", "/decay_epochs", "step schedule period", defining,
       Field<int>([](O & o) -> auto& { return o.decay_epochs; }), 1, 100000},
      {"--decay-rate", "/decay_rate", "step schedule factor", defining,
       Field<float>([](O & o) -> auto& { return o.decay_rate; }), 0, 1},
      {"--weight-decay", "/weight_decay", "decoupled (adamw) or L2 weight decay", defining,
       Field<float>([](O & o) -> auto& { return o.weight_decay; }), 0, 10},
      {"--momentum", "/momentum", "SGD momentum", defining,
       Field<float>([](O & o) -> auto& { return o.momentum; }), 0, 1},
      {"--smoothing", "/label_smoothing", "label smoothing", defining,
       Field<float>([](O & o) -> auto& { return o.label_smoothing; }), 0, 1},
      {"--clip-grad", "/clip_grad", "max global gradient norm (0: off)", defining,
       Field<float>([](O & o) -> auto& { return o.clip_grad; }), 0, 1e6},
      {"--fit",
       "/fit",
       "square input: centre crop or pad the shorter side",
       defining,
       Field<std::string>([](O & o) -> auto& { return o.fit; }),
       0,
       0,
       {"crop", "pad"}},
      {"--drop", "/dropout", "dropout rate (-1: the preset's)", defining,
       Field<float>([](O & o) -> auto& { return o.dropout; }), -1, 0.99},
      {"--img-size", "/image_size", "input size in pixels", defining,
       Field<int>([](O & o) -> auto& { return o.image_size; }), 16, 1024},
      {"--seed", "/seed", "weights, split, shuffles, augmentation and dropout derive from it",
       defining, Field<uint64_t>([](O & o) -> auto& { return o.seed; })},
      {"--device",
       "/device",
       "cpu, sim or cuda",
       mutable_,
       Field<Device>([](O & o) -> auto& { return o.device; }),
       0,
       0,
       {"cpu", "sim", "cuda"}},
      // Mixed precision (docs/MIXED_PRECISION.md): what the run computes, so run-defining.
      {"--precision",
       "/precision",
       "matmul, linear, conv, patch-embed and attention inputs: fp32, or bf16 with fp32 "
       "accumulation (sim and cuda; weights, optimizer state, norms and loss stay fp32)",
       defining,
       Field<std::string>([](O & o) -> auto& { return o.precision; }),
       0,
       0,
       {"fp32", "bf16"}},
      {"--tf32", "/tf32",
       "fp32 GEMMs with tf32 inputs on the tensor cores (cuda; the same rounding emulated on sim)",
       defining, Field<bool>([](O & o) -> auto& { return o.tf32; })},
      {"--cuda-graph", "/cuda_graph",
       "capture the training step as a CUDA graph after two warm-up steps and replay it (cuda; sim "
       "emulates it, for testing; not with --drop-path, --mixup, --cutmix)",
       defining, Field<bool>([](O & o) -> auto& { return o.cuda_graph; })},
      {"-j,--workers", "/workers", "data loading threads", mutable_,
       Field<int>([](O & o) -> auto& { return o.workers; }), 1, 64},
      {"--output",
       "/output",
       "run folder (default: a new runs/<model>-<seed>[-N])",
       mutable_,
       Field<std::string>([](O & o) -> auto& { return o.output; }),
       0,
       0,
       {},
       "",
       false},
      {"--resume",
       "/resume",
       "continue from a last.safetensors",
       mutable_,
       Field<std::string>([](O & o) -> auto& { return o.resume; }),
       0,
       0,
       {},
       "",
       false},
      {"--overwrite", "/overwrite", "let a fresh run replace the run in --output", mutable_,
       Field<bool>([](O & o) -> auto& { return o.overwrite; })},
      {"--strict", "/strict", "refuse unreadable images instead of skipping them", mutable_,
       Field<bool>([](O & o) -> auto& { return o.strict; })},
      {"--stop-after", "/stop_after_epochs",
       "stop after N epochs of this invocation (continue later with --resume; 0: never)", mutable_,
       Field<int>([](O & o) -> auto& { return o.stop_after_epochs; }), 0, 100000},
      {"--report-examples", "/report_examples", "test images shown in report.html", mutable_,
       Field<int>([](O & o) -> auto& { return o.report_examples; }), 0, 10000},
      // Regularisers of a timm recipe (timm's flags and meanings), all off by default.
      {"--drop-path",
       "/regularise/drop_path",
       "stochastic depth rate of the last residual block (ViT blocks; HRNet's bottleneck and basic "
       "blocks), rising linearly from 0; not for the cnn presets, which have no residual blocks",
       defining,
       Field<float>([](O & o) -> auto& { return o.drop_path; }),
       0,
       0.95,
       {},
       regularise},
      {"--mixup",
       "/regularise/mixup_alpha",
       "mixup alpha: lam ~ Beta(alpha, alpha) (0: off)",
       defining,
       Field<float>([](O & o) -> auto& { return o.mix.mixup_alpha; }),
       0,
       100,
       {},
       regularise},
      {"--cutmix",
       "/regularise/cutmix_alpha",
       "cutmix alpha: lam ~ Beta(alpha, alpha) (0: off)",
       defining,
       Field<float>([](O & o) -> auto& { return o.mix.cutmix_alpha; }),
       0,
       100,
       {},
       regularise},
      {"--mixup-prob",
       "/regularise/mixup_prob",
       "probability that an image is mixed (with --mixup or --cutmix)",
       defining,
       Field<float>([](O & o) -> auto& { return o.mix.prob; }),
       0,
       1,
       {},
       regularise},
      {"--mixup-switch-prob",
       "/regularise/mixup_switch_prob",
       "probability of cutmix rather than mixup when both are on",
       defining,
       Field<float>([](O & o) -> auto& { return o.mix.switch_prob; }),
       0,
       1,
       {},
       regularise},
      {"--reprob",
       "/regularise/reprob",
       "random erasing probability (after normalisation)",
       defining,
       Field<float>([](O & o) -> auto& { return o.erasing.prob; }),
       0,
       1,
       {},
       regularise},
      {"--remode",
       "/regularise/remode",
       "random erasing fill: per-pixel normal, per-channel normal or zeros",
       defining,
       Field<std::string>([](O & o) -> auto& { return o.erasing.mode; }),
       0,
       0,
       {"pixel", "rand", "const"},
       regularise},
      {"--sync-bn", "/sync_bn",
       "with mpirun -np N: batch-norm statistics over the global batch, not per rank", mutable_,
       Field<bool>([](O & o) -> auto& { return o.sync_bn; })},
      {"--bucket-mb", "/bucket_mb",
       "with mpirun -np N: gradient all-reduce bucket size in MiB (DDP's bucket_cap_mb); smaller "
       "buckets start sooner in backward",
       mutable_, Field<float>([](O & o) -> auto& { return o.bucket_mb; }), 1e-3, 1024},
      {"--model-ema",
       "/regularise/model_ema",
       "keep an exponential moving average of the weights, evaluated beside the final model",
       defining,
       Field<bool>([](O & o) -> auto& { return o.model_ema; }),
       0,
       0,
       {},
       regularise},
      {"--model-ema-decay",
       "/regularise/model_ema_decay",
       "EMA decay per step (timm's default; its horizon, 1/(1-decay) steps, should be below the "
       "run's)",
       defining,
       Field<float>([](O & o) -> auto& { return o.model_ema_decay; }),
       0,
       1,
       {},
       regularise},
      // Augmentation.
      {"--rotate",
       "/augment/rotate_degrees",
       "max rotation, degrees",
       defining,
       Field<float>([](O & o) -> auto& { return o.augment.rotate_degrees; }),
       0,
       180,
       {},
       augment},
      {"--rotate-prob",
       "/augment/rotate_prob",
       "rotation probability",
       defining,
       Field<float>([](O & o) -> auto& { return o.augment.rotate_prob; }),
       0,
       1,
       {},
       augment},
      {"--rotate-fill",
       "/augment/fill",
       "grey level of the corners a rotation uncovers",
       defining,
       Field<uint8_t>([](O & o) -> auto& { return o.augment.fill; }),
       0,
       255,
       {},
       augment},
      {"--hflip",
       "/augment/hflip_prob",
       "horizontal flip probability",
       defining,
       Field<float>([](O & o) -> auto& { return o.augment.hflip_prob; }),
       0,
       1,
       {},
       augment},
      {"--vflip",
       "/augment/vflip_prob",
       "vertical flip probability",
       defining,
       Field<float>([](O & o) -> auto& { return o.augment.vflip_prob; }),
       0,
       1,
       {},
       augment},
      {"--crop-prob",
       "/augment/crop_prob",
       "random resized crop probability",
       defining,
       Field<float>([](O & o) -> auto& { return o.augment.crop_prob; }),
       0,
       1,
       {},
       augment},
      {"--crop-scale,--crop-scale-min",
       "/augment/crop_scale_min",
       "smallest crop area fraction",
       defining,
       Field<float>([](O & o) -> auto& { return o.augment.crop_scale_min; }),
       0.05,
       1,
       {},
       augment},
      {"--crop-scale-max",
       "/augment/crop_scale_max",
       "largest crop area fraction",
       defining,
       Field<float>([](O & o) -> auto& { return o.augment.crop_scale_max; }),
       0.05,
       1,
       {},
       augment},
      {"--crop-ratio-min",
       "/augment/crop_ratio_min",
       "smallest crop aspect ratio",
       defining,
       Field<float>([](O & o) -> auto& { return o.augment.crop_ratio_min; }),
       0.1,
       10,
       {},
       augment},
      {"--crop-ratio-max",
       "/augment/crop_ratio_max",
       "largest crop aspect ratio",
       defining,
       Field<float>([](O & o) -> auto& { return o.augment.crop_ratio_max; }),
       0.1,
       10,
       {},
       augment},
      {"--brightness-prob",
       "/augment/brightness_prob",
       "brightness change probability",
       defining,
       Field<float>([](O & o) -> auto& { return o.augment.brightness_prob; }),
       0,
       1,
       {},
       augment},
      {"--brightness-min",
       "/augment/brightness_min",
       "smallest brightness factor",
       defining,
       Field<float>([](O & o) -> auto& { return o.augment.brightness_min; }),
       0.01,
       10,
       {},
       augment},
      {"--brightness-max",
       "/augment/brightness_max",
       "largest brightness factor",
       defining,
       Field<float>([](O & o) -> auto& { return o.augment.brightness_max; }),
       0.01,
       10,
       {},
       augment},
      {"--blur-prob",
       "/augment/blur_prob",
       "Gaussian smoothing probability",
       defining,
       Field<float>([](O & o) -> auto& { return o.augment.blur_prob; }),
       0,
       1,
       {},
       augment},
      {"--blur-sigma-min",
       "/augment/blur_sigma_min",
       "smallest smoothing sigma",
       defining,
       Field<float>([](O & o) -> auto& { return o.augment.blur_sigma_min; }),
       0,
       10,
       {},
       augment},
      {"--blur-sigma,--blur-sigma-max",
       "/augment/blur_sigma_max",
       "largest smoothing sigma",
       defining,
       Field<float>([](O & o) -> auto& { return o.augment.blur_sigma_max; }),
       0,
       10,
       {},
       augment},
  };
  return t;
}

// Ranges given as two options: the first may not exceed the second.
const std::vector<std::pair<std::string, std::string>> ordered_pairs = {
    {"/augment/crop_scale_min", "/augment/crop_scale_max"},
    {"/augment/crop_ratio_min", "/augment/crop_ratio_max"},
    {"/augment/brightness_min", "/augment/brightness_max"},
    {"/augment/blur_sigma_min", "/augment/blur_sigma_max"},
};

const OptionSpec& spec_of(const std::string& key) {
  for (const OptionSpec& s : option_table())
    if (s.key == key) return s;
  throw std::logic_error("no option with key " + key);
}

std::string join(const std::vector<std::string>& words) {
  std::string out;
  for (size_t i = 0; i < words.size(); ++i)
    out += (i == 0 ? "" : i + 1 == words.size() ? " or " : ", ") + words[i];
  return out;
}

}  // namespace

std::string OptionSpec::name() const {
  const size_t start = flags.find("--");
  return flags.substr(start, flags.find(',', start) - start);
}

const std::vector<OptionSpec>& option_table() {
  static const std::vector<OptionSpec> table = make_table();
  return table;
}

nlohmann::json option_value(const OptionSpec& spec, const TrainOptions& options) {
  // The accessors hand out references; here they are only read.
  TrainOptions& o = const_cast<TrainOptions&>(options);
  return std::visit(
      [&](auto field) -> nlohmann::json {
        const auto& v = field(o);
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, float>)
          return float_precision(v);  // 0.2, not 0.200000003
        else if constexpr (std::is_same_v<T, Device>)
          return device_name(v);
        else
          return v;
      },
      spec.field);
}

std::string option_text(const nlohmann::json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_number_float()) return number_text(value.get<double>());
  return value.dump();
}

void validate_options(const TrainOptions& options) {
  TrainOptions& o = const_cast<TrainOptions&>(options);  // read only, as in option_value
  for (const OptionSpec& s : option_table()) {
    std::visit(
        [&](auto field) {
          const auto& v = field(o);
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_arithmetic_v<T> && !std::is_same_v<T, bool>) {
            const double x = static_cast<double>(v);
            if (!std::isfinite(x))
              throw OptionError(s.name() + " " + number_text(x) + ": expected a finite number");
            if (s.min < s.max && (x < s.min || x > s.max))
              throw OptionError(s.name() + " " + number_text(x) + ": expected a value from " +
                                number_text(s.min) + " to " + number_text(s.max));
          } else if constexpr (std::is_same_v<T, std::string>) {
            if (!s.choices.empty() &&
                std::find(s.choices.begin(), s.choices.end(), v) == s.choices.end())
              throw OptionError(s.name() + " '" + v + "': expected " + join(s.choices));
          }
        },
        s.field);
  }
  for (const auto& [low_key, high_key] : ordered_pairs) {
    const OptionSpec &low = spec_of(low_key), &high = spec_of(high_key);
    const nlohmann::json a = option_value(low, o), b = option_value(high, o);
    if (a.get<double>() > b.get<double>())
      throw OptionError(low.name() + " " + option_text(a) + " exceeds " + high.name() + " " +
                        option_text(b) + ": the minimum of a range must not exceed its maximum");
  }
  if (const std::string refusal = models::drop_path_refusal(o.model);
      o.drop_path > 0.f && !refusal.empty())
    throw OptionError("--drop-path " +
                      option_text(option_value(spec_of("/regularise/drop_path"), o)) +
                      " with --model " + o.model + ": " + refusal);
  if (const std::string refusal = models::stem_refusal(o.model);
      o.stem != "patch" && !refusal.empty())
    throw OptionError("--stem " + o.stem + " with --model " + o.model + ": " + refusal);
}

nlohmann::json options_json(const TrainOptions& options) {
  nlohmann::json j = nlohmann::json::object();
  for (const OptionSpec& s : option_table())
    j[nlohmann::json::json_pointer(s.key)] = option_value(s, options);
  return j;
}

}  // namespace forge::train
