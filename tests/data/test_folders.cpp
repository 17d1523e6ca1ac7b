// test_folders.cpp: data folders as people have them. Symlink loops, links to nothing, FIFOs and
// device files are skipped by the scan with a warning naming them and never opened (a FIFO would
// block the reader for good); a class folder with nothing readable in it is refused, naming it.
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <algorithm>

#include "data/dataset.h"
#include "data/decode.h"
#include "data/files.h"
#include "data/loader.h"
#include "tests/data/helpers.h"

using namespace forge::data;
using namespace forge::data::test;

namespace {

bool mentions(const std::vector<std::string>& lines, const std::string& name, const char* why) {
  return std::any_of(lines.begin(), lines.end(), [&](const std::string& l) {
    return l.find(name) != std::string::npos && l.find(why) != std::string::npos;
  });
}

}  // namespace

TEST_CASE("folders: symlink loops, FIFOs, devices and links to nothing are skipped, named") {
  TempDir dir;
  make_folder(dir.path, {"a", "b"}, 3);
  fs::create_symlink("loop.jpg", dir.path / "a" / "loop.jpg");  // points at itself
  REQUIRE(::mkfifo((dir.path / "a" / "pipe.jpg").c_str(), 0644) == 0);
  fs::create_symlink("/dev/zero", dir.path / "b" / "zero.jpg");
  fs::create_symlink(dir.path / "nowhere.png", dir.path / "b" / "dangling.png");
  fs::create_symlink("c", dir.path / "c");  // a class folder that loops
  ImageFolder f = scan_image_folder(dir.path.string());
  CHECK(f.classes == std::vector<std::string>{"a", "b"});
  CHECK(f.samples.size() == 6);
  CHECK(f.skipped.size() == 5);
  CHECK(mentions(f.skipped, "a/loop.jpg", "symbolic links"));
  CHECK(mentions(f.skipped, "a/pipe.jpg", "FIFO"));
  CHECK(mentions(f.skipped, "b/zero.jpg", "device"));
  CHECK(mentions(f.skipped, "b/dangling.png", "symlink to nothing"));
  CHECK(mentions(f.skipped, (dir.path / "c").string(), "symbolic links"));
  // Read directly, a FIFO or a device is refused without being opened (opening would block).
  CHECK_THROWS_WITH_AS(read_file_bytes((dir.path / "a" / "pipe.jpg").string()),
                       doctest::Contains("pipe.jpg: cannot open: a FIFO"), DecodeError);
  CHECK_THROWS_WITH_AS(decode_image_file("/dev/zero"), doctest::Contains("a device file"),
                       DecodeError);
  // predict's listing: recursive, the same entries skipped, symlinked folders not followed.
  fs::create_symlink(dir.path, dir.path / "a" / "up");
  FileList all = list_regular_files(dir.path, /*recursive=*/true);
  CHECK(all.files.size() == 6);
  CHECK(all.files.front() == "a/img0.png");
  CHECK(all.skipped.size() == 5);
}

TEST_CASE("folders: a class folder with nothing readable is refused as empty, naming it") {
  TempDir dir;
  make_folder(dir.path, {"a"}, 2);
  fs::create_directories(dir.path / "b");
  REQUIRE(::mkfifo((dir.path / "b" / "pipe.png").c_str(), 0644) == 0);
  CHECK_THROWS_WITH_AS(
      scan_image_folder(dir.path.string()),
      doctest::Contains(("class folder '" + (dir.path / "b").string() + "' is empty").c_str()),
      std::runtime_error);
  // Regular files that all fail to decode: only decoding can tell, so the cache refuses the class.
  write_bytes(dir.path / "b" / "x.png", {'n', 'o', 't'});
  write_bytes(dir.path / "b" / "y.jpg", {0xFF, 0xD8, 0xFF});
  ImageFolder f = scan_image_folder(dir.path.string());
  REQUIRE(f.samples.size() == 4);
  CHECK_THROWS_WITH_AS(
      ImageCache(f, CacheOptions{.image_size = 8, .verbose = false}),
      doctest::Contains(("class folder '" + (dir.path / "b").string() +
                         "' has no readable images: all 2 of its files failed to decode")
                            .c_str()),
      std::runtime_error);
  // Decoding only class a (a subset) is fine: b was not asked for.
  const std::vector<size_t> only_a{0, 1};
  CHECK(ImageCache(f, CacheOptions{.image_size = 8, .verbose = false}, &only_a)
            .usable_indices()
            .size() == 2);
  // One good image is enough.
  make_folder(dir.path, {"b"}, 1);
  CHECK(ImageCache(scan_image_folder(dir.path.string()),
                   CacheOptions{.image_size = 8, .verbose = false})
            .usable_indices()
            .size() == 3);
}

TEST_CASE("folders: a file or sub-folder that cannot be read for permission is skipped") {
  if (::geteuid() == 0) {
    MESSAGE("skipped: running as root, which reads every file whatever its permissions");
    return;
  }
  TempDir dir;
  make_folder(dir.path, {"a", "b"}, 2);
  fs::permissions(dir.path / "a" / "img1.png", fs::perms::none);
  ImageCache cache(scan_image_folder(dir.path.string()),
                   CacheOptions{.image_size = 8, .verbose = false});
  REQUIRE(cache.skipped().size() == 1);
  CHECK(cache.skipped()[0].find("Permission denied") != std::string::npos);
  // predict's recursive listing passes over a sub-folder it cannot read, naming it.
  fs::create_directories(dir.path / "b" / "locked");
  fs::permissions(dir.path / "b" / "locked", fs::perms::none);
  FileList all = list_regular_files(dir.path, /*recursive=*/true);
  fs::permissions(dir.path / "b" / "locked", fs::perms::owner_all);  // so TempDir can remove it
  CHECK(all.files.size() == 4);
  CHECK(mentions(all.skipped, "b/locked", "cannot be read"));
}
