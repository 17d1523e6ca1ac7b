// run_report.h: writes a run's report.html (train/report_html.h) after each epoch and at the
// end: the maps of what the model looks at for the first few examples (train/saliency.h), the
// time of writing, then the page through the checked atomic writer (a reader never sees half a
// page; a full disk is a WriteError naming the file).
#pragma once
#include <string>

#include "models/model.h"
#include "train/report_html.h"

namespace forge::train {

// Examples that get a saliency map (each a forward pass, Grad-CAM also a backward one).
inline constexpr int saliency_examples = 16;

void write_run_report(const std::string& path, ReportPage page, models::ImageClassifier& model,
                      Device device);

}  // namespace forge::train
