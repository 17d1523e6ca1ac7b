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
// The engine is float32 throughout: tensors are stored as F32 unless the writer asks for F16,
// BF16 or I64 (engine/io/stored_dtype.h: rounding to nearest even), and read back as float
// (exactly; an I64 value float cannot hold is refused).
#pragma once
#include <map>
#include <string>

#include "engine/io/stored_dtype.h"
#include "engine/named_tensors.h"

namespace forge {

using Metadata = std::map<std::string, std::string>;
// How tensors are stored, by name; a tensor not named here is F32.
using StoredDtypes = std::map<std::string, StoredDtype>;

struct SafetensorsFile {
  NamedTensors tensors;  // CPU tensors, in the order of their data in the file
  Metadata metadata;     // the "__metadata__" object (empty when absent)
  StoredDtypes dtypes;   // every tensor's element type in the file

  // The tensor called `name`, or nullptr.
  const Tensor* find(const std::string& name) const;
};

// Writes `tensors` (any device, any layout: copied to host in logical order) and `metadata` to
// `path` through an AtomicFile (engine/io/atomic_file.h), so a crash or error never leaves a
// partial file under `path` (an existing file survives a failed save). Throws WriteError (a
// std::runtime_error) naming the file on an I/O error, and std::invalid_argument on an undefined
// tensor, a duplicate or empty name, a `dtypes` entry naming no tensor, or a value I64 cannot
// hold (not a finite integer), naming the tensor.
void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const Metadata& metadata = {}, const StoredDtypes& dtypes = {});

// Reads a file written by save_safetensors or any other safetensors writer (F32, F16, BF16 and
// I64 tensors, converted to float). Throws std::runtime_error naming the file and the problem for
// anything malformed: shorter than 8 bytes, header length beyond the file or beyond 100 MB
// (checked before allocating), invalid JSON, another dtype, bad shape, data offsets out of range,
// overlapping, not shape * element size bytes, leaving gaps, or trailing bytes; and for an I64
// value float cannot hold exactly.
SafetensorsFile load_safetensors(const std::string& path);

// Only the metadata, reading and checking just the header (e.g. to learn a checkpoint's model
// preset before building the model).
Metadata load_safetensors_metadata(const std::string& path);

}  // namespace forge
