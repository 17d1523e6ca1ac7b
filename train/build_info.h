// build_info.h: which forge built this program (version and git commit, taken by CMake at build
// time: cmake/write_version.cmake), as checkpoints record it.
#pragma once
#include <map>
#include <string>

namespace forge::train {

// {"forge_version": "0.1.0", "forge_commit": <full hash of HEAD, or "unknown" outside git>,
//  "forge_dirty": "true" (tracked files differed from that commit) | "false" | "unknown"}.
std::map<std::string, std::string> build_info();

}  // namespace forge::train
