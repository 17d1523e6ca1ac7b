// resume.h: what a checkpoint records of the run that wrote it, and the check that a --resume
// continues that same run. The trainer records every option of the table (train/options.h) and
// the digest of split.csv under the checkpoint metadata key "run_options"; a resume may change
// only the options of kind may_change, and must find the run folder's split.csv as it was.
#pragma once
#include <filesystem>
#include <string>

#include "engine/io/safetensors.h"
#include "train/trainer.h"

namespace forge::train {

// The checkpoint metadata key of the recorded options.
inline constexpr const char* run_options_key = "run_options";

// FNV-1a (64-bit) of some bytes as "fnv1a64:" and 16 hex digits: a split.csv's text before it is
// written, or a file's contents (file_digest throws naming the file when it cannot be read).
std::string text_digest(const std::string& bytes);
std::string file_digest(const std::filesystem::path& file);

// The recorded options: options_json plus "split_digest", as one JSON string.
std::string recorded_options(const TrainOptions& options, const std::string& split_digest);

// Checks that `current` (with current.resume naming the checkpoint whose metadata is given)
// continues the recorded run, before anything is written. Throws OptionError naming each
// run-defining option that changed with both values, or a --split whose digest is not the
// recorded split's; throws std::runtime_error when `run_split` (the run folder's split.csv) is
// missing or differs from the recorded digest. A checkpoint from before options were recorded is
// accepted with a warning.
void check_resume(const Metadata& checkpoint_metadata, const TrainOptions& current,
                  const std::filesystem::path& run_split);

}  // namespace forge::train
