// strided.h: walking a strided view row by row on the CPU.
//
// A view of shape [d0, ..., dk] is visited as prod(d0..dk-1) "rows" of dk elements; for each row
// the callback gets the row's index and the offset of its first element, and walks the row with
// the innermost stride. Rows are independent, so callers parallelise over them: row_ranges gives
// each thread one contiguous range of rows, which StridedRows walks without a division per row.
#pragma once
#include <omp.h>

#include <cstdint>

#include "engine/backend.h"

namespace forge {

// Number of rows of a view: the product of all extents but the last.
inline int64_t strided_rows(const StridedView& v) {
  int64_t rows = 1;
  for (int i = 0; i + 1 < v.ndim; ++i) rows *= v.shape[i];
  return rows;
}

inline int64_t strided_cols(const StridedView& v) {
  return v.ndim ? v.shape[v.ndim - 1] : 1;
}
inline int64_t strided_inner(const StridedView& v) {
  return v.ndim ? v.strides[v.ndim - 1] : 0;
}

// The offsets (in elements, view offset included) of the first elements of rows row, row + 1,
// ... of a view: the row's index is split into one index per dimension once, then carried like
// an odometer (a division by every extent per row cost more than copying a row of 64 floats, the
// rows of a permuted attention projection).
class StridedRows {
 public:
  StridedRows(const StridedView& v, int64_t row) : v_(v), offset_(v.offset) {
    for (int i = v.ndim - 2; i >= 0; --i) {
      index_[i] = row % v.shape[i];
      offset_ += index_[i] * v.strides[i];
      row /= v.shape[i];
    }
  }
  int64_t offset() const { return offset_; }
  void next() {
    for (int i = v_.ndim - 2; i >= 0; --i) {
      offset_ += v_.strides[i];
      if (++index_[i] < v_.shape[i]) return;
      offset_ -= v_.shape[i] * v_.strides[i];
      index_[i] = 0;
    }
  }

 private:
  const StridedView& v_;
  int64_t offset_;
  int64_t index_[kMaxDims] = {};
};

// Calls f(begin, end) once per OpenMP thread with that thread's contiguous share of rows [0, rows)
// (once, with all of them, when parallel is false).
template <typename F>
void row_ranges(int64_t rows, bool parallel, F f) {
#pragma omp parallel if (parallel)
  {
    const int64_t threads = omp_get_num_threads(), thread = omp_get_thread_num();
    f(rows * thread / threads, rows * (thread + 1) / threads);
  }
}

}  // namespace forge
