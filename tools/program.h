// program.h: what every forge program (tools/ and dev/) shares at its top level: the exit codes,
// --version, and one handler that keeps any exception from escaping main.
//
// Exit codes, the same in every program: train/exit_code.h.
#pragma once
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <string>

#include "forge_version.h"
#include "train/exit_code.h"
#include "train/options.h"
#include "train/precision.h"

namespace forge::program {

using namespace forge::exit_code;  // program::ok, program::usage, ...

// "forge 0.1.0 (6a32dea-dirty)": the version and the git commit the build was configured at.
inline std::string version_text() {
  return std::string("forge ") + FORGE_VERSION + " (" + FORGE_GIT_COMMIT + ")";
}

// Makes `app` with --version and runs body(app), which adds its flags, parses and does the work.
// CLI11's parse errors are printed by CLI11 and exit 2 (--help and --version exit 0); any other
// exception is printed as "<name>: error: <what>" and exits 1.
template <class Body>
int run(const char* name, const std::string& description, Body&& body) noexcept {
  try {
    CLI::App app{description, name};
    app.set_version_flag("--version", version_text(), "print the forge version and git commit");
    try {
      return body(app);
    } catch (const CLI::ParseError& e) {
      return app.exit(e) == 0 ? ok : usage;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: error: %s\n", name, e.what());
  } catch (...) {
    std::fprintf(stderr, "%s: error: an unknown exception\n", name);
  }
  return error;
}

// --precision and --tf32 for eval, predict and bench, with train's help and choices (its options
// table, train/options.cpp).
struct PrecisionFlags {
  std::string precision = "fp32";
  bool tf32 = false;
};
inline void add_precision_flags(CLI::App& app, PrecisionFlags& flags) {
  for (const train::OptionSpec& s : train::option_table()) {
    if (s.key == "/precision")
      app.add_option(s.flags, flags.precision, s.help)
          ->check(CLI::IsMember(s.choices))
          ->capture_default_str();
    else if (s.key == "/tf32")
      app.add_flag(s.flags, flags.tf32, s.help);
  }
}
// The precision the flags ask for, on `device`, for the caller's scope; a choice the device cannot
// run is a usage error naming the flag and the device.
inline train::ScopedPrecision scoped_precision(Device device, const PrecisionFlags& flags) {
  try {
    return train::ScopedPrecision(device, flags.precision, flags.tf32);
  } catch (const train::OptionError& e) {
    throw CLI::ValidationError(e.what());
  }
}

}  // namespace forge::program
