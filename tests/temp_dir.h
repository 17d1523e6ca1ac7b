// temp_dir.h: a fresh folder under the system's temporary directory for one test, removed with
// everything in it when the test ends. Named by a tag, the process id and a counter, so tests
// that run at the same time (ctest -j, one process per test case) never share one.
#pragma once
#include <unistd.h>

#include <filesystem>
#include <string>

namespace forge::test {

struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& tag = "test") {
    static int counter = 0;
    path = std::filesystem::temp_directory_path() /
           ("forge-" + tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return (path / name).string(); }
};

}  // namespace forge::test
