// build_info.cpp: the generated forge_version.h, read in this one file so that a new commit
// recompiles nothing else in the library.
#include "train/build_info.h"

#include "forge_version.h"

namespace forge::train {

std::map<std::string, std::string> build_info() {
  return {{"forge_version", FORGE_VERSION},
          {"forge_commit", FORGE_GIT_HASH},
          {"forge_dirty", FORGE_GIT_DIRTY}};
}

}  // namespace forge::train
