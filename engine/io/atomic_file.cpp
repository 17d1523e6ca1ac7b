// atomic_file.cpp: temporary file, checked writes, fsync, close, rename, directory fsync (see
// atomic_file.h).
#include "engine/io/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

namespace forge {
namespace {

[[noreturn]] void fail(const std::string& path, const char* what, int error) {
  throw WriteError("cannot write " + path + ": " + what + ": " + std::strerror(error));
}

}  // namespace

AtomicFile::AtomicFile(std::string final_path)
    : final_path_(std::move(final_path)),
      temp_path_(final_path_ + ".tmp." + std::to_string(::getpid())) {
  fd_ = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) fail(final_path_, ("cannot create " + temp_path_).c_str(), errno);
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(temp_path_.c_str());
}

void AtomicFile::write(const void* data, size_t bytes) {
  const char* p = static_cast<const char*>(data);
  while (bytes > 0) {  // write() may write less than asked, or be interrupted
    const ssize_t n = ::write(fd_, p, bytes);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail(final_path_, "write failed", errno);
    p += n;
    bytes -= static_cast<size_t>(n);
  }
}

void AtomicFile::commit() {
  // A file system may report a full disk only at fsync or close (NFS, delayed allocation).
  if (::fsync(fd_) != 0) fail(final_path_, "fsync failed", errno);
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) fail(final_path_, "close failed", errno);
  if (std::rename(temp_path_.c_str(), final_path_.c_str()) != 0)
    fail(final_path_, ("cannot rename " + temp_path_ + " into place").c_str(), errno);
  committed_ = true;
  // Make the rename itself durable. Some file systems refuse fsync on a directory (EINVAL): the
  // file is complete under its name either way, so only a real I/O error is reported.
  const std::filesystem::path dir = std::filesystem::path(final_path_).parent_path();
  const int dir_fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) return;
  const int rc = ::fsync(dir_fd), error = errno;
  ::close(dir_fd);
  if (rc != 0 && error == EIO) fail(final_path_, "fsync of its folder failed", error);
}

void write_file_atomically(const std::string& path, std::string_view text) {
  AtomicFile file(path);
  file.write(text.data(), text.size());
  file.commit();
}

bool is_atomic_temporary(std::string_view name) {
  if (name.ends_with(".tmp")) return true;
  const size_t at = name.rfind(".tmp.");
  if (at == std::string_view::npos || at + 5 == name.size()) return false;
  for (char c : name.substr(at + 5))
    if (c < '0' || c > '9') return false;
  return true;
}

}  // namespace forge
