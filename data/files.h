// files.h: which entries of a folder are files to read. Folders as people have them hold more than
// images: symlinks that loop or point nowhere, FIFOs, device files, sockets. A FIFO blocks whoever
// opens it, and a device may act on being opened, so nothing but a regular file (symlinks
// followed) is ever opened; everything else is skipped with a reason naming it.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

namespace forge::data {

// The entry's type with symlinks followed; `why` says why it cannot be read as a file ("a FIFO
// (named pipe)", "cannot be examined (Too many levels of symbolic links)", "a folder", ...) and is
// "" for a regular file.
std::filesystem::file_type examine_entry(const std::filesystem::path& path, std::string& why);

// Hidden entries (a leading '.': .DS_Store, .git) are never data.
bool is_hidden(const std::filesystem::path& path);

struct FileList {
  std::vector<std::string> files;    // paths relative to the folder listed, sorted
  std::vector<std::string> skipped;  // "path: reason", for the entries that are not regular files
};

// The regular files in `dir`, hidden entries (a leading '.') left out. Sub-folders are descended
// into when `recursive` (not through symlinks, so a link to a parent cannot loop; one that cannot
// be read is skipped, named) and ignored otherwise. Throws std::runtime_error naming `dir` when
// `dir` itself cannot be listed.
FileList list_regular_files(const std::filesystem::path& dir, bool recursive);

// Prints one "warning: skipping path: reason" line per skipped entry to stderr.
void warn_skipped(const std::vector<std::string>& skipped);

}  // namespace forge::data
