// run_report.cpp: report.html's saliency maps, timestamp and atomic write (see run_report.h).
#include "train/run_report.h"

#include <chrono>

#include "engine/io/atomic_file.h"
#include "train/saliency.h"

namespace forge::train {

void write_run_report(const std::string& path, ReportPage page, models::ImageClassifier& model,
                      Device device) {
  if (!page.reports.empty())
    add_saliency(model, page.examples, saliency_examples, page.reports[0].report.class_names,
                 device);
  page.written = utc_timestamp(std::chrono::system_clock::now());
  write_file_atomically(path, render_report_html(page));
}

}  // namespace forge::train
