// test_trainer.cpp: the training loop end to end on a tiny synthetic image folder: every output
// file written, a resumed run equal to an uninterrupted one, a NaN loss stopping the run without
// saving broken weights, and a saved checkpoint evaluating to the trainer's own figures.
#include <doctest/doctest.h>
#include <stb/stb_image_write.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <regex>
#include <sstream>

#include "engine/io/safetensors.h"
#include "tests/temp_dir.h"
#include "tests/train/tiny_run.h"
#include "train/evaluate.h"
#include "train/history.h"
#include "train/options.h"
#include "train/saved_model.h"
#include "train/trainer.h"

using namespace forge;
using forge::test::make_images;
using forge::test::TempDir;
using forge::test::tiny;
using namespace forge::train;
namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// What `run` writes to stderr (the progress lines, plain: `log` is no terminal), kept in `log`.
std::string stderr_of(const fs::path& log, const std::function<void()>& run) {
  std::fflush(stderr);
  const int saved_stderr = dup(2);
  FILE* capture = std::fopen(log.c_str(), "w");
  REQUIRE(capture);
  dup2(fileno(capture), 2);
  run();
  std::fflush(stderr);
  dup2(saved_stderr, 2);
  close(saved_stderr);
  std::fclose(capture);
  return slurp(log);
}

// Passes over the test side in a run's plain progress lines: each prints one line labelled
// "test..." that ends it, "... [####] N/N ...".
int test_side_passes(const std::string& progress) {
  const std::regex finished(R"(^test[^\[]* \[#+\] (\d+)/\1 )");
  std::istringstream lines(progress);
  int passes = 0;
  for (std::string line; std::getline(lines, line);) passes += std::regex_search(line, finished);
  return passes;
}

// Runs options("straight") uninterrupted, and options("resumed") stopped after its first epoch and
// resumed from that run's last.safetensors: the pair every resume-equals-uninterrupted test
// compares.
void train_straight_and_resumed(const fs::path& root,
                                const std::function<TrainOptions(const char*)>& options) {
  REQUIRE(run_training(options("straight")) == 0);
  TrainOptions first = options("resumed");
  first.stop_after_epochs = 1;
  REQUIRE(run_training(first) == 0);
  TrainOptions second = options("resumed");
  second.resume = (root / "resumed" / "last.safetensors").string();
  REQUIRE(run_training(second) == 0);
}

}  // namespace

TEST_CASE("trainer: a tiny run writes every output file") {
  TempDir dir("train-outputs");
  make_images(dir.path / "data", 12);
  TrainOptions o = tiny(dir.path / "data", dir.path / "run");
  REQUIRE(run_training(o) == 0);
  for (const char* f : {"config.json", "split.csv", "metrics.jsonl", "last.safetensors",
                        "best.safetensors", "report.txt", "report.json", "report.html"})
    CHECK_MESSAGE(fs::exists(dir.path / "run" / f), f);
  CHECK(read_history((dir.path / "run" / "metrics.jsonl").string()).size() == 3);
  const auto report = nlohmann::json::parse(slurp(dir.path / "run" / "report.json"));
  CHECK(report["macro avg"]["support"] == 8);  // 30% of 2 x 12 images, rounded per class: 4 + 4
  const std::string html = slurp(dir.path / "run" / "report.html");
  CHECK(html.find("<svg") != std::string::npos);
  CHECK(html.find("data:image/png;base64,") != std::string::npos);
  // Self-contained: nothing to fetch (the SVG namespace URI is a name, not a fetch).
  CHECK(html.find("src='http") == std::string::npos);
  CHECK(html.find("<link") == std::string::npos);
  CHECK(html.find("<script src") == std::string::npos);
  // The split has a header and one line per image.
  const std::string split = slurp(dir.path / "run" / "split.csv");
  CHECK(std::count(split.begin(), split.end(), '\n') == 25);

  // The checkpoint alone rebuilds the model, which evaluates to the trainer's final figures.
  SavedModel saved =
      load_saved_model((dir.path / "run" / "last.safetensors").string(), Device::cpu);
  CHECK(saved.class_names == std::vector<std::string>{"blue", "red"});
  CHECK(saved.image_size == 16);
  CHECK(saved.epoch == 3);
}

TEST_CASE("trainer: resuming gives exactly the uninterrupted run") {
  TempDir dir("train-resume");
  make_images(dir.path / "data", 10);
  TrainOptions straight = tiny(dir.path / "data", dir.path / "straight");
  REQUIRE(run_training(straight) == 0);

  TrainOptions first = tiny(dir.path / "data", dir.path / "resumed");
  first.stop_after_epochs = 1;  // "interrupted" after epoch 1
  REQUIRE(run_training(first) == 0);
  CHECK_FALSE(fs::exists(dir.path / "resumed" / "report.txt"));
  // report.html is rewritten after every epoch: after one, its charts show that epoch's points.
  const std::string page = slurp(dir.path / "resumed" / "report.html");
  CHECK(page.find("epoch 1 of 3 done") != std::string::npos);
  CHECK(page.find("<circle class='point'") != std::string::npos);
  CHECK(page.find("model after epoch 1 (last.safetensors)") != std::string::npos);
  TrainOptions second = tiny(dir.path / "data", dir.path / "resumed");
  second.resume = (dir.path / "resumed" / "last.safetensors").string();
  second.split_file = (dir.path / "resumed" / "split.csv").string();
  REQUIRE(run_training(second) == 0);

  const auto a = read_history((dir.path / "straight" / "metrics.jsonl").string());
  const auto b = read_history((dir.path / "resumed" / "metrics.jsonl").string());
  REQUIRE(a.size() == 3);
  REQUIRE(b.size() == 3);
  for (size_t e = 0; e < 3; ++e) {  // bit-equal figures, epoch by epoch
    CHECK(a[e].train_loss == b[e].train_loss);
    CHECK(a[e].test_loss == b[e].test_loss);
    CHECK(a[e].test_accuracy == b[e].test_accuracy);
    CHECK(a[e].learning_rate == b[e].learning_rate);
  }
  // And bit-equal weights, optimizer state included.
  const SafetensorsFile wa =
      load_safetensors((dir.path / "straight" / "last.safetensors").string());
  const SafetensorsFile wb = load_safetensors((dir.path / "resumed" / "last.safetensors").string());
  REQUIRE(wa.tensors.size() == wb.tensors.size());
  for (size_t i = 0; i < wa.tensors.size(); ++i) {
    CAPTURE(wa.tensors[i].first);
    CHECK(wa.tensors[i].first == wb.tensors[i].first);
    CHECK(wa.tensors[i].second.to_vector() == wb.tensors[i].second.to_vector());
  }
}

TEST_CASE("trainer: a NaN loss stops the run and never saves the broken weights") {
  TempDir dir("train-nan");
  make_images(dir.path / "data", 8);
  TrainOptions o = tiny(dir.path / "data", dir.path / "run");
  o.opt = "sgd";
  o.lr = 1e30f;  // overflows the weights within the first epoch
  o.clip_grad = 0;
  CHECK(run_training(o) == 3);
  // It failed before its first epoch: the folder it created is gone again.
  CHECK_FALSE(fs::exists(dir.path / "run"));
}

TEST_CASE("trainer: a NaN training loss is found at the next log point and named, nothing saved") {
  // Five batches an epoch (10 training images): the weights overflow within the first ones, so the
  // training loss turns NaN before the epoch's end, where it is read back (fewer than
  // step_row_interval steps).
  TempDir dir("train-nan-step");
  make_images(dir.path / "data", 8);
  TrainOptions o = tiny(dir.path / "data", dir.path / "run");
  o.opt = "sgd";
  o.lr = 1e30f;
  o.clip_grad = 0;
  o.batch_size = 2;
  int code = -1;
  const std::string text = stderr_of(dir.path / "stderr.txt", [&] { code = run_training(o); });
  CHECK(code == 3);
  INFO(text);
  CHECK(text.find("the training loss became non-finite at step") != std::string::npos);
  CHECK(text.find("(found at step 5: the loss is read back every 10 steps)") != std::string::npos);
  CHECK(text.find("no checkpoint was written") != std::string::npos);
  CHECK_FALSE(fs::exists(dir.path / "run"));
}

TEST_CASE("trainer: when the best epoch is the last, the test side is evaluated once") {
  // One epoch: best.safetensors holds the final model's weights, so its test report is the
  // final model's, which is the epoch's own test pass: one pass in all (two before).
  TempDir dir("train-one-test-pass");
  make_images(dir.path / "data", 10);
  TrainOptions o = tiny(dir.path / "data", dir.path / "run");
  o.epochs = 1;
  int code = -1;
  const std::string progress = stderr_of(dir.path / "stderr.txt", [&] { code = run_training(o); });
  REQUIRE(code == 0);
  INFO(progress);
  CHECK(test_side_passes(progress) == 1);
  const auto report = nlohmann::json::parse(slurp(dir.path / "run" / "report.json"));
  CHECK(report["best_on_validation"]["epoch"] == 1);
  for (const char* key : {"accuracy", "macro avg", "weighted avg"}) {
    CAPTURE(key);
    CHECK(report["best_on_validation"][key] == report[key]);
  }
}

TEST_CASE("trainer: bad options and bad data fail before training") {
  TempDir dir("train-bad");
  make_images(dir.path / "data", 4);
  TrainOptions o = tiny(dir.path / "data", dir.path / "run");
  o.opt = "lion";
  CHECK_THROWS_WITH_AS(run_training(o), doctest::Contains("unknown optimizer 'lion'"),
                       std::invalid_argument);
  o = tiny(dir.path / "missing", dir.path / "run");
  CHECK_THROWS_WITH_AS(run_training(o), doctest::Contains("does not exist"), std::runtime_error);
  o = tiny(dir.path / "data", dir.path / "run");
  o.resume = (dir.path / "nothing.safetensors").string();
  CHECK_THROWS(run_training(o));
}

TEST_CASE("trainer: best.safetensors is chosen on the validation side, never on the test side") {
  // The validation side holds only decoys (each looks like the other class), so validation
  // accuracy falls as the model learns while test accuracy rises: the two choices differ.
  TempDir dir("train-best");
  make_images(dir.path / "data", 10, 3);
  std::string split = "file,class,side\n";
  for (const char* c : {"blue", "red"})
    for (int i = 0; i < 13; ++i) {
      const std::string name = i < 10 ? "im" + std::to_string(i) : "decoy" + std::to_string(i - 10);
      split += std::string(c) + "/" + name + ".png," + c + "," +
               (i >= 10 ? "val"
                : i < 7 ? "train"
                        : "test") +
               "\n";
    }
  std::ofstream(dir.path / "decoy_split.csv") << split;
  TrainOptions o = tiny(dir.path / "data", dir.path / "run");
  o.split_file = (dir.path / "decoy_split.csv").string();
  o.epochs = 6;
  o.lr = 5e-4f;  // learns over a few epochs, not in the first
  REQUIRE(run_training(o) == 0);
  const auto history = read_history((dir.path / "run" / "metrics.jsonl").string());
  REQUIRE(history.size() == 6);
  auto first_best = [&](auto accuracy) {
    return std::max_element(history.begin(), history.end(),
                            [&](const auto& a, const auto& b) { return accuracy(a) < accuracy(b); })
        ->epoch;
  };
  const int best_val = first_best([](const EpochRecord& r) { return r.val_accuracy; });
  const int best_test = first_best([](const EpochRecord& r) { return r.test_accuracy; });
  REQUIRE(best_val != best_test);  // otherwise this run could not tell the two choices apart
  CHECK(load_saved_model((dir.path / "run" / "best.safetensors").string(), Device::cpu).epoch ==
        best_val);
  // The report evaluates the test side on both models, each labelled.
  const auto report = nlohmann::json::parse(slurp(dir.path / "run" / "report.json"));
  CHECK(report["model"] == "final");
  CHECK(report["epoch"] == 6);
  CHECK(report["best_on_validation"]["epoch"] == best_val);
  CHECK(report["best_on_validation"]["macro avg"]["support"] == 6);
  const std::string text = slurp(dir.path / "run" / "report.txt");
  CHECK(text.find("test set, final model") != std::string::npos);
  CHECK(text.find("test set, best-on-validation model") != std::string::npos);
  const std::string html = slurp(dir.path / "run" / "report.html");
  CHECK(html.find("Test set, final model") != std::string::npos);
  CHECK(html.find("Test set, best-on-validation model") != std::string::npos);
  // The history is part of the checkpoint: metrics.jsonl can always be rebuilt from it.
  const auto meta = load_safetensors((dir.path / "run" / "last.safetensors").string()).metadata;
  CHECK(history_from_metadata(meta.at("history"), "last").size() == 6);
}

TEST_CASE(
    "trainer: each regulariser trains, is recorded, and a changed value is refused on resume") {
  TempDir dir("train-regularisers");
  make_images(dir.path / "data", 10);
  struct Case {
    std::string flag, key;
    std::function<void(TrainOptions&)> set, change;
  };
  const std::vector<Case> cases = {
      {"--drop-path", "/regularise/drop_path",
       [](TrainOptions& o) { o.model = "vit-micro", o.drop_path = 0.2f; },
       [](TrainOptions& o) { o.drop_path = 0.1f; }},
      {"--mixup", "/regularise/mixup_alpha",
       [](TrainOptions& o) { o.mix.mixup_alpha = 0.8f, o.mix.cutmix_alpha = 1.f; },
       [](TrainOptions& o) { o.mix.mixup_alpha = 0.4f; }},
      {"--cutmix", "/regularise/cutmix_alpha", [](TrainOptions& o) { o.mix.cutmix_alpha = 1.f; },
       [](TrainOptions& o) { o.mix.cutmix_alpha = 0.5f; }},
      {"--reprob", "/regularise/reprob", [](TrainOptions& o) { o.erasing.prob = 0.5f; },
       [](TrainOptions& o) { o.erasing.prob = 0.25f; }},
      {"--model-ema-decay", "/regularise/model_ema_decay",
       [](TrainOptions& o) { o.model_ema = true, o.model_ema_decay = 0.9f; },
       [](TrainOptions& o) { o.model_ema_decay = 0.8f; }},
  };
  for (const Case& c : cases) {
    CAPTURE(c.flag);
    const fs::path run = dir.path / c.flag.substr(2);
    TrainOptions o = tiny(dir.path / "data", run);
    o.epochs = 2;
    o.stop_after_epochs = 1;
    c.set(o);
    REQUIRE(run_training(o) == 0);
    const auto config = nlohmann::json::parse(slurp(run / "config.json"));
    CHECK(config.at(nlohmann::json::json_pointer(c.key)) ==
          options_json(o).at(nlohmann::json::json_pointer(c.key)));
    TrainOptions changed = o;
    changed.stop_after_epochs = 0;
    changed.resume = (run / "last.safetensors").string();
    c.change(changed);
    CHECK_THROWS_WITH_AS(run_training(changed), doctest::Contains((c.flag + ":").c_str()),
                         OptionError);
    TrainOptions resumed = o;
    resumed.stop_after_epochs = 0;
    resumed.resume = changed.resume;
    REQUIRE(run_training(resumed) == 0);
    const auto history = read_history((run / "metrics.jsonl").string());
    REQUIRE(history.size() == 2);
    CHECK(std::isfinite(history[1].train_loss));
  }
}

TEST_CASE(
    "trainer: a ViT with the conv stem learns, its checkpoints load with it, resume keeps it") {
  TempDir dir("train-conv-stem");
  make_images(dir.path / "data", 10);
  TrainOptions o = tiny(dir.path / "data", dir.path / "run");
  o.model = "vit-micro";
  o.stem = "conv";
  o.epochs = 4;
  o.stop_after_epochs = 3;
  REQUIRE(run_training(o) == 0);
  const auto history = read_history((dir.path / "run" / "metrics.jsonl").string());
  REQUIRE(history.size() == 3);
  CHECK(history[2].train_loss < history[0].train_loss);
  for (const char* file : {"best.safetensors", "last.safetensors"}) {
    CAPTURE(file);
    const SavedModel saved = load_saved_model((dir.path / "run" / file).string(), Device::cpu);
    CHECK(saved.model->spec().stem == "conv");
    CHECK(saved.model->architecture().at("stem_channels") == nlohmann::json{8, 16, 32});
  }
  CHECK(nlohmann::json::parse(slurp(dir.path / "run" / "config.json")).at("stem") == "conv");
  TrainOptions resumed = o;
  resumed.stop_after_epochs = 0;
  resumed.resume = (dir.path / "run" / "last.safetensors").string();
  resumed.stem = "patch";
  CHECK_THROWS_WITH_AS(run_training(resumed), doctest::Contains("--stem:"), OptionError);
  resumed.stem = "conv";
  REQUIRE(run_training(resumed) == 0);
  CHECK(read_history((dir.path / "run" / "metrics.jsonl").string()).size() == 4);
}

TEST_CASE("trainer: HRNet with drop path resumes bitwise, and its checkpoints load with it") {
  // The masks are keyed by seed, epoch and sample (not by the process): a resumed run draws what
  // the uninterrupted one drew. best.safetensors and last.safetensors rebuild with drop_path.
  TempDir dir("train-hrnet-drop-path");
  make_images(dir.path / "data", 10);
  auto options = [&](const char* run) {
    TrainOptions o = tiny(dir.path / "data", dir.path / run);
    o.model = "hrnet-micro";
    o.epochs = 2;
    o.drop_path = 0.3f;
    return o;
  };
  train_straight_and_resumed(dir.path, options);
  const SafetensorsFile a = load_safetensors((dir.path / "straight" / "last.safetensors").string());
  const SafetensorsFile b = load_safetensors((dir.path / "resumed" / "last.safetensors").string());
  REQUIRE(a.tensors.size() == b.tensors.size());
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    CAPTURE(a.tensors[i].first);
    CHECK(a.tensors[i].second.to_vector() == b.tensors[i].second.to_vector());
  }
  for (const char* file : {"best.safetensors", "last.safetensors"}) {
    CAPTURE(file);
    const SavedModel saved = load_saved_model((dir.path / "straight" / file).string(), Device::cpu);
    CHECK(saved.model->spec().drop_path == 0.3f);
  }
}

TEST_CASE(
    "trainer: with every regulariser on, a resumed run equals the uninterrupted one, EMA too") {
  TempDir dir("train-regularised-resume");
  make_images(dir.path / "data", 10);
  auto options = [&](const char* run) {
    TrainOptions o = tiny(dir.path / "data", dir.path / run);
    o.model = "vit-micro";
    o.drop_path = 0.3f;
    o.mix = {.mixup_alpha = 0.8f, .cutmix_alpha = 1.f, .prob = 0.9f};
    o.erasing.prob = 0.5f;
    o.model_ema = true;
    o.model_ema_decay = 0.8f;
    return o;
  };
  train_straight_and_resumed(dir.path, options);

  for (const char* file : {"last.safetensors", "ema.safetensors"}) {
    CAPTURE(file);
    const SafetensorsFile a = load_safetensors((dir.path / "straight" / file).string());
    const SafetensorsFile b = load_safetensors((dir.path / "resumed" / file).string());
    REQUIRE(a.tensors.size() == b.tensors.size());
    size_t averaged = 0;
    for (size_t i = 0; i < a.tensors.size(); ++i) {
      CAPTURE(a.tensors[i].first);
      CHECK(a.tensors[i].first == b.tensors[i].first);
      CHECK(a.tensors[i].second.to_vector() == b.tensors[i].second.to_vector());
      averaged += a.tensors[i].first.rfind("ema.", 0) == 0;
    }
    if (std::string(file) == "last.safetensors") CHECK(averaged > 0);
  }
  // The average differs from the final weights, and is evaluated and reported beside them.
  const SafetensorsFile last =
      load_safetensors((dir.path / "straight" / "last.safetensors").string());
  CHECK(last.find("ema.head.weight")->to_vector() != last.find("model.head.weight")->to_vector());
  const auto history = read_history((dir.path / "straight" / "metrics.jsonl").string());
  REQUIRE(history.size() == 3);
  CHECK(history.back().ema_val_accuracy.has_value());
  CHECK(history.front().ema_val_accuracy.has_value());  // every epoch, read back
  const auto report = nlohmann::json::parse(slurp(dir.path / "straight" / "report.json"));
  CHECK(report["model_ema"]["decay"] == 0.8);
  CHECK(report["model_ema"]["accuracy"].get<double>() >= 0);
  CHECK(slurp(dir.path / "straight" / "report.txt").find("EMA of the weights") !=
        std::string::npos);
  // Both files load as models for eval and predict.
  CHECK(load_saved_model((dir.path / "straight" / "ema.safetensors").string(), Device::cpu).epoch ==
        3);
  CHECK(
      load_saved_model((dir.path / "straight" / "last.safetensors").string(), Device::cpu).epoch ==
      3);
}
