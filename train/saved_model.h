// saved_model.h: rebuilding a trained model from its checkpoint alone. A checkpoint carries its
// preset, image size, dropout, class names and input normalisation in its metadata, so eval
// and predict need no other flags; and, for other programs, the whole architecture and the
// forge that wrote it:
//   model          the preset's name ("vit", ...)
//   image_size     input side in pixels
//   dropout        the rate the model was built with (the preset's, when train's was -1)
//   architecture   JSON: ImageClassifier::architecture() (every width, depth, norm, ...), floats
//                  as their shortest decimal
//   class_names    JSON list, in logit order
//   fit, normalization, train_files   the input pipeline and the images it was trained on
//   forge_version, forge_commit, forge_dirty   train/build_info.h
// Other keys may be added beside these (the trainer adds run_options); readers ignore what they
// do not know.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "data/transforms.h"
#include "models/model.h"

namespace forge::train {

struct SavedModel {
  std::unique_ptr<models::ImageClassifier> model;  // in eval mode
  std::vector<std::string> class_names;
  data::Normalization normalization;
  int image_size = 0;
  data::Fit fit = data::Fit::crop;
  int64_t epoch = 0;
  // The images it was trained on, relative to its data folder (empty for checkpoints from before
  // this was recorded): eval warns when asked to evaluate on them.
  std::vector<std::string> train_files;
};

// Throws std::runtime_error naming the file when it is not a checkpoint of this program, when
// its metadata is malformed (a missing key, bad JSON, an image size train would refuse), when its
// recorded architecture differs from what the preset builds now, or when a weight is not finite.
SavedModel load_saved_model(const std::string& checkpoint, Device device);

// A model's checkpoint tensors: its parameters and buffers under their module names.
NamedTensors model_tensors(const nn::Module& model);

// Throws std::runtime_error naming `path` and the first tensor holding a NaN or an infinity:
// eval, predict and a resume refuse such a checkpoint.
void require_finite(const NamedTensors& tensors, const std::string& path);

// The metadata a checkpoint needs for load_saved_model (the keys above), for `model` as built.
std::map<std::string, std::string> saved_model_metadata(
    const models::ImageClassifier& model, const std::vector<std::string>& classes,
    const data::Normalization& norm, data::Fit fit, const std::vector<std::string>& train_files);

// `architecture` as the checkpoint records it: JSON text, every float as its shortest decimal.
std::string architecture_text(const nlohmann::ordered_json& architecture);

// How many of `files` (relative to a data folder) the model was trained on.
size_t count_training_images(const SavedModel& saved, const std::vector<std::string>& files);

}  // namespace forge::train
