// safetensors_interop.cpp: the C++ half of the Python interoperability test (run by CTest through
// read_safetensors.py, which holds the same expected values in numpy).
//   safetensors_interop write <path>   writes the reference tensors and metadata
//   safetensors_interop check <path>   reads a file written by Python's safetensors and exits 0
//                                      only if it holds exactly the reference tensors and metadata
// The reference holds F32 tensors and, stored as F16, BF16 and I64, "half", "brain" and "count"
// (values each type holds exactly, so writing and reading are both exact).
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "engine/io/safetensors.h"

using namespace forge;

namespace {

// Must match EXPECTED in read_safetensors.py.
NamedTensors reference_tensors() {
  const std::vector<uint32_t> special_bits = {0x00000000u, 0x80000000u, 0x7fc00001u,
                                              0xffc12345u, 0x7f800000u, 0xff800000u,
                                              0x00000001u, 0x807fffffu, 0x7f7fffffu};
  std::vector<float> special(special_bits.size());
  std::memcpy(special.data(), special_bits.data(), special_bits.size() * 4);
  std::vector<float> ramp(12);
  for (size_t i = 0; i < ramp.size(); ++i) ramp[i] = 0.25f * float(i) - 1.5f;
  return {{"special", Tensor::from_vector(special, {9})},
          {"scalar", Tensor::from_vector({3.5f}, {})},
          {"ramp", Tensor::from_vector(ramp, {2, 3, 1, 2})},
          {"empty", Tensor::zeros({0, 3})},
          {"half",
           Tensor::from_vector({1.f, -0.f, 65504.f, 0x1p-24f, -INFINITY, 0.333251953125f}, {2, 3})},
          {"brain", Tensor::from_vector({1.f, -5.f, 0x1p100f, 3.140625f}, {4})},
          {"count", Tensor::from_vector({0.f, -7.f, 16777216.f}, {3})}};
}

const StoredDtypes kReferenceDtypes = {
    {"half", StoredDtype::f16}, {"brain", StoredDtype::bf16}, {"count", StoredDtype::i64}};

const Metadata kReferenceMetadata = {{"preset", "vit_tiny"}, {"classes", R"(["anime","selfie"])"}};

// Compares a loaded file with the reference bit for bit; prints every difference.
bool matches_reference(const SafetensorsFile& file) {
  bool ok = true;
  const NamedTensors reference = reference_tensors();
  if (file.tensors.size() != reference.size()) {
    std::fprintf(stderr, "check: %zu tensors, expected %zu\n", file.tensors.size(),
                 reference.size());
    ok = false;
  }
  for (const auto& [name, expected] : reference) {
    const Tensor* t = file.find(name);
    if (!t || t->shape() != expected.shape()) {
      std::fprintf(stderr, "check: tensor %s missing or of shape %s, expected %s\n", name.c_str(),
                   t ? shape_str(t->shape()).c_str() : "-", shape_str(expected.shape()).c_str());
      ok = false;
      continue;
    }
    const std::vector<float> got = t->to_vector(), want = expected.to_vector();
    if (!got.empty() && std::memcmp(got.data(), want.data(), got.size() * 4) != 0) {
      std::fprintf(stderr, "check: tensor %s differs in its bits\n", name.c_str());
      ok = false;
    }
  }
  if (file.metadata != kReferenceMetadata) {
    std::fprintf(stderr, "check: metadata differs\n");
    ok = false;
  }
  for (const auto& [name, tensor] : reference) {
    const auto want = kReferenceDtypes.count(name) ? kReferenceDtypes.at(name) : StoredDtype::f32;
    const auto got = file.dtypes.find(name);
    if (got != file.dtypes.end() && got->second != want) {
      std::fprintf(stderr, "check: tensor %s stored as %s, expected %s\n", name.c_str(),
                   stored_dtype_name(got->second), stored_dtype_name(want));
      ok = false;
    }
  }
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc == 3 ? argv[1] : "";
  if (mode != "write" && mode != "check") {
    std::fprintf(stderr, "usage: %s write|check <path>\n", argv[0]);
    return 2;
  }
  try {
    if (mode == "write") {
      save_safetensors(argv[2], reference_tensors(), kReferenceMetadata, kReferenceDtypes);
      return 0;
    }
    return matches_reference(load_safetensors(argv[2])) ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
}
