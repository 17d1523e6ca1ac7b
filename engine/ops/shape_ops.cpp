// shape_ops.cpp: views and copies. reshape, permute, transpose and slice return views sharing
// storage; contiguous and concat copy. Each backward maps the gradient back to the input's shape.
#include <algorithm>
#include <numeric>

#include "engine/ops.h"
#include "engine/ops/op_util.h"

namespace forge {
namespace detail {

StridedView view_of(const Tensor& t) {
  if (t.ndim() > kMaxDims)
    throw std::invalid_argument("tensors of more than 8 dimensions are not supported: " +
                                shape_str(t.shape()));
  StridedView v;
  v.ndim = t.ndim();
  for (int i = 0; i < v.ndim; ++i) {
    v.shape[i] = t.shape()[i];
    v.strides[i] = t.strides()[i];
  }
  v.offset = t.offset();
  return v;
}

StridedView broadcast_view(const Tensor& t, const Shape& shape) {
  StridedView v;
  v.ndim = static_cast<int>(shape.size());
  const int lead = v.ndim - t.ndim();
  for (int i = 0; i < v.ndim; ++i) {
    v.shape[i] = shape[i];
    const bool own = i >= lead && t.shape()[i - lead] == shape[i];
    v.strides[i] = own ? t.strides()[i - lead] : 0;
  }
  v.offset = t.offset();
  return v;
}

Tensor sum_to_shape(const Tensor& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  // Pad the target with leading 1s to g's rank, reduce, then drop them again.
  Shape padded(g.ndim() - shape.size(), 1);
  padded.insert(padded.end(), shape.begin(), shape.end());
  Tensor out = Tensor::empty(shape, g.device());
  Tensor gc = plain(g);
  backend_of(g).reduce_sum(gc.data(), gc.shape().data(), padded.data(), g.ndim(), out.data());
  return out;
}

}  // namespace detail

using namespace detail;

// A view of x's storage with the given layout, recording `backward`.
static Tensor make_view(const Tensor& x, Shape shape, Shape strides, int64_t offset,
                        const char* name, BackwardFn backward) {
  Tensor v = x.detach();
  v.impl().shape = std::move(shape);
  v.impl().strides = std::move(strides);
  v.impl().offset = offset;
  return record(v, name, {x}, std::move(backward));
}

Tensor reshape(const Tensor& x, const Shape& shape) {
  Shape s = shape;
  int infer = -1;
  int64_t known = 1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      if (infer >= 0)
        throw std::invalid_argument("reshape: more than one -1 in " + shape_str(shape));
      infer = static_cast<int>(i);
    } else {
      known *= s[i];
    }
  }
  if (infer >= 0 && known > 0 && x.numel() % known == 0) s[infer] = x.numel() / known;
  if (shape_numel(s) != x.numel())
    throw std::invalid_argument("reshape: cannot view shape " + shape_str(x.shape()) + " as " +
                                shape_str(shape));
  Tensor src = x.is_contiguous() ? x : contiguous(x);
  const Shape in_shape = x.shape();
  return make_view(
      src, s, contiguous_strides(s), src.offset(), "reshape",
      [in_shape](const Tensor& g) { return std::vector<Tensor>{reshape(g, in_shape)}; });
}

Tensor permute(const Tensor& x, const std::vector<int>& order) {
  const int n = x.ndim();
  std::vector<int> seen(n, 0);
  bool ok = static_cast<int>(order.size()) == n;
  for (int a : order) ok = ok && a >= 0 && a < n && !seen[a]++;
  if (!ok)
    throw std::invalid_argument("permute: order is not a permutation of the " + std::to_string(n) +
                                " axes of shape " + shape_str(x.shape()));
  Shape shape(n), strides(n);
  std::vector<int> inverse(n);
  for (int i = 0; i < n; ++i) {
    shape[i] = x.shape()[order[i]];
    strides[i] = x.strides()[order[i]];
    inverse[order[i]] = i;
  }
  return make_view(x, shape, strides, x.offset(), "permute", [inverse](const Tensor& g) {
    return std::vector<Tensor>{contiguous(permute(g, inverse))};
  });
}

Tensor transpose(const Tensor& x, int a, int b) {
  std::vector<int> order(x.ndim());
  std::iota(order.begin(), order.end(), 0);
  std::swap(order[normalize_axis(a, x.ndim(), "transpose")],
            order[normalize_axis(b, x.ndim(), "transpose")]);
  return permute(x, order);
}

Tensor slice(const Tensor& x, int axis, int64_t start, int64_t end) {
  const int ax = normalize_axis(axis, x.ndim(), "slice");
  if (start < 0 || end > x.shape()[ax] || start > end)
    throw std::invalid_argument("slice: range [" + std::to_string(start) + ", " +
                                std::to_string(end) + ") is outside axis " + std::to_string(ax) +
                                " of shape " + shape_str(x.shape()));
  Shape shape = x.shape();
  shape[ax] = end - start;
  const Shape in_shape = x.shape();
  return make_view(x, shape, x.strides(), x.offset() + start * x.strides()[ax], "slice",
                   [in_shape, ax, start](const Tensor& g) {
                     Tensor full = Tensor::zeros(in_shape, g.device());
                     Tensor window = full.detach().slice(ax, start, start + g.size(ax));
                     backend_of(g).scatter(g.data(), full.data(), view_of(window), false);
                     return std::vector<Tensor>{full};
                   });
}

Tensor contiguous(const Tensor& x) {
  if (x.is_contiguous()) return x;
  Tensor out = Tensor::empty(x.shape(), x.device());
  backend_of(x).gather(base_of(x), view_of(x), out.data());
  return record(out, "contiguous", {x}, [](const Tensor& g) { return std::vector<Tensor>{g}; });
}

Tensor concat(const std::vector<Tensor>& xs, int axis) {
  if (xs.empty()) throw std::invalid_argument("concat: no tensors");
  const int ax = normalize_axis(axis, xs[0].ndim(), "concat");
  Shape shape = xs[0].shape();
  shape[ax] = 0;
  for (const Tensor& x : xs) {
    Shape expect = xs[0].shape();
    expect[ax] = x.shape()[ax];
    if (x.shape() != expect || x.device() != xs[0].device())
      throw std::invalid_argument("concat: shape " + shape_str(x.shape()) + " (" +
                                  device_name(x.device()) + ") does not match " +
                                  shape_str(xs[0].shape()) + " (" + device_name(xs[0].device()) +
                                  ") outside axis " + std::to_string(ax));
    shape[ax] += x.shape()[ax];
  }
  Tensor out = Tensor::empty(shape, xs[0].device());
  std::vector<int64_t> starts;
  int64_t at = 0;
  for (const Tensor& x : xs) {
    Tensor window = out.slice(ax, at, at + x.shape()[ax]);
    Tensor src = plain(x);
    backend_of(x).scatter(src.data(), out.data(), view_of(window), false);
    starts.push_back(at);
    at += x.shape()[ax];
  }
  return record(out, "concat", xs, [starts, ax](const Tensor& g) {
    std::vector<Tensor> grads;
    for (size_t i = 0; i < starts.size(); ++i) {
      const int64_t len = (i + 1 < starts.size() ? starts[i + 1] : g.size(ax)) - starts[i];
      grads.push_back(g.detach().slice(ax, starts[i], starts[i] + len).contiguous());
    }
    return grads;
  });
}

}  // namespace forge
