// progress.cpp: drawing the progress line (see progress.h).
#include "train/progress.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <memory>

namespace forge::train {

std::string format_duration(double s) {
  const long t = std::lround(std::max(0.0, s));
  char buf[32];
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
  else
    std::snprintf(buf, sizeof buf, "%ld:%02ld", t / 60, t % 60);
  return buf;
}

int terminal_width(FILE* out) {
  winsize size{};
  if (ioctl(fileno(out), TIOCGWINSZ, &size) == 0 && size.ws_col > 0) return size.ws_col;
  if (const char* columns = std::getenv("COLUMNS")) {
    const int n = std::atoi(columns);
    if (n > 0) return n;
  }
  return 80;
}

std::string format_progress(const ProgressState& s, int width) {
  const size_t room = static_cast<size_t>(std::max(1, width - 1));
  char buf[256];
  std::snprintf(buf, sizeof buf, "%ld/%ld", s.done, s.total);
  const std::string counts = buf;
  std::string metrics;
  if (s.loss >= 0) {
    std::snprintf(buf, sizeof buf, "  loss %.4f  acc %.4f", s.loss, s.accuracy);
    metrics = buf;
  }
  std::snprintf(buf, sizeof buf, "  %.1f img/s", s.images_per_second);
  std::string speed = buf;
  std::string eta = "  eta " + format_duration(s.eta);
  if (s.run_eta >= 0) eta += " (run " + format_duration(s.run_eta) + ")";
  // What does not fit goes: first the bar (it shrinks from 24 columns, and under 6 goes), then
  // the speed, then the end of the line is cut.
  const size_t head = s.label.size() + 1 + counts.size() + metrics.size() + eta.size();
  if (head + speed.size() > room) speed.clear();
  const size_t used = head + speed.size() + 3;  // the bar's brackets and its space
  const int bar = static_cast<int>(std::min<size_t>(24, room > used ? room - used : 0));
  std::string line = s.label + " ";
  if (bar >= 6) {
    const long filled = s.total > 0 ? bar * std::min(s.done, s.total) / s.total : bar;
    line += "[" + std::string(filled, '#') + std::string(bar - filled, '.') + "] ";
  }
  line += counts + metrics + speed + eta;
  if (line.size() > room) line.resize(room);
  return line;
}

ProgressLine::ProgressLine(std::string label, long total, FILE* out, int plain_every, RunPace pace)
    : label_(std::move(label)),
      total_(total),
      out_(out),
      plain_every_(std::max(1, plain_every)),
      pace_(pace),
      terminal_(isatty(fileno(out)) != 0),
      start_(std::chrono::steady_clock::now()) {}

double ProgressLine::seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void ProgressLine::draw(ProgressState s) {
  const double elapsed = seconds();
  s.eta = s.done > 0 ? elapsed * (total_ - s.done) / s.done : 0;
  if (pace_.later_epochs >= 0) {
    const double per_epoch = pace_.epoch_seconds > 0 ? pace_.epoch_seconds
                             : s.done > 0            ? elapsed * total_ / s.done
                                                     : 0;
    s.run_eta = s.eta + pace_.later_epochs * per_epoch;
  }
  if (terminal_) {  // redrawn in place; \033[K clears what a longer earlier line left
    std::fprintf(out_, "\r%s\033[K", format_progress(s, terminal_width(out_)).c_str());
  } else if (s.done % plain_every_ == 0 || s.done == total_) {
    std::fprintf(out_, "%s\n", format_progress(s, 1 << 20).c_str());
  }
  std::fflush(out_);
}

void ProgressLine::update(long done, double loss, double accuracy, long images) {
  const double elapsed = seconds();
  draw({.label = label_,
        .done = done,
        .total = total_,
        .loss = loss,
        .accuracy = accuracy,
        .images_per_second = elapsed > 0 ? images / elapsed : 0});
}

void ProgressLine::count(long done) {
  const double elapsed = seconds();
  draw({.label = label_,
        .done = done,
        .total = total_,
        .images_per_second = elapsed > 0 ? done / elapsed : 0});
}

void ProgressLine::set_total(long total, int plain_every) {
  total_ = total;
  plain_every_ = std::max(1, plain_every);
}

void ProgressLine::finish() {
  if (terminal_) std::fprintf(out_, "\n");
  std::fflush(out_);
}

std::function<void(size_t, size_t)> pass_progress(std::string label) {
  // Made now, so that the speed counts from the start of the pass, not from its first report.
  auto line = std::make_shared<ProgressLine>(std::move(label), 0, stderr);
  return [line](size_t done, size_t total) {
    line->set_total(long(total), static_cast<int>(std::max<size_t>(1, total / 10)));
    line->count(long(done));
    if (done >= total) line->finish();
  };
}

}  // namespace forge::train
