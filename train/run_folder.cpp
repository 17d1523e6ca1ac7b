// run_folder.cpp: choosing, locking, checking and (on early failure) restoring a run folder (see
// run_folder.h).
#include "train/run_folder.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "engine/io/atomic_file.h"
#include "engine/io/checkpoint.h"
#include "train/trainer.h"

namespace fs = std::filesystem;

namespace forge::train {
namespace {

constexpr const char* kLockName = "train.lock";

// The first free runs/<model>-<seed>[-N], created here (create_directory is atomic: false when
// another process made it first).
fs::path create_unique_folder(const TrainOptions& o) {
  const fs::path parent = "runs";
  fs::create_directories(parent);
  const std::string base = o.model + "-" + std::to_string(o.seed);
  for (int n = 1;; ++n) {
    const fs::path candidate = parent / (n == 1 ? base : base + "-" + std::to_string(n));
    if (fs::create_directory(candidate)) return candidate;
  }
}

// The pid recorded in a lock file, or "unknown" when it cannot be read.
std::string lock_holder(int fd) {
  char buf[32] = {};
  const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  std::string pid = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
  while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
  return pid.empty() ? "unknown" : pid;
}

// What the folder holds besides the lock and stale temporaries (at most a few names).
std::vector<std::string> run_files(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name != kLockName && !is_atomic_temporary(name)) names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

void RunFolder::record_holder(const std::string& text) {
  if (::ftruncate(lock_fd_, 0) == 0) {
    [[maybe_unused]] const ssize_t written = ::pwrite(lock_fd_, text.data(), text.size(), 0);
  }
}

RunFolder::RunFolder(const TrainOptions& o) {
  if (!o.output.empty()) {
    path_ = o.output;
  } else if (!o.resume.empty()) {
    path_ = fs::path(o.resume).parent_path();
    if (path_.empty()) path_ = ".";
  } else {
    path_ = create_unique_folder(o);
    created_ = path_;
  }
  if (created_.empty() && !fs::exists(path_)) {
    // Remember the topmost folder made here, to remove it if the run fails early.
    fs::path top = fs::absolute(path_);
    while (!fs::exists(top.parent_path())) top = top.parent_path();
    fs::create_directories(path_);
    created_ = top;
  }
  if (!fs::is_directory(path_))
    throw std::runtime_error("run folder " + path_.string() + " is not a folder");

  try {
    const fs::path lock = path_ / kLockName;
    lock_fd_ = ::open(lock.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    created_lock_ = lock_fd_ >= 0;
    if (lock_fd_ < 0 && errno == EEXIST) lock_fd_ = ::open(lock.c_str(), O_RDWR | O_CLOEXEC);
    if (lock_fd_ < 0)
      throw std::runtime_error("cannot open " + lock.string() + ": " + std::strerror(errno));
    if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
      const int error = errno;
      const std::string holder = lock_holder(lock_fd_);
      ::close(lock_fd_);
      lock_fd_ = -1;
      created_lock_ = false;  // another process holds it: not ours to remove
      if (error == EWOULDBLOCK)
        throw std::runtime_error("run folder " + path_.string() + " is in use by process " +
                                 holder +
                                 " (another train); wait for it or choose another --output");
      throw std::runtime_error("cannot lock " + lock.string() + ": " + std::strerror(error));
    }
    if (o.resume.empty() && !o.overwrite) {
      const std::vector<std::string> held = run_files(path_);
      if (!held.empty()) {
        std::string listed;
        for (size_t i = 0; i < held.size() && i < 4; ++i) listed += (i ? ", " : "") + held[i];
        if (held.size() > 4) listed += ", ...";
        throw std::runtime_error("run folder " + path_.string() + " already holds a run (" +
                                 listed + "); continue it with --resume " +
                                 (path_ / "last.safetensors").string() +
                                 ", replace it with --overwrite, or choose another --output");
      }
    }
    for (const auto& entry : fs::directory_iterator(path_))
      if (is_atomic_temporary(entry.path().filename().string())) fs::remove(entry.path());
    // The pid is for the message above; a failure to record it (a full disk) is not an error of
    // the run, which reports its own writes.
    previous_holder_ = lock_holder(lock_fd_);
    record_holder(std::to_string(::getpid()) + "\n");
  } catch (...) {
    release();
    throw;
  }
}

RunFolder::~RunFolder() {
  release();
}

void RunFolder::release() {
  // Only the lock's holder may remove anything: two runs may both have found the folder missing.
  if (!kept_ && lock_fd_ >= 0) {
    std::error_code ec;
    if (!created_.empty())
      fs::remove_all(created_, ec);
    else if (created_lock_)
      fs::remove(path_ / kLockName, ec);
    else if (previous_holder_)
      record_holder(*previous_holder_ == "unknown" ? "" : *previous_holder_ + "\n");
  }
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the lock
  lock_fd_ = -1;
}

std::string last_good_checkpoint(const fs::path& run_dir) {
  const fs::path last = run_dir / "last.safetensors";
  if (!fs::exists(last)) return "no checkpoint was written (no epoch had finished)";
  try {
    return "the last good checkpoint is " + last.string() + " (epoch " +
           std::to_string(read_checkpoint_info(last.string()).epoch) + ")";
  } catch (const std::exception& e) {
    return "the last checkpoint " + last.string() + " does not read back: " + e.what();
  }
}

}  // namespace forge::train
