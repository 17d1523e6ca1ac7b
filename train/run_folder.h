// run_folder.h: a training run's ownership of its run folder (trainer.h lists what it holds).
//
// One run owns its folder: opening takes an advisory lock (flock) on <folder>/train.lock, which
// records the holder's pid, and keeps it until the RunFolder is destroyed; a second train on the
// folder is refused at once, naming the folder and that pid. The kernel drops the lock when the
// process dies, kill -9 included, so a stale train.lock never blocks anyone.
//
// Which folder: --output; else, with --resume, the folder of that checkpoint; else the first of
// runs/<model>-<seed>, runs/<model>-<seed>-2, -3, ... that does not exist yet (created atomically,
// so two runs started together never pick the same one).
//
// A fresh run aimed at a folder that holds anything (a finished or interrupted run, or other
// files) is refused unless --resume or --overwrite; the refused folder is left byte-identical.
// Once the lock is held, temporaries a killed writer left (AtomicFile's "*.tmp.<pid>") are removed.
//
// A run that fails before keep() (its first committed epoch) leaves the folder as it found it: a
// folder it created is removed; in a folder that existed, train.lock (made or rewritten for the
// lock) is removed again or given back its previous contents, and nothing else was written.
#pragma once
#include <filesystem>
#include <optional>
#include <string>

namespace forge::train {

struct TrainOptions;

class RunFolder {
 public:
  // Chooses, creates if needed, locks and checks the folder for `options`; throws
  // std::runtime_error naming the folder (and the holding pid) when the run may not use it.
  explicit RunFolder(const TrainOptions& options);
  ~RunFolder();
  RunFolder(const RunFolder&) = delete;
  RunFolder& operator=(const RunFolder&) = delete;

  const std::filesystem::path& path() const { return path_; }
  // The run has committed work here (its first epoch, or its report): keep the folder from now on.
  void keep() { kept_ = true; }

 private:
  void release();
  void record_holder(const std::string& text);  // train.lock's contents; best effort

  std::filesystem::path path_;
  std::filesystem::path created_;  // the topmost folder this run created, or empty
  bool created_lock_ = false;
  std::optional<std::string> previous_holder_;  // train.lock's contents before this run
  bool kept_ = false;
  int lock_fd_ = -1;
};

// "the last good checkpoint is <folder>/last.safetensors (epoch N)", or that none was written:
// for messages of runs that stop on an error.
std::string last_good_checkpoint(const std::filesystem::path& run_dir);

}  // namespace forge::train
