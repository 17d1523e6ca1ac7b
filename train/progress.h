// progress.h: the line a person watches during training.
//
// On a terminal: one live line redrawn in place, with a bar, the batch count, running loss and
// accuracy, images per second and the time left in the epoch. Elsewhere (a log file, CI): no
// carriage returns; a plain line every `plain_every` batches, so logs stay readable.
#pragma once
#include <chrono>
#include <cstdio>
#include <string>

namespace forge::train {

class ProgressLine {
 public:
  ProgressLine(std::string label, int total_batches, FILE* out = stdout, int plain_every = 20);
  // After each batch: running mean loss and accuracy, images seen so far this epoch.
  void update(int batches_done, double loss, double accuracy, long images);
  // Ends the live line (a newline on a terminal).
  void finish();
  double seconds() const;

 private:
  std::string label_;
  int total_;
  FILE* out_;
  int plain_every_;
  bool terminal_;
  std::chrono::steady_clock::time_point start_;
};

// "1:05:03" / "4:07" for a number of seconds.
std::string format_duration(double seconds);

}  // namespace forge::train
