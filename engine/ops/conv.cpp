// conv.cpp: conv2d and max_pool2d, NCHW. Both are one node over the backend's fused primitives
// (engine/backend.h: Conv2dDesc, Pool2dDesc), which hold the math of forward and backward:
//   conv2d:      gx = backward-data convolution of gy with the weight,
//                gw = backward-weights convolution of x with gy, gbias = sum of gy over n, h, w
//   max_pool2d:  gx = gy routed to the argmax of each window (saved by the forward, int32)
#include <string>

#include "engine/ops.h"
#include "engine/ops/op_util.h"

namespace forge {
using namespace detail;

// Output extent of a sliding window along one axis.
static int window_count(int64_t in, int kernel, int stride, int pad) {
  return int((in + 2 * pad - kernel) / stride + 1);
}

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, int stride, int pad) {
  check_same_device("conv2d", {x, weight, bias});
  check_ndim("conv2d", "input", x, 4);
  check_ndim("conv2d", "weight", weight, 4);
  if (stride < 1 || pad < 0)
    throw std::invalid_argument("conv2d: needs stride >= 1 and pad >= 0, got stride " +
                                std::to_string(stride) + ", pad " + std::to_string(pad));
  if (x.numel() == 0 || weight.numel() == 0)
    throw std::invalid_argument("conv2d: empty input " + shape_str(x.shape()) + " or weight " +
                                shape_str(weight.shape()));
  if (x.size(1) != weight.size(1))
    throw std::invalid_argument("conv2d: input " + shape_str(x.shape()) + " has " +
                                std::to_string(x.size(1)) + " channels but weight " +
                                shape_str(weight.shape()) + " expects " +
                                std::to_string(weight.size(1)));
  if (x.size(2) + 2 * pad < weight.size(2) || x.size(3) + 2 * pad < weight.size(3))
    throw std::invalid_argument("conv2d: kernel " + shape_str(weight.shape()) +
                                " is larger than the input " + shape_str(x.shape()) +
                                " padded by " + std::to_string(pad));
  if (bias.defined()) check_shape("conv2d", "bias", bias, {weight.size(0)});

  Conv2dDesc d{};
  d.n = int(x.size(0)), d.c = int(x.size(1)), d.h = int(x.size(2)), d.w = int(x.size(3));
  d.k = int(weight.size(0)), d.r = int(weight.size(2)), d.s = int(weight.size(3));
  d.stride = stride, d.pad = pad;
  d.oh = window_count(d.h, d.r, stride, pad), d.ow = window_count(d.w, d.s, stride, pad);

  Tensor xin = plain(x), win = plain(weight), bin = bias.defined() ? plain(bias) : Tensor();
  Tensor y = Tensor::empty({d.n, d.k, d.oh, d.ow}, x.device());
  backend_of(x).conv2d_forward(d, xin.data(), win.data(), bin.defined() ? bin.data() : nullptr,
                               y.data());

  // The input image of a network needs no gradient: skip its backward-data convolution.
  const bool need_gx = x.requires_grad();
  const bool need_gw = weight.requires_grad() || (bias.defined() && bias.requires_grad());
  return record(y, "conv2d", {x, weight, bias},
                [d, xin, win, need_gx, need_gw, has_bias = bias.defined()](const Tensor& g) {
                  Backend& be = backend_of(g);
                  Tensor gx, gw, gb;
                  if (need_gx) {
                    gx = Tensor::empty(xin.shape(), g.device());
                    be.conv2d_backward_data(d, g.data(), win.data(), gx.data());
                  }
                  if (need_gw) {
                    gw = Tensor::empty(win.shape(), g.device());
                    if (has_bias) gb = Tensor::empty({d.k}, g.device());
                    be.conv2d_backward_weight(d, xin.data(), g.data(), gw.data(),
                                              has_bias ? gb.data() : nullptr);
                  }
                  return std::vector<Tensor>{gx, gw, gb};
                });
}

Tensor max_pool2d(const Tensor& x, int kernel, int stride, int pad) {
  check_ndim("max_pool2d", "input", x, 4);
  // pad <= kernel / 2 (PyTorch's rule) keeps at least one real pixel in every window.
  if (kernel < 1 || stride < 1 || pad < 0 || pad > kernel / 2)
    throw std::invalid_argument(
        "max_pool2d: needs kernel >= 1, stride >= 1 and 0 <= pad <= kernel / 2, got kernel " +
        std::to_string(kernel) + ", stride " + std::to_string(stride) + ", pad " +
        std::to_string(pad));
  if (x.size(2) + 2 * pad < kernel || x.size(3) + 2 * pad < kernel)
    throw std::invalid_argument("max_pool2d: kernel " + std::to_string(kernel) +
                                " is larger than the input " + shape_str(x.shape()) +
                                " padded by " + std::to_string(pad));
  Pool2dDesc d{};
  d.n = int(x.size(0)), d.c = int(x.size(1)), d.h = int(x.size(2)), d.w = int(x.size(3));
  d.kernel = kernel, d.stride = stride, d.pad = pad;
  d.oh = window_count(d.h, kernel, stride, pad), d.ow = window_count(d.w, kernel, stride, pad);

  Tensor xin = plain(x);
  Tensor y = Tensor::empty({d.n, d.c, d.oh, d.ow}, x.device());
  // The argmax indices are int32 device memory, not a (float) Tensor: a bare Storage.
  auto argmax = std::make_shared<Storage>(x.device(), size_t(y.numel()) * sizeof(int32_t));
  if (y.numel())
    backend_of(x).maxpool2d_forward(d, xin.data(), y.data(), static_cast<int32_t*>(argmax->data));
  return record(y, "max_pool2d", {x}, [d, argmax](const Tensor& g) {
    Tensor gx = Tensor::empty({d.n, d.c, d.h, d.w}, g.device());
    if (gx.numel())
      backend_of(g).maxpool2d_backward(d, g.data(), static_cast<const int32_t*>(argmax->data),
                                       gx.data());
    return std::vector<Tensor>{gx};
  });
}

}  // namespace forge
