// checkpoint.h: saving and restoring a training run (model tensors, optimizer state, progress,
// free-form metadata) as one safetensors file.
//
// File contents:
//   "model.<name>"   each tensor the caller lists (parameters and buffers, e.g. batch-norm
//                    running statistics), under the caller's name
//   "optim.<name>"   the optimizer's state tensors (Optimizer::state(): "optim.exp_avg.3", ...)
//   "ema.<name>"     optionally, an average of the model's tensors (train/model_ema.h), under the
//                    model's names
//   __metadata__     the caller's metadata (model preset, image size, class names as a JSON
//                    string, ...) plus the reserved keys "checkpoint.step", "checkpoint.epoch" and
//                    "optim.step" (decimal integers)
// Being plain safetensors, a checkpoint opens in Python with safetensors.numpy.load_file.
#pragma once
#include <cstdint>
#include <string>

#include "engine/io/safetensors.h"
#include "engine/optim/optimizer.h"

namespace forge {

struct CheckpointInfo {
  int64_t step = 0;   // optimizer steps taken by the run
  int64_t epoch = 0;  // epochs completed
  Metadata metadata;  // the caller's keys; the reserved ones above are refused
};

// Writes `model` (names without the "model." prefix), the optimizer's state when `optimizer` is
// not null, `average` (if any) and `info` to `path`, atomically (see save_safetensors).
void save_checkpoint(const std::string& path, const NamedTensors& model, const Optimizer* optimizer,
                     const CheckpointInfo& info, const NamedTensors& average = {});

// Copies the saved values into `model`'s tensors (any device) and, when `optimizer` is not null,
// restores its state; returns the step, epoch and the caller's metadata. Every tensor of `model`
// must be in the file with the same shape, and the file must hold no other "model." tensor; the
// first mismatch is named in the error (std::runtime_error). Nothing is modified unless every
// check passes. Optimizer state in the file is ignored when `optimizer` is null (evaluation);
// the "ema." tensors likewise unless `average` is given, whose every tensor must then be there.
CheckpointInfo load_checkpoint(const std::string& path, const NamedTensors& model,
                               Optimizer* optimizer, const NamedTensors* average = nullptr);

// The metadata alone, from the header: to learn the model preset before building the model.
CheckpointInfo read_checkpoint_info(const std::string& path);

}  // namespace forge
