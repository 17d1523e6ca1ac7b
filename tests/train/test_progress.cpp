// test_progress.cpp: the live progress line's text (train/progress.h) at terminal widths 40, 70
// and 120: never wider than width - 1 (a full-width line wraps into a new line per update),
// the epoch's and the run's ETA where they fit, the bar left out before anything is cut.
#include <doctest/doctest.h>

#include "train/progress.h"

using namespace forge::train;

static ProgressState training_state() {
  return {.label = "epoch 3/20",
          .done = 57,
          .total = 125,
          .loss = 0.412345,
          .accuracy = 0.8125,
          .images_per_second = 41.7,
          .eta = 95,
          .run_eta = 3725};
}

TEST_CASE("progress: the line fits widths 40, 70 and 120") {
  for (int width : {40, 70, 120}) {
    const std::string line = format_progress(training_state(), width);
    CAPTURE(width);
    CAPTURE(line);
    CHECK(line.size() <= size_t(width - 1));
    CHECK(line.rfind("epoch 3/20 ", 0) == 0);
    CHECK(line.find("57/125") != std::string::npos);
    CHECK(line.find('\n') == std::string::npos);
  }
  const std::string wide = format_progress(training_state(), 120);
  CHECK(wide ==
        "epoch 3/20 [##########..............] 57/125  loss 0.4123  acc 0.8125  41.7 img/s  eta "
        "1:35 (run 1:02:05)");
  // At 70 columns the bar and the speed go; both ETAs still fit.
  CHECK(format_progress(training_state(), 70) ==
        "epoch 3/20 57/125  loss 0.4123  acc 0.8125  eta 1:35 (run 1:02:05)");
  // At 40 it is cut at 39 columns.
  CHECK(format_progress(training_state(), 40) == "epoch 3/20 57/125  loss 0.4123  acc 0.8");
}

TEST_CASE("progress: decoding and evaluation lines, without loss, and degenerate widths") {
  const ProgressState decoding{
      .label = "decoding", .done = 1000, .total = 4000, .images_per_second = 250, .eta = 12};
  const std::string line = format_progress(decoding, 70);
  CHECK(line == "decoding [######..................] 1000/4000  250.0 img/s  eta 0:12");
  CHECK(line.find("loss") == std::string::npos);
  CHECK(line.find("(run") == std::string::npos);
  CHECK(format_progress(decoding, 1).size() <= 1);
  CHECK(format_progress(decoding, 0).size() <= 1);
  // A count past its total (never expected) draws a full bar, not past it.
  ProgressState over = decoding;
  over.done = 5000;
  CHECK(format_progress(over, 70).find("[########################]") != std::string::npos);
}

TEST_CASE("progress: format_duration") {
  CHECK(format_duration(95) == "1:35");
  CHECK(format_duration(3725) == "1:02:05");
  CHECK(format_duration(-3) == "0:00");
}
