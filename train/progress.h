// progress.h: the line a person watches during training, decoding and evaluation.
//
// On a terminal: one live line redrawn in place, never wider than the terminal (TIOCGWINSZ, else
// $COLUMNS, else 80), so it never wraps into a new line per update: a bar, the count, running
// loss and accuracy, images per second, the time left in this pass ("eta") and, during training,
// in the whole run ("eta 1:35 (run 1:02:05)"). What does not fit is left out: the bar first,
// then the speed; then the line is cut. Elsewhere (a log file, CI): no carriage returns; a plain
// line every `plain_every` updates.
#pragma once
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>

namespace forge::train {

// What one line shows. loss < 0: no loss and accuracy (decoding); run_eta < 0: no run eta.
struct ProgressState {
  std::string label;
  long done = 0, total = 0;
  double loss = -1, accuracy = 0;
  double images_per_second = 0;
  double eta = 0, run_eta = -1;
};

// The line for `state` in at most width - 1 columns (the last is left free: a terminal that wraps
// at its last column would otherwise add a line). Pure: tested at several widths.
std::string format_progress(const ProgressState& state, int width);
// Columns of the terminal `out` is, else $COLUMNS, else 80.
int terminal_width(FILE* out);

// The run around the epoch a line counts: epochs after it, and how long one takes (0: unknown,
// then this epoch's pace stands in, evaluation left out).
struct RunPace {
  int later_epochs = -1;  // < 0: not part of a run (no run eta)
  double epoch_seconds = 0;
};

class ProgressLine {
 public:
  ProgressLine(std::string label, long total, FILE* out = stdout, int plain_every = 20,
               RunPace pace = {});
  // After each batch: running mean loss and accuracy, images seen so far in this pass.
  void update(long done, double loss, double accuracy, long images);
  // Without loss and accuracy (decoding, evaluation): `done` of `total` images.
  void count(long done);
  // For counts whose total is known only once the pass reports.
  void set_total(long total, int plain_every);
  // Ends the live line (a newline on a terminal).
  void finish();
  double seconds() const;

 private:
  void draw(ProgressState state);
  std::string label_;
  long total_;
  FILE* out_;
  int plain_every_;
  RunPace pace_;
  bool terminal_;
  std::chrono::steady_clock::time_point start_;
};

// A progress callback (done, total) for long passes that are not epochs (decoding the images,
// evaluating a side): a ProgressLine on stderr, its clock started when this is called, finished
// when done reaches total; about ten plain lines when stderr is not a terminal. One pass each.
std::function<void(size_t, size_t)> pass_progress(std::string label);

// "1:05:03" / "4:07" for a number of seconds.
std::string format_duration(double seconds);

}  // namespace forge::train
