// options.h: the one table of training options. Each entry names a TrainOptions member, its
// flag(s), help, valid values, its key in config.json and in the checkpoint, and whether it
// defines the run. tools/train.cpp makes its flags from the table, the trainer writes config.json
// and the checkpoint's recorded options from it, and a resume is checked against it
// (train/resume.h).
//
// Two kinds of option:
//   run_defining  what the run computes: data, split, model, input, augmentation, optimizer and
//                 schedule, batch, seed, precision (--precision, --tf32). A resume with any of them
//                 changed is refused.
//   may_change    how it is run, not what it computes: --epochs (the schedule is then recomputed
//                 for the new total from the current step on), --stop-after, --workers, --device
//                 (results then differ in float rounding only), --report-examples, --strict,
//                 --output, --split (the split itself is checked by its digest), --resume.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include "train/trainer.h"

namespace forge::train {

enum class OptionKind { run_defining, may_change };

// A reference to one TrainOptions member, of its type.
template <class T>
using Field = T& (*)(TrainOptions&);
using AnyField = std::variant<Field<int>, Field<float>, Field<uint64_t>, Field<uint8_t>,
                              Field<bool>, Field<std::string>, Field<Device>>;

struct OptionSpec {
  std::string flags;  // CLI11 names, e.g. "-b,--batch-size"; the first long one names it
  std::string key;    // JSON pointer in config.json and the recorded options, e.g. "/augment/hflip"
  std::string help;
  OptionKind kind;
  AnyField field;
  double min = 0, max = 0;                // numbers: the valid closed range (min == max: any)
  std::vector<std::string> choices = {};  // strings and devices: the valid values (empty: any)
  std::string group = {};                 // the --help section ("" for the main one)
  bool show_default = true;               // print the default in --help
  std::string name() const;               // the long flag, "--batch-size"
};

// Every option, in --help order.
const std::vector<OptionSpec>& option_table();

// A bad option value (NaN, out of range, an inverted range, a changed option on resume): the
// command line is wrong, so the programs exit with the usage code (2).
struct OptionError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

// Throws OptionError naming the flag and the value: a non-finite or out-of-range number, a string
// not among the choices, a range whose minimum exceeds its maximum, or --drop-path with a model
// that has none.
void validate_options(const TrainOptions& options);

// One option's value as JSON (floats as the shortest decimal that reads back as the same float).
nlohmann::json option_value(const OptionSpec& spec, const TrainOptions& options);

// Every option of the table, nested by key: what config.json holds.
nlohmann::json options_json(const TrainOptions& options);

// The value as a person types it on the command line: 0.5, adamw, true.
std::string option_text(const nlohmann::json& value);

}  // namespace forge::train
