// resume.cpp: recording a run's options in its checkpoint and checking a resume against them
// (see resume.h).
#include "train/resume.h"

#include <cstdio>
#include <fstream>
#include <iterator>

#include "train/options.h"

namespace forge::train {

std::string text_digest(const std::string& bytes) {
  uint64_t h = 14695981039346656037ull;  // FNV-1a offset basis and prime
  for (char c : bytes) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return std::string("fnv1a64:") + hex;
}

std::string file_digest(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + file.string());
  std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (in.bad()) throw std::runtime_error("cannot read " + file.string());
  return text_digest(bytes);
}

std::string recorded_options(const TrainOptions& options, const std::string& split_digest) {
  nlohmann::json j = options_json(options);
  j["split_digest"] = split_digest;
  return j.dump();
}

void check_resume(const Metadata& checkpoint_metadata, const TrainOptions& current,
                  const std::filesystem::path& run_split) {
  const std::string& checkpoint = current.resume;
  const auto found = checkpoint_metadata.find(run_options_key);
  if (found == checkpoint_metadata.end()) {
    std::fprintf(stderr,
                 "warning: %s records no run options (written before they were recorded): "
                 "cannot check that this resume continues the same run\n",
                 checkpoint.c_str());
    return;
  }
  nlohmann::json recorded;
  try {
    recorded = nlohmann::json::parse(found->second);
  } catch (const std::exception& e) {
    throw std::runtime_error(checkpoint + ": malformed run_options metadata (" + e.what() + ")");
  }
  if (!recorded.is_object())
    throw std::runtime_error(checkpoint + ": malformed run_options metadata (not an object)");

  const TrainOptions defaults;
  std::string changed;
  for (const OptionSpec& s : option_table()) {
    if (s.kind != OptionKind::run_defining) continue;
    const nlohmann::json::json_pointer key(s.key);
    // An option added after the checkpoint was written: the run had its default.
    const nlohmann::json was =
        recorded.contains(key) ? recorded.at(key) : option_value(s, defaults);
    const nlohmann::json now = option_value(s, current);
    if (was != now)
      changed += "\n  " + s.name() + ": the run has " + option_text(was) + ", this command " +
                 option_text(now);
  }
  if (!changed.empty()) {
    std::string may_change;  // --split may be given only as the same split, checked below
    for (const OptionSpec& s : option_table())
      if (s.kind == OptionKind::may_change && s.name() != "--resume" && s.name() != "--split")
        may_change += (may_change.empty() ? "" : ", ") + s.name();
    throw OptionError("--resume " + checkpoint +
                      ": options that define the run differ from the ones it was trained with:" +
                      changed + "\nresume with the run's values (only " + may_change +
                      " may change), or start a new run in another --output folder");
  }

  const std::string want = recorded.value("split_digest", "");
  if (!std::filesystem::exists(run_split))
    throw std::runtime_error("--resume " + checkpoint + ": the run folder has no " +
                             run_split.string() +
                             " (resume in the run's own folder: --output <the folder of the "
                             "checkpoint>)");
  const std::string have = file_digest(run_split);
  if (!want.empty() && have != want)
    throw std::runtime_error(run_split.string() + " has changed since " + checkpoint +
                             " was written (digest " + have + ", recorded " + want +
                             "): the run's split is gone; restore the file or start a new run");
  if (!current.split_file.empty() && !want.empty() && file_digest(current.split_file) != want)
    throw OptionError("--split " + current.split_file + " is not the split of the run in " +
                      checkpoint + " (digest " + file_digest(current.split_file) + ", recorded " +
                      want + ")");
}

}  // namespace forge::train
