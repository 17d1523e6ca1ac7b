// stored_dtype.h: the element types a safetensors file may hold for this engine's float32
// tensors, and the conversions between them and float.
//
//   F32   IEEE binary32, as is (exact both ways)
//   F16   IEEE binary16: 1 sign, 5 exponent (bias 15), 10 mantissa bits; subnormals down to 2^-24,
//         largest finite 65504
//   BF16  bfloat16: fp32's upper 16 bits (kernels/bf16.h)
//   I64   two's-complement int64 (PyTorch's BatchNorm num_batches_tracked, index tensors)
//
// Writing rounds to nearest, ties to even (F16: |x| >= 65520 becomes infinity, |x| <= 2^-25
// becomes a signed zero; every NaN becomes the quiet NaN 0x7e00 for F16 and 0x7fff for BF16).
// Reading F16 and BF16 is exact: every such value is a float. I64 holds integers only: writing
// refuses a value that is not a finite integer below 2^63 in magnitude, reading refuses one that
// float cannot hold exactly (|n| above 2^24 and not a multiple of the spacing there).
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace forge {

enum class StoredDtype { f32, f16, bf16, i64 };

// "F32", "F16", "BF16", "I64": the header's names.
const char* stored_dtype_name(StoredDtype dtype);
// The dtype called `name` (a header name as above, or lower case: "bf16"), or nullopt.
std::optional<StoredDtype> parse_stored_dtype(const std::string& name);
size_t stored_dtype_bytes(StoredDtype dtype);

uint16_t float_to_f16_bits(float x);
float f16_bits_to_float(uint16_t bits);

// Encodes `n` floats as `dtype` into `out` (n * stored_dtype_bytes(dtype) bytes, little-endian).
// Returns n, or the index of the first value I64 cannot hold (nothing after it is written).
size_t encode_floats(StoredDtype dtype, const float* values, size_t n, unsigned char* out);

// Decodes `n` elements of `dtype` from `bytes` into `out`. Returns n, or the index of the first
// I64 value float cannot hold exactly.
size_t decode_floats(StoredDtype dtype, const unsigned char* bytes, size_t n, float* out);

}  // namespace forge
