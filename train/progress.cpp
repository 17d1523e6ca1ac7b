// progress.cpp: drawing the progress line (see progress.h).
#include "train/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>

namespace forge::train {

ProgressLine::ProgressLine(std::string label, int total, FILE* out, int plain_every)
    : label_(std::move(label)),
      total_(total),
      out_(out),
      plain_every_(plain_every),
      terminal_(isatty(fileno(out)) != 0),
      start_(std::chrono::steady_clock::now()) {}

double ProgressLine::seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

std::string format_duration(double s) {
  const long t = std::lround(std::max(0.0, s));
  char buf[32];
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
  else
    std::snprintf(buf, sizeof buf, "%ld:%02ld", t / 60, t % 60);
  return buf;
}

void ProgressLine::update(int done, double loss, double accuracy, long images) {
  const double elapsed = seconds();
  const double rate = elapsed > 0 ? images / elapsed : 0;
  const double eta = done > 0 ? elapsed * (total_ - done) / done : 0;
  if (terminal_) {
    const int width = 24, filled = total_ > 0 ? width * done / total_ : width;
    std::string bar(filled, '#');
    bar.resize(width, '.');
    std::fprintf(out_, "\r%s [%s] %d/%d  loss %.4f  acc %.4f  %.1f img/s  eta %s   ",
                 label_.c_str(), bar.c_str(), done, total_, loss, accuracy, rate,
                 format_duration(eta).c_str());
  } else if (done % plain_every_ == 0 || done == total_) {
    std::fprintf(out_, "%s %d/%d  loss %.4f  acc %.4f  %.1f img/s  eta %s\n", label_.c_str(), done,
                 total_, loss, accuracy, rate, format_duration(eta).c_str());
  }
  std::fflush(out_);
}

void ProgressLine::finish() {
  if (terminal_) std::fprintf(out_, "\n");
  std::fflush(out_);
}

}  // namespace forge::train
