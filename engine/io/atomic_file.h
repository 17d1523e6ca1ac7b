// atomic_file.h: the one writer for every file a run leaves behind (checkpoints, split.csv,
// config.json, metrics.jsonl, reports). Bytes go to a temporary file beside the target, named
// "<name>.tmp.<pid>" so two processes never share one; every write is checked, then fsync, close
// and rename, then the directory is fsync'ed. After a crash the target holds either its old
// contents or the complete new ones, never a prefix; a failed write (a full disk) throws a
// WriteError naming the file and removes the temporary, leaving the old file intact.
#pragma once
#include <stdexcept>
#include <string>
#include <string_view>

namespace forge {

// A write that did not reach the disk: the message names the file and the system's reason.
class WriteError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// An open temporary file that replaces `final_path` on commit() and is removed otherwise.
class AtomicFile {
 public:
  explicit AtomicFile(std::string final_path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t bytes);
  // Data on disk first (fsync), then the name (rename), then the name on disk (directory fsync).
  void commit();

 private:
  std::string final_path_, temp_path_;
  int fd_ = -1;
  bool committed_ = false;
};

// Replaces `path` with `text` through an AtomicFile.
void write_file_atomically(const std::string& path, std::string_view text);

// Whether `file_name` is an AtomicFile temporary ("<name>.tmp.<digits>") or the ".tmp" of older
// versions: what a killed writer leaves behind.
bool is_atomic_temporary(std::string_view file_name);

}  // namespace forge
