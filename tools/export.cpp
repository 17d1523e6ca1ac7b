// export: a checkpoint's weights as other frameworks name them, and back (train/state_dict.h).
//
//   build/bin/export runs/vit/last.safetensors vit_timm.safetensors [--dtype bf16]
//       the ViT as a timm state dict: in PyTorch,
//         m = timm.create_model("vit_tiny_patch16_224", img_size=128, num_classes=2)
//         m.load_state_dict(safetensors.torch.load_file("vit_timm.safetensors"))
//       fed 120x120 images zero-padded by 4 pixels on every side (the architecture's
//       image_size -> padded_size)
//   build/bin/export runs/hrnet/last.safetensors hrnet.safetensors --format forge
//       forge's own names (HRNet, the CNN and a ViT with --stem conv have no timm twin; they
//       are exported so by default): the state dict of
//       bench/pytorch_models.py's twins, with BatchNorm's num_batches_tracked
//   build/bin/export --import vit_timm.safetensors restored.safetensors
//       an exported file back into a checkpoint that eval and predict take
//
// An exported file keeps the checkpoint's metadata (architecture, class names, normalisation,
// ...) and adds "format": "pt" (what Hugging Face loaders expect of a PyTorch safetensors file),
// "forge_export" (timm or forge), "step" and "epoch". Float tensors are written as --dtype (f32,
// bf16 or f16, rounded to nearest even), num_batches_tracked as I64.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <filesystem>

#include "engine/io/checkpoint.h"
#include "tools/program.h"
#include "train/saved_model.h"
#include "train/state_dict.h"

using namespace forge;
namespace fs = std::filesystem;

namespace {

constexpr const char* kExportKey = "forge_export";

int64_t count_from(const Metadata& metadata, const char* key, const std::string& path) {
  const auto it = metadata.find(key);
  try {
    if (it != metadata.end()) return std::stoll(it->second);
  } catch (const std::exception&) {
  }
  throw std::runtime_error(path + ": metadata '" + key + "' is missing or not a number");
}

void export_checkpoint(const std::string& input, const std::string& output,
                       const std::string& format_name, StoredDtype dtype) {
  const train::SavedModel saved = train::load_saved_model(input, Device::cpu);  // checks it all
  const CheckpointInfo info = read_checkpoint_info(input);
  const std::string family = saved.model->architecture().at("family").get<std::string>();
  // timm's VisionTransformer embeds with one patchify convolution: it has no conv stem.
  const bool timm_twin = family == "vit" && saved.model->spec().stem == "patch";
  const train::StateDictFormat format =
      format_name.empty()
          ? (timm_twin ? train::StateDictFormat::timm : train::StateDictFormat::forge)
          : train::parse_state_dict_format(format_name);
  if (format == train::StateDictFormat::timm && family == "vit" && !timm_twin)
    throw std::runtime_error(input + ": a ViT with the '" + saved.model->spec().stem +
                             "' stem has no timm twin (timm's VisionTransformer has a patch "
                             "embedding only); export it with --format forge");
  const NamedTensors tensors =
      train::export_state_dict(train::model_tensors(*saved.model), family, format, info.step);
  StoredDtypes dtypes;
  for (const auto& [name, tensor] : tensors)
    dtypes[name] = name.ends_with(".num_batches_tracked") ? StoredDtype::i64 : dtype;
  Metadata metadata = info.metadata;
  metadata["format"] = "pt";
  metadata[kExportKey] = train::state_dict_format_name(format);
  metadata["step"] = std::to_string(info.step);
  metadata["epoch"] = std::to_string(info.epoch);
  save_safetensors(output, tensors, metadata, dtypes);
  std::printf("export: %s (%s, epoch %lld) -> %s: %zu tensors, %s names, %s\n", input.c_str(),
              saved.model->spec().preset.c_str(), static_cast<long long>(info.epoch),
              output.c_str(), tensors.size(), train::state_dict_format_name(format),
              stored_dtype_name(dtype));
}

void import_export(const std::string& input, const std::string& output) {
  const SafetensorsFile file = load_safetensors(input);
  const auto exported = file.metadata.find(kExportKey);
  if (exported == file.metadata.end())
    throw std::runtime_error(input + ": no '" + kExportKey +
                             "' metadata: not written by export, so the model's class names, "
                             "input normalisation and preset are unknown");
  const train::StateDictFormat format = train::parse_state_dict_format(exported->second);
  Metadata metadata = file.metadata;
  const CheckpointInfo info{
      count_from(metadata, "step", input), count_from(metadata, "epoch", input), {}};
  for (const char* key : {"format", kExportKey, "step", "epoch"}) metadata.erase(key);
  // Written beside the output and checked as eval would load it (names, shapes, finite values,
  // the architecture) before it replaces anything.
  const std::string staging = output + ".import." + std::to_string(::getpid());
  try {
    save_checkpoint(staging, train::import_state_dict(file.tensors, format), nullptr,
                    {info.step, info.epoch, metadata});
    const train::SavedModel saved = train::load_saved_model(staging, Device::cpu);
    fs::rename(staging, output);
    std::printf("export: %s (%s names) -> checkpoint %s (%s, epoch %lld)\n", input.c_str(),
                exported->second.c_str(), output.c_str(), saved.model->spec().preset.c_str(),
                static_cast<long long>(info.epoch));
  } catch (const std::exception& e) {
    std::error_code ignored;
    fs::remove(staging, ignored);
    throw std::runtime_error("cannot import " + input + ": " + e.what());
  }
}

}  // namespace

// The program itself; program::run (tools/program.h) makes `app` and catches what escapes.
int export_main(CLI::App& app, int argc, char** argv) {
  std::string input, output, format, dtype_name = "f32";
  bool import = false, force = false;
  app.add_option("input", input,
                 "a checkpoint written by train (with --import: a file written "
                 "by export)")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("output", output, "the .safetensors to write")->required();
  app.add_option("--format", format,
                 "timm (the ViT with the patch stem only) or forge (every model); default: timm "
                 "for the ViT with the patch stem, forge otherwise")
      ->check(CLI::IsMember({"timm", "forge"}));
  app.add_option("--dtype", dtype_name, "element type of the float tensors")
      ->check(CLI::IsMember({"f32", "bf16", "f16"}))
      ->capture_default_str();
  app.add_flag("--import", import, "turn an exported file back into a checkpoint");
  app.add_flag("--force", force, "overwrite the output if it exists");
  app.parse(argc, argv);
  if (import && (!format.empty() || dtype_name != "f32"))
    throw CLI::ValidationError("--import", "takes no --format or --dtype: the file says both");
  if (fs::exists(output) && !force)
    throw std::runtime_error(output + " exists; pass --force to overwrite it");
  if (fs::weakly_canonical(input) == fs::weakly_canonical(output))
    throw std::runtime_error(output + " is the input itself");
  if (import)
    import_export(input, output);
  else
    export_checkpoint(input, output, format, *parse_stored_dtype(dtype_name));
  return program::ok;
}

int main(int argc, char** argv) {
  return program::run("export", "a checkpoint's weights under timm's or forge's names, and back",
                      [&](CLI::App& app) { return export_main(app, argc, argv); });
}
