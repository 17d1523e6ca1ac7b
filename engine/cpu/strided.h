// strided.h: walking a strided view row by row on the CPU.
//
// A view of shape [d0, ..., dk] is visited as prod(d0..dk-1) "rows" of dk elements; for each row
// the callback gets the row's index and the offset of its first element, and walks the row with
// the innermost stride. Rows are independent, so callers parallelise over them.
#pragma once
#include <cstdint>

#include "engine/backend.h"

namespace forge {

// Number of rows of a view: the product of all extents but the last.
inline int64_t strided_rows(const StridedView& v) {
  int64_t rows = 1;
  for (int i = 0; i + 1 < v.ndim; ++i) rows *= v.shape[i];
  return rows;
}

// Offset (in elements, view offset included) of the first element of row `row`.
inline int64_t strided_row_offset(const StridedView& v, int64_t row) {
  int64_t off = v.offset;
  for (int i = v.ndim - 2; i >= 0; --i) {
    off += (row % v.shape[i]) * v.strides[i];
    row /= v.shape[i];
  }
  return off;
}

inline int64_t strided_cols(const StridedView& v) {
  return v.ndim ? v.shape[v.ndim - 1] : 1;
}
inline int64_t strided_inner(const StridedView& v) {
  return v.ndim ? v.strides[v.ndim - 1] : 0;
}

}  // namespace forge
