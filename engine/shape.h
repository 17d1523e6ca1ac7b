// shape.h: the Shape type (a list of extents) and the small helpers every layer uses on it.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace forge {

using Shape = std::vector<int64_t>;

int64_t shape_numel(const Shape& shape);
// Row-major strides of a contiguous tensor of this shape, in elements.
Shape contiguous_strides(const Shape& shape);
// "[2, 3, 4]": for error messages.
std::string shape_str(const Shape& shape);
// Maps a possibly negative axis (-1 = last) into [0, ndim); throws naming the op if out of range.
int normalize_axis(int axis, int ndim, const char* op);
// The broadcast of two shapes (numpy rules); throws naming both shapes and the op.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

}  // namespace forge
