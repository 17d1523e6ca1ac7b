// reduce.cpp: sums and means, over everything or over chosen axes, and global average pooling.
// The backward of a sum broadcasts the gradient back over the summed axes; a mean also divides
// by the number of summed elements.
#include <algorithm>

#include "engine/ops.h"
#include "engine/ops/op_util.h"

namespace forge {
using namespace detail;

// Broadcasts g (shape keep, with 1s on reduced axes) to `shape` as a contiguous tensor.
static Tensor expand_to(const Tensor& g, const Shape& shape) {
  Tensor out = Tensor::empty(shape, g.device());
  Tensor ones = Tensor::ones({1}, g.device());
  backend_of(g).binary(BinaryOp::mul, base_of(g), broadcast_view(g, shape), ones.data(),
                       broadcast_view(ones, shape), out.data());
  return out;
}

Tensor sum(const Tensor& x, const std::vector<int>& axes, bool keepdim) {
  Shape kept = x.shape();
  for (int a : axes) kept[normalize_axis(a, x.ndim(), "sum")] = 1;
  Tensor out = Tensor::empty(kept, x.device());
  Tensor in = plain(x);
  backend_of(x).reduce_sum(in.data(), in.shape().data(), kept.data(), x.ndim(), out.data());
  out = record(out, "sum", {x}, [shape = x.shape()](const Tensor& g) {
    return std::vector<Tensor>{expand_to(g, shape)};
  });
  if (keepdim) return out;
  Shape squeezed;
  std::vector<bool> reduced(x.ndim(), false);
  for (int a : axes) reduced[normalize_axis(a, x.ndim(), "sum")] = true;
  for (int i = 0; i < x.ndim(); ++i)
    if (!reduced[i]) squeezed.push_back(x.shape()[i]);
  if (squeezed.empty()) squeezed.push_back(1);
  return reshape(out, squeezed);
}

Tensor mean(const Tensor& x, const std::vector<int>& axes, bool keepdim) {
  int64_t count = 1;
  std::vector<bool> reduced(x.ndim(), false);
  for (int a : axes) reduced[normalize_axis(a, x.ndim(), "mean")] = true;
  for (int i = 0; i < x.ndim(); ++i)
    if (reduced[i]) count *= x.shape()[i];
  return mul_scalar(sum(x, axes, keepdim), 1.f / static_cast<float>(count));
}

static std::vector<int> all_axes(const Tensor& x) {
  std::vector<int> axes(x.ndim());
  for (int i = 0; i < x.ndim(); ++i) axes[i] = i;
  return axes;
}

Tensor sum(const Tensor& x) {
  return reshape(sum(x, all_axes(x), false), {1});
}
Tensor mean(const Tensor& x) {
  return reshape(mean(x, all_axes(x), false), {1});
}

Tensor global_avg_pool(const Tensor& x) {
  check_ndim("global_avg_pool", "input", x, 4);
  return mean(x, {2, 3}, false);
}

}  // namespace forge
