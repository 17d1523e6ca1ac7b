// test_atomic_file.cpp: the one writer of run files: complete files under the target name, a
// per-process temporary, a full disk reported naming the file with the old contents kept.
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/io/atomic_file.h"
#include "tests/temp_dir.h"

using namespace forge;
using forge::test::TempDir;
namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

TEST_CASE("atomic file: replaces the target whole and leaves no temporary") {
  TempDir dir("atomic-file");
  const std::string path = (dir.path / "config.json").string();
  write_file_atomically(path, "old\n");
  write_file_atomically(path, "new contents\n");
  CHECK(slurp(path) == "new contents\n");
  CHECK(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()) == 1);
}

TEST_CASE("atomic file: a full disk throws WriteError naming the file, the old file intact") {
  TempDir dir("atomic-file");
  const std::string path = (dir.path / "metrics.jsonl").string();
  write_file_atomically(path, "{\"epoch\": 1}\n");
  // This process's temporary -> /dev/full: opening succeeds, every write fails with ENOSPC.
  const std::string temporary = path + ".tmp." + std::to_string(::getpid());
  fs::create_symlink("/dev/full", temporary);
  std::string message;
  try {
    write_file_atomically(path, "{\"epoch\": 1}\n{\"epoch\": 2}\n");
  } catch (const WriteError& e) {
    message = e.what();
  }
  CHECK(message.find(path) != std::string::npos);
  CHECK(message.find("No space left on device") != std::string::npos);
  CHECK_FALSE(fs::exists(fs::symlink_status(temporary)));
  CHECK(slurp(path) == "{\"epoch\": 1}\n");
  // A folder that does not exist: refused, naming the path.
  const std::string nowhere = (dir.path / "no" / "report.txt").string();
  CHECK_THROWS_WITH_AS(write_file_atomically(nowhere, "x"), doctest::Contains(nowhere.c_str()),
                       WriteError);
}

TEST_CASE("atomic file: temporaries are recognised by name") {
  CHECK(is_atomic_temporary("last.safetensors.tmp.12345"));
  CHECK(is_atomic_temporary("split.csv.tmp"));  // older versions' name
  CHECK_FALSE(is_atomic_temporary("last.safetensors"));
  CHECK_FALSE(is_atomic_temporary("notes.tmp.txt"));
  CHECK_FALSE(is_atomic_temporary("x.tmp."));
}
