// elementwise.cpp: broadcast binary ops, scalar ops, unary activations and dropout.
//   add: ga = sum_to(g), gb = sum_to(g)            mul: ga = sum_to(g b), gb = sum_to(g a)
//   sub: ga = sum_to(g), gb = -sum_to(g)           div: ga = sum_to(g / b), gb = -sum_to(g a / b^2)
//   exp: gx = g y      log: gx = g / x     relu: gx = g [x > 0]     gelu: gx = g (Phi + x phi)
#include "engine/ops.h"
#include "engine/ops/op_util.h"

namespace forge {
using namespace detail;

static Tensor binary_forward(BinaryOp op, const char* name, const Tensor& a, const Tensor& b) {
  check_same_device(name, {a, b});
  const Shape shape = broadcast_shapes(a.shape(), b.shape(), name);
  Tensor out = Tensor::empty(shape, a.device());
  if (out.numel())
    backend_of(a).binary(op, base_of(a), broadcast_view(a, shape), base_of(b),
                         broadcast_view(b, shape), out.data());
  return out;
}

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(BinaryOp::add, "add", a, b);
  return record(out, "add", {a, b}, [sa = a.shape(), sb = b.shape()](const Tensor& g) {
    return std::vector<Tensor>{sum_to_shape(g, sa), sum_to_shape(g, sb)};
  });
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(BinaryOp::sub, "sub", a, b);
  return record(out, "sub", {a, b}, [sa = a.shape(), sb = b.shape()](const Tensor& g) {
    return std::vector<Tensor>{sum_to_shape(g, sa), sum_to_shape(neg(g), sb)};
  });
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(BinaryOp::mul, "mul", a, b);
  return record(out, "mul", {a, b}, [a = a.detach(), b = b.detach()](const Tensor& g) {
    return std::vector<Tensor>{sum_to_shape(mul(g, b), a.shape()),
                               sum_to_shape(mul(g, a), b.shape())};
  });
}

Tensor div(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(BinaryOp::div, "div", a, b);
  return record(out, "div", {a, b}, [a = a.detach(), b = b.detach()](const Tensor& g) {
    Tensor ga = div(g, b);
    Tensor gb = neg(div(mul(ga, a), b));
    return std::vector<Tensor>{sum_to_shape(ga, a.shape()), sum_to_shape(gb, b.shape())};
  });
}

// y = f(x) elementwise through the unary primitive.
static Tensor unary_forward(UnaryOp op, const Tensor& x, float alpha = 0.f) {
  Tensor in = plain(x);
  Tensor out = Tensor::empty(x.shape(), x.device());
  if (out.numel()) backend_of(x).unary(op, in.data(), out.data(), x.numel(), alpha);
  return out;
}

Tensor add_scalar(const Tensor& x, float value) {
  return record(unary_forward(UnaryOp::add_scalar, x, value), "add_scalar", {x},
                [](const Tensor& g) { return std::vector<Tensor>{g}; });
}

Tensor mul_scalar(const Tensor& x, float value) {
  return record(unary_forward(UnaryOp::scale, x, value), "mul_scalar", {x},
                [value](const Tensor& g) { return std::vector<Tensor>{mul_scalar(g, value)}; });
}

Tensor neg(const Tensor& x) {
  return record(unary_forward(UnaryOp::neg, x), "neg", {x},
                [](const Tensor& g) { return std::vector<Tensor>{neg(g)}; });
}

Tensor exp(const Tensor& x) {
  Tensor y = unary_forward(UnaryOp::exp, x);
  return record(y, "exp", {x},
                [y = y.detach()](const Tensor& g) { return std::vector<Tensor>{mul(g, y)}; });
}

Tensor log(const Tensor& x) {
  return record(unary_forward(UnaryOp::log, x), "log", {x},
                [x = x.detach()](const Tensor& g) { return std::vector<Tensor>{div(g, x)}; });
}

// relu and gelu share a backward primitive: gx = gy * f'(x).
static Tensor activation(UnaryOp op, const char* name, const Tensor& x) {
  Tensor in = plain(x);
  Tensor y = unary_forward(op, in);
  return record(y, name, {x}, [op, in](const Tensor& g) {
    Tensor gx = Tensor::empty(in.shape(), in.device());
    if (gx.numel()) backend_of(in).unary_backward(op, in.data(), g.data(), gx.data(), in.numel());
    return std::vector<Tensor>{gx};
  });
}

// GELU (with dropout when p > 0) on a backend that keeps the slope for backward
// (Backend::gelu_keeps_slope): the node holds gelu'(x) instead of x, and backward is a product.
// Only while a gradient will be asked for: otherwise the slope would be written for nothing.
static bool keeps_gelu_slope(const Tensor& x) {
  return grad_enabled() && x.requires_grad() && backend_of(x).gelu_keeps_slope();
}
static Tensor gelu_keeping_slope(const char* name, const Tensor& x, float p, uint64_t seed) {
  Tensor in = plain(x);
  Tensor y = Tensor::empty(x.shape(), x.device()), slope = Tensor::empty(x.shape(), x.device());
  if (x.numel())
    backend_of(x).gelu_slope_forward(in.data(), y.data(), slope.data(), x.numel(), p, seed);
  return record(y, name, {x}, [slope, p, seed](const Tensor& g) {
    Tensor gx = Tensor::empty(g.shape(), g.device());
    if (gx.numel())
      backend_of(g).gelu_slope_backward(slope.data(), g.data(), gx.data(), g.numel(), p, seed);
    return std::vector<Tensor>{gx};
  });
}

Tensor relu(const Tensor& x) {
  return activation(UnaryOp::relu, "relu", x);
}
Tensor gelu(const Tensor& x) {
  if (keeps_gelu_slope(x)) return gelu_keeping_slope("gelu", x, 0.f, 0);
  return activation(UnaryOp::gelu, "gelu", x);
}

Tensor dropout(const Tensor& x, float p, bool training, uint64_t seed) {
  if (p < 0.f || p >= 1.f)
    throw std::invalid_argument("dropout: probability " + std::to_string(p) + " is outside [0, 1)");
  if (!training || p == 0.f) return x;
  Tensor in = plain(x);
  Tensor y = Tensor::empty(x.shape(), x.device());
  backend_of(x).dropout_forward(in.data(), y.data(), x.numel(), p, seed);
  return record(y, "dropout", {x}, [p, seed](const Tensor& g) {
    Tensor gx = Tensor::empty(g.shape(), g.device());
    backend_of(g).dropout_backward(g.data(), gx.data(), g.numel(), p, seed);
    return std::vector<Tensor>{gx};
  });
}

// residual + dropout(x) in one primitive; the gradient passes to the residual unchanged.
Tensor dropout_add(const Tensor& residual, const Tensor& x, float p, bool training, uint64_t seed) {
  if (p < 0.f || p >= 1.f)
    throw std::invalid_argument("dropout_add: probability " + std::to_string(p) +
                                " is outside [0, 1)");
  if (residual.shape() != x.shape())
    throw std::invalid_argument("dropout_add: residual " + shape_str(residual.shape()) +
                                " and input " + shape_str(x.shape()) + " differ in shape");
  if (!training || p == 0.f) return add(residual, x);
  check_same_device("dropout_add", {residual, x});
  Tensor r = plain(residual), in = plain(x);
  Tensor y = Tensor::empty(x.shape(), x.device());
  backend_of(x).dropout_add_forward(r.data(), in.data(), y.data(), x.numel(), p, seed);
  return record(y, "dropout_add", {residual, x}, [p, seed](const Tensor& g) {
    Tensor gx = Tensor::empty(g.shape(), g.device());
    backend_of(g).dropout_backward(g.data(), gx.data(), g.numel(), p, seed);
    return std::vector<Tensor>{g, gx};
  });
}

// dropout(gelu(x)) in one primitive each way; x is kept for gelu'(x) (or the slope itself, above).
Tensor gelu_dropout(const Tensor& x, float p, bool training, uint64_t seed) {
  if (p < 0.f || p >= 1.f)
    throw std::invalid_argument("gelu_dropout: probability " + std::to_string(p) +
                                " is outside [0, 1)");
  if (!training || p == 0.f) return gelu(x);
  if (keeps_gelu_slope(x)) return gelu_keeping_slope("gelu_dropout", x, p, seed);
  Tensor in = plain(x);
  Tensor y = Tensor::empty(x.shape(), x.device());
  backend_of(x).gelu_dropout_forward(in.data(), y.data(), x.numel(), p, seed);
  return record(y, "gelu_dropout", {x}, [in = in.detach(), p, seed](const Tensor& g) {
    Tensor gx = Tensor::empty(g.shape(), g.device());
    backend_of(g).gelu_dropout_backward(in.data(), g.data(), gx.data(), g.numel(), p, seed);
    return std::vector<Tensor>{gx};
  });
}

}  // namespace forge
