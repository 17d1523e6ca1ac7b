// op_util.h: small helpers shared by the differentiable ops (internal to engine/ops).
#pragma once
#include <initializer_list>
#include <stdexcept>
#include <string>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/tensor.h"

namespace forge::detail {

inline Backend& backend_of(const Tensor& t) {
  return backend(t.device());
}

// Throws unless every defined tensor lives on the device of the first.
inline void check_same_device(const char* op, std::initializer_list<Tensor> ts) {
  const Tensor* first = nullptr;
  for (const Tensor& t : ts) {
    if (!t.defined()) continue;
    if (!first)
      first = &t;
    else if (t.device() != first->device())
      throw std::invalid_argument(std::string(op) + ": inputs on different devices (" +
                                  device_name(first->device()) + " and " + device_name(t.device()) +
                                  ")");
  }
}

// Throws unless x has `ndim` dimensions, naming the op and the shape.
inline void check_ndim(const char* op, const char* what, const Tensor& x, int ndim) {
  if (x.ndim() != ndim)
    throw std::invalid_argument(std::string(op) + ": " + what + " must have " +
                                std::to_string(ndim) + " dimensions, got shape " +
                                shape_str(x.shape()));
}

// Throws unless x has exactly `shape`.
inline void check_shape(const char* op, const char* what, const Tensor& x, const Shape& shape) {
  if (x.shape() != shape)
    throw std::invalid_argument(std::string(op) + ": " + what + " has shape " +
                                shape_str(x.shape()) + ", expected " + shape_str(shape));
}

// The start of t's storage: strided views carry their own offset, so primitives that take a
// StridedView take this base pointer, not t.data().
inline float* base_of(const Tensor& t) {
  return static_cast<float*>(t.storage()->data);
}

// The strided description of a tensor's view, for gather/scatter/binary.
StridedView view_of(const Tensor& t);
// The view of `t` broadcast (stride 0) to `shape`, which has at least t's dimensions.
StridedView broadcast_view(const Tensor& t, const Shape& shape);
// Sums `g` down to `shape` (the backward of broadcasting to g's shape).
Tensor sum_to_shape(const Tensor& g, const Shape& shape);
// Contiguous input without autograd history (saved for backward or passed to a primitive).
inline Tensor plain(const Tensor& t) {
  return t.detach().contiguous();
}

}  // namespace forge::detail
