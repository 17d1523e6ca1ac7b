// train: trains an image classifier on an image folder and writes a run folder (see
// train/trainer.h). Flags follow timm's train.py where one exists; they are made from the table
// of training options (train/options.h), as config.json and the checkpoint's recorded options are.
//
//   build/bin/train --model vit --data ../shared/data/selfie2anime --epochs 20 --output runs/vit
#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>
#include <type_traits>

#include "engine/cuda/builtin.h"
#include "tools/program.h"
#include "train/data_parallel.h"
#include "train/options.h"
#include "train/trainer.h"

using namespace forge;
using namespace forge::train;

namespace {

// Adds one option of the table as a flag bound to its member of `o`.
void add_flag(CLI::App& app, const OptionSpec& s, TrainOptions& o) {
  std::string help = s.help;
  if (s.min < s.max) {
    char range[64];
    std::snprintf(range, sizeof range, " (%.10g to %.10g)", s.min, s.max);
    help += range;
  }
  if (s.kind == OptionKind::run_defining) help += "; fixed for a run";
  CLI::Option* opt = std::visit(
      [&](auto field) -> CLI::Option* {
        auto& member = field(o);
        using T = std::decay_t<decltype(member)>;
        if constexpr (std::is_same_v<T, bool>)
          return app.add_flag(s.flags, member, help);
        else if constexpr (std::is_same_v<T, Device>)
          return app
              .add_option_function<std::string>(
                  s.flags, [&member](const std::string& text) { member = parse_device(text); },
                  help)
              ->default_str(device_name(member));
        else
          return app.add_option(s.flags, member, help);
      },
      s.field);
  if (!s.group.empty()) opt->group(s.group);
  if (!s.choices.empty()) opt->check(CLI::IsMember(s.choices));
  if (std::holds_alternative<Field<uint64_t>>(s.field))  // CLI11 would wrap -1 to 2^64 - 1
    opt->check(CLI::Validator(
        [](const std::string& text) {
          return text.starts_with("-") ? std::string("must not be negative") : std::string();
        },
        "NONNEGATIVE"));
  if (!s.show_default) return;
  if (std::holds_alternative<Field<uint8_t>>(s.field))  // CLI11 would print it as a character
    opt->default_str(std::to_string(std::get<Field<uint8_t>>(s.field)(o)));
  else if (!std::holds_alternative<Field<Device>>(s.field))
    opt->capture_default_str();
}

// argv as a shell would take it back: arguments with other characters than these single-quoted.
std::string command_line(int argc, char** argv) {
  std::string line;
  for (int i = 0; i < argc; ++i) {
    const std::string a = argv[i];
    const bool plain = !a.empty() && a.find_first_not_of(
                                         "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklm"
                                         "nopqrstuvwxyz0123456789_./=:,+-@%") == std::string::npos;
    if (i) line += ' ';
    if (plain) {
      line += a;
      continue;
    }
    line += '\'';
    for (char c : a) line += c == '\'' ? std::string("'\\''") : std::string(1, c);
    line += '\'';
  }
  return line;
}

}  // namespace

int main(int argc, char** argv) {
  // With several ranks, one that fails ends them all (train/data_parallel.h).
  return finish_ranks(program::run(
      "train",
      "Train a ViT, HRNet or CNN image classifier on an image folder (one sub-folder per class).",
      [&](CLI::App& app) {
        register_builtin_backends();  // --device sim / cuda, when built in
        TrainOptions o;
        app.get_formatter()->column_width(34);
        // A flag given twice takes its last value, so scripts can set defaults that users override.
        app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
        for (const OptionSpec& s : option_table()) add_flag(app, s, o);
        app.parse(argc, argv);
        o.command_line = command_line(argc, argv);
        try {
          validate_options(o);
          return run_training(o);
        } catch (const OptionError& e) {
          std::fprintf(stderr, "train: error: %s\n", e.what());
          return int(program::usage);
        }
      }));
}
