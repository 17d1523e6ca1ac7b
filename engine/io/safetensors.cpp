// safetensors.cpp: the safetensors writer (through AtomicFile: temporary, fsync, rename) and a
// reader that checks every header field against the file before trusting it (format in
// safetensors.h).
//
// The reader treats the file as untrusted input: the header length is bounded before anything
// is allocated, every offset is checked against the real file size, and the data regions must
// tile the data section exactly, so a truncated, padded or hand-edited file is refused with a
// message instead of being read out of bounds.
#include "engine/io/safetensors.h"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>

#include "engine/io/atomic_file.h"

namespace forge {

namespace {

constexpr uint64_t kMaxHeaderBytes = 100ull << 20;  // 100 MB: far above any real header
constexpr const char* kMetadataKey = "__metadata__";

[[noreturn]] void fail(const std::string& path, const std::string& problem) {
  throw std::runtime_error("safetensors: " + path + ": " + problem);
}

// ---- writing -----------------------------------------------------------------------------------

StoredDtype stored_dtype(const StoredDtypes& dtypes, const std::string& name) {
  const auto it = dtypes.find(name);
  return it == dtypes.end() ? StoredDtype::f32 : it->second;
}

// The header text: tensors in the caller's order, data back to back, padded to 8 bytes.
std::string header_text(const std::string& path, const NamedTensors& tensors,
                        const Metadata& metadata, const StoredDtypes& dtypes) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  std::set<std::string> names;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    if (name.empty() || name == kMetadataKey || !names.insert(name).second)
      throw std::invalid_argument("safetensors: " + path + ": tensor name '" + name +
                                  "' is empty, reserved or repeated");
    if (!tensor.defined())
      throw std::invalid_argument("safetensors: " + path + ": tensor '" + name + "' is undefined");
    const StoredDtype dtype = stored_dtype(dtypes, name);
    const uint64_t bytes = static_cast<uint64_t>(tensor.numel()) * stored_dtype_bytes(dtype);
    header[name] = {{"dtype", stored_dtype_name(dtype)},
                    {"shape", tensor.shape()},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  for (const auto& [name, dtype] : dtypes)
    if (!names.count(name))
      throw std::invalid_argument("safetensors: " + path + ": a dtype is given for '" + name +
                                  "', which is not among the tensors");
  if (!metadata.empty()) header[kMetadataKey] = metadata;
  std::string text;
  try {
    text = header.dump();  // throws on names or values that are not valid UTF-8
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument("safetensors: " + path + ": cannot encode header: " + e.what());
  }
  text.append((8 - text.size() % 8) % 8, ' ');
  return text;
}

// ---- reading -----------------------------------------------------------------------------------

struct Entry {
  std::string name;
  StoredDtype dtype;
  Shape shape;
  uint64_t begin, end;  // relative to the start of the data section
};

struct Header {
  std::vector<Entry> entries;  // sorted by data offset
  Metadata metadata;
  uint64_t data_start;  // 8 + header length
};

// A non-negative integer that fits int64, or the problem with it.
uint64_t json_count(const std::string& path, const nlohmann::json& v, const std::string& what) {
  if (!v.is_number_unsigned() ||
      v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
    fail(path, what + " is " + v.dump() + ", not a non-negative integer");
  return v.get<uint64_t>();
}

Entry parse_entry(const std::string& path, const std::string& name, const nlohmann::json& info,
                  uint64_t data_bytes) {
  const std::string where = "tensor '" + name + "'";
  if (!info.is_object()) fail(path, where + " is described by " + info.dump() + ", not an object");
  if (!info.contains("dtype") || !info.contains("shape") || !info.contains("data_offsets"))
    fail(path, where + " lacks one of dtype, shape, data_offsets");
  const nlohmann::json& dtype = info["dtype"];
  if (!dtype.is_string()) fail(path, where + " has dtype " + dtype.dump() + ", not a string");
  const std::optional<StoredDtype> stored = parse_stored_dtype(dtype.get<std::string>());
  if (!stored || dtype.get<std::string>() != stored_dtype_name(*stored))
    fail(path, where + " has dtype " + dtype.get<std::string>() +
                   "; only F32, F16, BF16 and I64 are supported");
  const uint64_t element_bytes = stored_dtype_bytes(*stored);

  Entry e{name, *stored, {}, 0, 0};
  const nlohmann::json& shape = info["shape"];
  if (!shape.is_array()) fail(path, where + " has shape " + shape.dump() + ", not an array");
  uint64_t numel = 1;
  bool overflow = false;
  for (const nlohmann::json& extent : shape) {
    const uint64_t n = json_count(path, extent, where + " shape extent");
    overflow |= __builtin_mul_overflow(numel, n, &numel);
    e.shape.push_back(static_cast<int64_t>(n));
  }
  if (overflow || numel > data_bytes / element_bytes)
    fail(path, where + " of shape " + shape.dump() + " has more elements than the file has bytes");

  const nlohmann::json& offsets = info["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2)
    fail(path, where + " has data_offsets " + offsets.dump() + ", not [begin, end]");
  e.begin = json_count(path, offsets[0], where + " data_offsets begin");
  e.end = json_count(path, offsets[1], where + " data_offsets end");
  if (e.begin > e.end || e.end > data_bytes)
    fail(path, where + " has data_offsets " + offsets.dump() + ", not begin <= end <= " +
                   std::to_string(data_bytes) + " (the size of the data section; truncated?)");
  if (e.end - e.begin != numel * element_bytes)
    fail(path, where + " has data_offsets " + offsets.dump() + " spanning " +
                   std::to_string(e.end - e.begin) + " bytes, but shape " + shape.dump() + " of " +
                   stored_dtype_name(*stored) + " needs " + std::to_string(numel * element_bytes));
  return e;
}

Header read_header(const std::string& path, std::ifstream& in) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) fail(path, "not a regular file");
  const uint64_t file_bytes = std::filesystem::file_size(path, ec);
  if (ec) fail(path, "cannot get the size: " + ec.message());
  in.open(path, std::ios::binary);
  if (!in) fail(path, std::string("cannot open: ") + std::strerror(errno));
  if (file_bytes < 8)
    fail(path,
         "file is " + std::to_string(file_bytes) + " bytes, shorter than the 8-byte header length");

  unsigned char length_bytes[8];
  in.read(reinterpret_cast<char*>(length_bytes), 8);
  uint64_t header_bytes = 0;
  for (int i = 7; i >= 0; --i) header_bytes = header_bytes << 8 | length_bytes[i];
  if (header_bytes > kMaxHeaderBytes)
    fail(path, "header length " + std::to_string(header_bytes) + " exceeds the " +
                   std::to_string(kMaxHeaderBytes) + "-byte limit");
  if (header_bytes > file_bytes - 8)
    fail(path, "header length " + std::to_string(header_bytes) + " runs past the end of the " +
                   std::to_string(file_bytes) + "-byte file (truncated?)");
  std::string text(header_bytes, '\0');
  if (!in.read(text.data(), static_cast<std::streamsize>(header_bytes)))
    fail(path, "cannot read the header");

  nlohmann::json json;
  try {
    json = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    fail(path, std::string("header is not valid JSON: ") + e.what());
  }
  if (!json.is_object()) fail(path, "header is not a JSON object");

  Header h{{}, {}, 8 + header_bytes};
  const uint64_t data_bytes = file_bytes - h.data_start;
  for (const auto& [key, value] : json.items()) {
    if (key != kMetadataKey) {
      h.entries.push_back(parse_entry(path, key, value, data_bytes));
      continue;
    }
    if (!value.is_object()) fail(path, "__metadata__ is not an object");
    for (const auto& [mkey, mvalue] : value.items()) {
      if (!mvalue.is_string())
        fail(path, "__metadata__ value of '" + mkey + "' is " + mvalue.dump() + ", not a string");
      h.metadata[mkey] = mvalue.get<std::string>();
    }
  }

  // The regions, in file order, must follow each other with no gap or overlap and end exactly at
  // the end of the file.
  std::sort(h.entries.begin(), h.entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t covered = 0;
  const Entry* previous = nullptr;
  for (const Entry& e : h.entries) {
    if (e.begin < covered)
      fail(path, "data of tensor '" + e.name + "' overlaps tensor '" + previous->name + "'");
    if (e.begin > covered)
      fail(path, "bytes " + std::to_string(covered) + ".." + std::to_string(e.begin) +
                     " of the data section belong to no tensor");
    covered = e.end;
    previous = &e;
  }
  if (covered != data_bytes)
    fail(path, std::to_string(data_bytes - covered) + " trailing bytes after the last tensor");
  return h;
}

}  // namespace

const Tensor* SafetensorsFile::find(const std::string& name) const {
  for (const auto& [n, t] : tensors)
    if (n == name) return &t;
  return nullptr;
}

void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const Metadata& metadata, const StoredDtypes& dtypes) {
  const std::string header = header_text(path, tensors, metadata, dtypes);
  const uint64_t header_bytes = header.size();
  unsigned char length_bytes[8];
  for (int i = 0; i < 8; ++i) length_bytes[i] = static_cast<unsigned char>(header_bytes >> (8 * i));

  AtomicFile file(path);
  file.write(length_bytes, 8);
  file.write(header.data(), header.size());
  for (const auto& [name, tensor] : tensors) {
    const std::vector<float> values = tensor.to_vector();  // host copy, row-major
    const StoredDtype dtype = stored_dtype(dtypes, name);
    std::vector<unsigned char> bytes(values.size() * stored_dtype_bytes(dtype));
    const size_t encoded = encode_floats(dtype, values.data(), values.size(), bytes.data());
    if (encoded != values.size())
      throw std::invalid_argument("safetensors: " + path + ": tensor '" + name + "' element " +
                                  std::to_string(encoded) + " (" + std::to_string(values[encoded]) +
                                  ") is not an integer " + stored_dtype_name(dtype) + " can hold");
    file.write(bytes.data(), bytes.size());
  }
  file.commit();
}

SafetensorsFile load_safetensors(const std::string& path) {
  std::ifstream in;
  Header h = read_header(path, in);
  SafetensorsFile result{{}, std::move(h.metadata), {}};
  // Entries are contiguous and sorted, so the data section is read front to back once.
  std::vector<unsigned char> bytes;
  for (const Entry& e : h.entries) {
    Tensor t = Tensor::empty(e.shape, Device::cpu);
    const auto size = static_cast<std::streamsize>(e.end - e.begin);
    float* values = t.data();
    if (e.dtype == StoredDtype::f32) {  // straight into the tensor
      if (size > 0 && !in.read(reinterpret_cast<char*>(values), size))
        fail(path, "cannot read the data of tensor '" + e.name + "' (file changed while reading?)");
    } else {
      bytes.resize(static_cast<size_t>(size));
      if (size > 0 && !in.read(reinterpret_cast<char*>(bytes.data()), size))
        fail(path, "cannot read the data of tensor '" + e.name + "' (file changed while reading?)");
      const size_t n = static_cast<size_t>(t.numel());
      const size_t decoded = decode_floats(e.dtype, bytes.data(), n, values);
      if (decoded != n) {
        int64_t v;
        std::memcpy(&v, bytes.data() + 8 * decoded, 8);
        fail(path, "tensor '" + e.name + "' element " + std::to_string(decoded) + " is the " +
                       stored_dtype_name(e.dtype) + " " + std::to_string(v) +
                       ", which float32 cannot hold exactly");
      }
    }
    result.dtypes[e.name] = e.dtype;
    result.tensors.emplace_back(e.name, std::move(t));
  }
  return result;
}

Metadata load_safetensors_metadata(const std::string& path) {
  std::ifstream in;
  return read_header(path, in).metadata;
}

}  // namespace forge
