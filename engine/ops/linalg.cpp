// linalg.cpp: matmul and linear, both as row-major GEMMs.
//   C = A B:          dA = dC B^T,        dB = A^T dC
//   y = x W^T + b:    dx = dy W,          dW = dy^T x,       db = sum over rows of dy
#include "engine/ops.h"
#include "engine/ops/op_util.h"

namespace forge {
using namespace detail;

// C[i] = op(A[i]) op(B[i]) for i < batch, on contiguous [batch, rows, cols] tensors.
static void batched_gemm(const Tensor& a, bool ta, const Tensor& b, bool tb, const Tensor& c,
                         int batch) {
  const int ar = a.size(-2), ac = a.size(-1), br = b.size(-2), bc = b.size(-1);
  const int m = ta ? ac : ar, k = ta ? ar : ac, n = tb ? br : bc;
  backend_of(a).gemm(ta, tb, m, n, k, 1.f, a.data(), ac, int64_t(ar) * ac, b.data(), bc,
                     int64_t(br) * bc, 0.f, c.data(), n, int64_t(m) * n, batch);
}

Tensor matmul(const Tensor& a_in, const Tensor& b_in) {
  check_same_device("matmul", {a_in, b_in});
  if (a_in.ndim() < 2 || b_in.ndim() < 1)
    throw std::invalid_argument(
        "matmul: needs a of at least 2 and b of at least 1 dimension, "
        "got " +
        shape_str(a_in.shape()) + " and " + shape_str(b_in.shape()));
  if (b_in.ndim() == 1) return reshape(matmul(a_in, reshape(b_in, {b_in.size(0), 1})), {-1});
  const int64_t m = a_in.size(-2), k = a_in.size(-1), n = b_in.size(-1);
  if (b_in.size(-2) != k)
    throw std::invalid_argument("matmul: inner dimensions differ: " + shape_str(a_in.shape()) +
                                " x " + shape_str(b_in.shape()));
  // Broadcast the batch dimensions, then run one (strided) batched GEMM.
  const Shape a_batch(a_in.shape().begin(), a_in.shape().end() - 2);
  const Shape b_batch(b_in.shape().begin(), b_in.shape().end() - 2);
  Shape batch = broadcast_shapes(a_batch, b_batch, "matmul");
  const int64_t nb = shape_numel(batch);
  auto expand = [&](const Tensor& t, const Shape& own) {
    if (own == batch) return plain(t);
    Shape full = batch;
    full.push_back(t.size(-2));
    full.push_back(t.size(-1));
    Tensor e = Tensor::empty(full, t.device());
    backend_of(t).gather(base_of(t), broadcast_view(t, full), e.data());
    return e;
  };
  const bool b_shared = b_in.ndim() == 2;  // one weight matrix for every batch: no copy
  Tensor a = expand(a_in, a_batch);
  Tensor b = b_shared ? plain(b_in) : expand(b_in, b_batch);
  Shape out_shape = batch;
  out_shape.push_back(m);
  out_shape.push_back(n);
  Tensor c = Tensor::empty(out_shape, a.device());
  if (b_shared) {  // every batch times one matrix: a single GEMM over all rows of a
    Tensor a2 = a.reshape({nb * m, k}), c2 = c.reshape({nb * m, n});
    batched_gemm(a2, false, b, false, c2, 1);
  } else {
    batched_gemm(a, false, b, false, c, int(nb));
  }

  return record(c, "matmul", {a_in, b_in},
                [a, b, b_shared, nb, sa = a_in.shape(), sb = b_in.shape()](const Tensor& g) {
                  Tensor ga = Tensor::empty(a.shape(), g.device());
                  Tensor gb = Tensor::empty(b.shape(), g.device());
                  if (b_shared) {
                    // Flattened rows again; dB sums A^T dC over every batch in one GEMM.
                    Tensor a2 = a.reshape({-1, a.size(-1)}), g2 = g.reshape({-1, g.size(-1)});
                    Tensor ga2 = ga.reshape({-1, a.size(-1)});
                    batched_gemm(g2, false, b, true, ga2, 1);
                    batched_gemm(a2, true, g2, false, gb, 1);
                  } else {
                    batched_gemm(g, false, b, true, ga, int(nb));
                    batched_gemm(a, true, g, false, gb, int(nb));
                  }
                  return std::vector<Tensor>{sum_to_shape(ga, sa), sum_to_shape(gb, sb)};
                });
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  check_same_device("linear", {x, weight, bias});
  check_ndim("linear", "weight", weight, 2);
  const int64_t in = weight.size(1), out = weight.size(0);
  if (x.size(-1) != in)
    throw std::invalid_argument("linear: input " + shape_str(x.shape()) +
                                " does not end in the weight's input size " + std::to_string(in) +
                                " (weight " + shape_str(weight.shape()) + ")");
  if (bias.defined()) check_shape("linear", "bias", bias, {out});
  Tensor x2 = plain(x).reshape({-1, in}), w = plain(weight);
  const int rows = static_cast<int>(x2.size(0));
  Tensor y = Tensor::empty({rows, out}, x.device());
  Tensor b = bias.defined() ? plain(bias) : Tensor();
  backend_of(x).linear_forward(rows, int(in), int(out), x2.data(), w.data(),
                               b.defined() ? b.data() : nullptr, y.data());
  Shape out_shape = x.shape();
  out_shape.back() = out;
  y = record(y, "linear", {x, weight, bias},
             [x2, w, has_bias = bias.defined(), rows, in, out, xs = x.shape()](const Tensor& g) {
               Backend& be = backend_of(g);
               Tensor gx = Tensor::empty({rows, in}, g.device());
               be.gemm(false, false, rows, in, out, 1.f, g.data(), out, 0, w.data(), in, 0, 0.f,
                       gx.data(), in, 0, 1);
               Tensor gw = Tensor::empty({out, in}, g.device());
               Tensor gb = has_bias ? Tensor::empty({out}, g.device()) : Tensor();
               be.linear_backward_weight(rows, int(in), int(out), x2.data(), g.data(), gw.data(),
                                         has_bias ? gb.data() : nullptr);
               return std::vector<Tensor>{gx.reshape(xs), gw, gb};
             });
  return reshape(y, out_shape);
}

}  // namespace forge
