// predict: the class and its probability for image files, or every file of folders.
//
//   build/bin/predict --checkpoint runs/vit/last.safetensors photo.jpg more_images/
// prints one line per image: path, predicted class, probability (tab-separated), and with
// --topk K the K likeliest classes, each with its probability.
//
// For other programs, --format tsv|csv|json: a header row, then per image the file, the top K
// ("top1", "top1_probability", ... "topK_probability"), then every class's probability in a
// column named by the class. csv is RFC 4180 (data/csv.h: any file name survives); tsv escapes
// tab, newline, carriage return and backslash in fields as \t \n \r \\; json is JSON Lines,
// one object per image: {"file", "top": [{"class", "probability"}...], "probabilities": {class:
// probability}}.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <filesystem>

#include "data/csv.h"
#include "data/decode.h"
#include "data/files.h"
#include "engine/autograd.h"
#include "engine/cuda/builtin.h"
#include "tools/program.h"
#include "train/evaluate.h"
#include "train/history.h"
#include "train/saved_model.h"

using namespace forge;
namespace fs = std::filesystem;

// A TSV field: the tab, line breaks and backslash escaped, so a record stays one line.
static std::string tsv_field(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '\t':
        out += "\\t";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\\':
        out += "\\\\";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// One output record in the chosen format ("text" and "tsv": tab-separated).
static std::string record(const std::string& format, const std::vector<std::string>& fields) {
  if (format == "csv") return data::csv_record(fields);
  std::string line;
  for (const auto& f : fields)
    line += (line.empty() ? "" : "\t") + (format == "tsv" ? tsv_field(f) : f);
  return line + "\n";
}

static std::string probability_text(float p, int digits) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", digits, p);
  return buf;
}

// The program itself; program::run (tools/program.h) makes `app` and catches what escapes.
int predict_main(CLI::App& app, int argc, char** argv) {
  forge::register_builtin_backends();  // --device sim / cuda, when built in
  std::string checkpoint, device = "cpu";
  std::vector<std::string> inputs;
  std::string format = "text";
  int batch_size = 32, topk = 1;
  app.add_option("--checkpoint", checkpoint, "a .safetensors written by train")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("images", inputs, "image files or folders")->required();
  app.add_option("--format", format,
                 "text (a person's), or for programs tsv, csv, json (JSON Lines) with every "
                 "class's probability")
      ->check(CLI::IsMember({"text", "tsv", "csv", "json"}))
      ->capture_default_str();
  app.add_option("--topk", topk, "the K likeliest classes per image")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  app.add_option("-b,--batch-size", batch_size)->check(CLI::Range(1, 4096))->capture_default_str();
  app.add_option("--device", device)
      ->check(CLI::IsMember({"cpu", "sim", "cuda"}))
      ->capture_default_str();
  program::PrecisionFlags precision_flags;
  program::add_precision_flags(app, precision_flags);
  app.parse(argc, argv);
  const Device dev = parse_device(device);
  const train::ScopedPrecision precision = program::scoped_precision(dev, precision_flags);
  train::SavedModel saved = train::load_saved_model(checkpoint, dev);
  std::vector<std::string> files;
  for (const auto& in : inputs) {
    if (fs::is_directory(in)) {
      data::FileList found = data::list_regular_files(in, /*recursive=*/true);
      data::warn_skipped(found.skipped);  // FIFOs, devices, symlink loops: never opened
      for (const auto& f : found.files) files.push_back((fs::path(in) / f).string());
    } else {
      files.push_back(in);
    }
  }
  const int s = saved.image_size, classes = static_cast<int>(saved.class_names.size());
  if (topk > classes)
    throw CLI::ValidationError("--topk", std::to_string(topk) + " but " + checkpoint + " knows " +
                                             std::to_string(classes) + " classes");
  if (format == "tsv" || format == "csv") {
    std::vector<std::string> header{"file"};
    for (int k = 1; k <= topk; ++k) {
      header.push_back("top" + std::to_string(k));
      header.push_back("top" + std::to_string(k) + "_probability");
    }
    header.insert(header.end(), saved.class_names.begin(), saved.class_names.end());
    std::fputs(record(format, header).c_str(), stdout);
  }
  int failed = 0;
  NoGradGuard no_grad;
  for (size_t start = 0; start < files.size(); start += batch_size) {
    std::vector<std::string> names;
    std::vector<float> pixels;
    for (size_t i = start; i < std::min(files.size(), start + batch_size); ++i) {
      try {
        data::Image img = data::resize_square(data::decode_image_file(files[i]), s, saved.fit);
        pixels.resize(pixels.size() + size_t(3) * s * s);
        data::normalize_into(img, saved.normalization, &pixels[pixels.size() - size_t(3) * s * s]);
        names.push_back(files[i]);
      } catch (const data::DecodeError& e) {
        std::fprintf(stderr, "warning: skipping %s\n", e.what());
        ++failed;
      }
    }
    if (names.empty()) continue;
    const int n = static_cast<int>(names.size());
    Tensor logits = saved.model->forward(Tensor::from_vector(pixels, {n, 3, s, s}, dev));
    const std::vector<float> p = train::softmax_rows(logits.to_vector(), classes);
    for (int i = 0; i < n; ++i) {
      const float* row = &p[size_t(i) * classes];
      std::vector<int> order(classes);  // the classes, likeliest first (ties: label order)
      for (int c = 0; c < classes; ++c) order[c] = c;
      std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return row[a] > row[b]; });
      if (format == "json") {
        nlohmann::json j{{"file", names[i]}, {"top", nlohmann::json::array()}};
        for (int k = 0; k < topk; ++k)
          j["top"].push_back({{"class", saved.class_names[order[k]]},
                              {"probability", train::float_precision(row[order[k]])}});
        for (int c = 0; c < classes; ++c)
          j["probabilities"][saved.class_names[c]] = train::float_precision(row[c]);
        std::printf("%s\n", j.dump().c_str());
        continue;
      }
      std::vector<std::string> fields{names[i]};
      for (int k = 0; k < topk; ++k) {
        fields.push_back(saved.class_names[order[k]]);
        fields.push_back(probability_text(row[order[k]], format == "text" ? 4 : 6));
      }
      if (format != "text")
        for (int c = 0; c < classes; ++c) fields.push_back(probability_text(row[c], 6));
      std::fputs(record(format, fields).c_str(), stdout);
    }
  }
  if (failed) std::fprintf(stderr, "warning: %d file(s) were not readable images\n", failed);
  return files.empty() || failed == int(files.size()) ? 1 : 0;
}

int main(int argc, char** argv) {
  return program::run("predict", "Classify images with a trained checkpoint.",
                      [&](CLI::App& app) { return predict_main(app, argc, argv); });
}
