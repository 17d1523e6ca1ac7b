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

}  // namespace forge::program
