// test_options.cpp: the table of training options (train/options.h) and the resume check made
// from it (train/resume.h): every float refuses NaN and infinities, inverted ranges are refused,
// config.json lists every option, and a resume may change only the options of kind may_change.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

#include "train/options.h"
#include "train/resume.h"

using namespace forge;
using namespace forge::train;
namespace fs = std::filesystem;

namespace {

fs::path write_temp(const std::string& tag, const std::string& text) {
  const fs::path p = fs::temp_directory_path() /
                     ("forge-options-" + tag + "-" + std::to_string(::getpid()) + ".csv");
  std::ofstream(p, std::ios::binary) << text;
  return p;
}

// The metadata a checkpoint of `o` with the split file `split` records.
Metadata recorded(const TrainOptions& o, const fs::path& split) {
  return {{run_options_key, recorded_options(o, file_digest(split))}};
}

}  // namespace

TEST_CASE("options: every float option refuses NaN and infinities, naming the flag") {
  int floats = 0;
  for (const OptionSpec& s : option_table()) {
    if (!std::holds_alternative<Field<float>>(s.field)) continue;
    ++floats;
    for (float bad :
         {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
          -std::numeric_limits<float>::infinity()}) {
      TrainOptions o;
      std::get<Field<float>>(s.field)(o) = bad;
      CAPTURE(s.name());
      CHECK_THROWS_WITH_AS(validate_options(o), doctest::Contains(s.name().c_str()), OptionError);
    }
  }
  CHECK(floats >= 20);
  CHECK_NOTHROW(validate_options(TrainOptions{}));  // the defaults are valid
}

TEST_CASE("options: out-of-range values, unknown choices and inverted ranges are refused") {
  TrainOptions o;
  o.image_size = 0;
  CHECK_THROWS_WITH_AS(validate_options(o), doctest::Contains("--img-size 0"), OptionError);
  o = {};
  o.opt = "lion";
  CHECK_THROWS_WITH_AS(validate_options(o), doctest::Contains("--opt 'lion'"), OptionError);
  o = {};
  o.model = "resnet";  // the choices are the models layer's presets
  CHECK_THROWS_WITH_AS(validate_options(o), doctest::Contains("--model 'resnet'"), OptionError);
  o = {};
  o.augment.brightness_min = 5;
  o.augment.brightness_max = 0.1f;
  CHECK_THROWS_WITH_AS(validate_options(o),
                       doctest::Contains("--brightness-min 5 exceeds --brightness-max 0.1"),
                       OptionError);
  o = {};
  o.augment.blur_sigma_max = 0.05f;  // below the default minimum 0.1
  CHECK_THROWS_WITH_AS(validate_options(o), doctest::Contains("--blur-sigma 0.05"), OptionError);
  o = TrainOptions{};
  o.model = "cnn";
  o.drop_path = 0.1f;
  CHECK_THROWS_WITH_AS(validate_options(o),
                       doctest::Contains("--drop-path 0.1 with --model cnn: the cnn presets have "
                                         "no residual blocks"),
                       OptionError);
  for (const char* residual : {"vit-micro", "hrnet"}) {
    o.model = residual;
    CHECK_NOTHROW(validate_options(o));
  }
  o = TrainOptions{};
  o.stem = "conv";
  for (const char* convolutional : {"cnn", "hrnet-micro"}) {
    o.model = convolutional;
    CHECK_THROWS_WITH_AS(
        validate_options(o),
        doctest::Contains(("--stem conv with --model " + std::string(convolutional) +
                           ": only the vit presets take a conv stem")
                              .c_str()),
        OptionError);
  }
  for (const char* vit : {"vit", "vit-micro"}) {
    o.model = vit;
    CHECK_NOTHROW(validate_options(o));
  }
  o.stem = "hybrid";
  CHECK_THROWS_WITH_AS(validate_options(o), doctest::Contains("--stem 'hybrid': expected patch"),
                       OptionError);
}

TEST_CASE("options: config.json holds every option of the table under its key") {
  TrainOptions o;
  o.augment.crop_ratio_max = 1.5f;
  const nlohmann::json j = options_json(o);
  for (const OptionSpec& s : option_table()) {
    CAPTURE(s.key);
    CHECK(j.contains(nlohmann::json::json_pointer(s.key)));
  }
  CHECK(j["augment"]["crop_ratio_max"] == 1.5);
  CHECK(j["augment"]["blur_sigma_min"] == 0.1);
  CHECK(j["device"] == "cpu");
  CHECK(j["seed"] == 42);
}

TEST_CASE("resume: a changed run-defining option is refused naming it and both values") {
  const fs::path split = write_temp("split", "file,class,side\na.png,x,train\n");
  TrainOptions run;
  const Metadata meta = recorded(run, split);
  TrainOptions again = run;
  again.resume = "run/last.safetensors";
  CHECK_NOTHROW(check_resume(meta, again, split));

  TrainOptions seed = again;
  seed.seed = 7;
  CHECK_THROWS_WITH_AS(check_resume(meta, seed, split),
                       doctest::Contains("--seed: the run has 42, this command 7"), OptionError);
  TrainOptions hflip = again;
  hflip.augment.hflip_prob = 0;
  CHECK_THROWS_WITH_AS(check_resume(meta, hflip, split),
                       doctest::Contains("--hflip: the run has 0.5, this command 0"), OptionError);

  // Options that may change mid-run are accepted.
  TrainOptions more = again;
  more.epochs = 50;
  more.workers = 1;
  more.stop_after_epochs = 3;
  more.device = Device::sim;
  CHECK_NOTHROW(check_resume(meta, more, split));

  // The split is checked by its bytes: an edited split.csv, or a --split of another split.
  const fs::path other = write_temp("other", "file,class,side\na.png,x,test\n");
  CHECK_THROWS_WITH_AS(check_resume(meta, again, other), doctest::Contains("has changed"),
                       std::runtime_error);
  TrainOptions with_split = again;
  with_split.split_file = other.string();
  CHECK_THROWS_WITH_AS(check_resume(meta, with_split, split),
                       doctest::Contains("is not the split of the run"), OptionError);
  CHECK_THROWS_WITH_AS(check_resume(meta, again, split.string() + ".missing"),
                       doctest::Contains("has no"), std::runtime_error);
  // A checkpoint from before options were recorded passes with a warning.
  CHECK_NOTHROW(check_resume({}, seed, split));
  CHECK_THROWS_WITH_AS(check_resume({{run_options_key, "{bad"}}, again, split),
                       doctest::Contains("malformed run_options"), std::runtime_error);
  fs::remove(split);
  fs::remove(other);
}

TEST_CASE("resume: the split digest is FNV-1a of the file's bytes") {
  const fs::path a = write_temp("fnv", "a");
  CHECK(file_digest(a) == "fnv1a64:af63dc4c8601ec8c");  // the published FNV-1a 64 of "a"
  fs::remove(a);
  CHECK_THROWS_WITH_AS(file_digest(a), doctest::Contains(a.c_str()), std::runtime_error);
}
