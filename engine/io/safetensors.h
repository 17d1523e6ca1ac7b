// safetensors.h: reading and writing the safetensors file format (huggingface/safetensors), the
// format of this project's checkpoints, readable from Python with `safetensors.numpy.load_file`.
//
// Layout:
//   8 bytes       N, the header length, unsigned little-endian
//   N bytes       JSON: {"<name>": {"dtype": "F32", "shape": [...], "data_offsets": [b, e]},
//                        ..., "__metadata__": {"<key>": "<string>", ...}}
//                 padded with spaces so the data starts 8-byte aligned
//   the rest      raw little-endian tensor data; tensor bytes are [8 + N + b, 8 + N + e)
// The data regions must tile the rest of the file exactly: no gaps, no overlaps, nothing after.
// Only F32 is written or read (the engine is float32 throughout).
#pragma once
#include <map>
#include <string>

#include "engine/named_tensors.h"

namespace forge {

using Metadata = std::map<std::string, std::string>;

struct SafetensorsFile {
  NamedTensors tensors;  // CPU tensors, in the order of their data in the file
  Metadata metadata;     // the "__metadata__" object (empty when absent)

  // The tensor called `name`, or nullptr.
  const Tensor* find(const std::string& name) const;
};

// Writes `tensors` (any device, any layout: copied to host in logical order) and `metadata` to
// `path` through an AtomicFile (engine/io/atomic_file.h), so a crash or error never leaves a
// partial file under `path` (an existing file survives a failed save). Throws WriteError (a
// std::runtime_error) naming the file on an I/O error, and std::invalid_argument on an undefined
// tensor or a duplicate or empty name.
void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const Metadata& metadata = {});

// Reads a file written by save_safetensors or any other safetensors writer (F32 tensors only).
// Throws std::runtime_error naming the file and the problem for anything malformed: shorter than
// 8 bytes, header length beyond the file or beyond 100 MB (checked before allocating), invalid
// JSON, unknown dtype, bad shape, data offsets out of range, overlapping, not shape * 4 bytes,
// leaving gaps, or trailing bytes.
SafetensorsFile load_safetensors(const std::string& path);

// Only the metadata, reading and checking just the header (e.g. to learn a checkpoint's model
// preset before building the model).
Metadata load_safetensors_metadata(const std::string& path);

}  // namespace forge
