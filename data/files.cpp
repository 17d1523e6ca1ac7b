// files.cpp: listing a folder's regular files and naming what else is there (see files.h).
#include "data/files.h"

#include <algorithm>
#include <cstdio>
#include <stdexcept>

namespace fs = std::filesystem;

namespace forge::data {

bool is_hidden(const fs::path& p) {
  return p.filename().string().rfind('.', 0) == 0;
}

fs::file_type examine_entry(const fs::path& path, std::string& why) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  const fs::file_type type = st.type();
  if (ec && type != fs::file_type::not_found)
    why = "cannot be examined (" + ec.message() + ")";  // a symlink loop, a denied folder
  else if (type == fs::file_type::regular)
    why = "";
  else if (type == fs::file_type::directory)
    why = "a folder";
  else if (type == fs::file_type::fifo)
    why = "a FIFO (named pipe)";
  else if (type == fs::file_type::character || type == fs::file_type::block)
    why = "a device file";
  else if (type == fs::file_type::socket)
    why = "a socket";
  else if (type == fs::file_type::not_found)
    why = "a symlink to nothing (or a file gone missing)";
  else
    why = "not a regular file";
  return type;
}

// Appends `root / rel`'s entries to `out`; the error that stopped the listing, if any.
static std::error_code list_into(const fs::path& root, const fs::path& rel, bool recursive,
                                 FileList& out) {
  std::error_code ec;
  fs::directory_iterator it(root / rel, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    const fs::path name = rel / it->path().filename();
    if (is_hidden(name)) continue;
    std::string why;
    if (examine_entry(it->path(), why) == fs::file_type::directory) {
      std::error_code link_ec;
      if (!recursive || it->is_symlink(link_ec)) continue;
      if (const std::error_code sub = list_into(root, name, recursive, out))
        out.skipped.push_back((root / name).string() + ": a folder that cannot be read (" +
                              sub.message() + ")");
    } else if (why.empty()) {
      out.files.push_back(name.string());
    } else {
      out.skipped.push_back((root / name).string() + ": " + why);
    }
  }
  return ec;
}

FileList list_regular_files(const fs::path& dir, bool recursive) {
  FileList out;
  if (const std::error_code ec = list_into(dir, "", recursive, out))
    throw std::runtime_error("cannot read folder '" + dir.string() + "': " + ec.message());
  std::sort(out.files.begin(), out.files.end());
  std::sort(out.skipped.begin(), out.skipped.end());
  return out;
}

void warn_skipped(const std::vector<std::string>& skipped) {
  for (const auto& s : skipped) std::fprintf(stderr, "warning: skipping %s\n", s.c_str());
}

}  // namespace forge::data
