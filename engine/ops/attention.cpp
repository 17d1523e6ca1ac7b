// attention.cpp: scaled_dot_product_attention as ONE autograd node over the fused primitive.
//   out = softmax(scale q k^T) v per (batch, head), q, k, v, out [b, h, t, dh]
// The node saves q, k, v, out (detached) and the per-row log-sum-exp lse [b, h, t]; backward
// recomputes the t x t probabilities from lse (engine/cpu/attention.cpp has the derivation), so
// nothing of size t x t outlives the forward call.
//
// The packed form takes q, k, v stacked as qkv [3, b, h, t, dh] (a transformer's one projection,
// permuted) and returns its gradient as one tensor of that shape, the primitive writing gq, gk and
// gv into its three parts: no slice of the projection, so no zero-filled gradient per slice and
// no sum of the three (on a GPU 10 launches fewer per transformer block).
//
// packed_self_attention takes the projection unpermuted, [b, t, 3 heads dh], and returns
// [b, t, heads dh]: its node hands the buffers to attention_forward/backward_packed as they are
// (every backend reads that layout), saving qkv, out and lse; gradient gqkv comes back in the
// projection's own layout.
#include <functional>
#include <string>
#include <vector>

#include "engine/ops.h"
#include "engine/ops/op_util.h"

namespace forge {
using namespace detail;

namespace {

// Contiguous q, k, v [bh, t, dh] at the given pointers, inside the tensors `saved` keeps alive.
struct AttentionInputs {
  std::vector<Tensor> saved;
  const float *q, *k, *v;
};

// The node: forward now, and a backward that asks `gradients` for the buffers of gq, gk, gv (three
// pointers) and the tensors to return.
using GradientBuffers = std::function<std::vector<Tensor>(const Shape& qkv_part_shape, float** gq,
                                                          float** gk, float** gv, Device device)>;

Tensor attention_node(const char* op, const std::vector<Tensor>& inputs, const Shape& shape,
                      AttentionInputs in, float scale, GradientBuffers gradients) {
  const int bh = int(shape[0] * shape[1]), t = int(shape[2]), dh = int(shape[3]);
  const Device device = inputs[0].device();
  Tensor out = Tensor::empty(shape, device);
  Tensor lse = Tensor::empty({shape[0], shape[1], t}, device);
  if (out.numel())
    backend(device).attention_forward(bh, t, dh, scale, in.q, in.k, in.v, out.data(), lse.data());
  return record(out, op, inputs,
                [in, o = out.detach(), lse, bh, t, dh, scale, shape, gradients](const Tensor& g) {
                  Tensor gc = plain(g);
                  float *gq = nullptr, *gk = nullptr, *gv = nullptr;
                  std::vector<Tensor> grads = gradients(shape, &gq, &gk, &gv, g.device());
                  if (o.numel())
                    backend_of(g).attention_backward(bh, t, dh, scale, in.q, in.k, in.v, o.data(),
                                                     gc.data(), lse.data(), gq, gk, gv);
                  return grads;
                });
}

}  // namespace

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    float scale) {
  const char* op = "scaled_dot_product_attention";
  check_same_device(op, {q, k, v});
  check_ndim(op, "q", q, 4);
  check_shape(op, "k", k, q.shape());
  check_shape(op, "v", v, q.shape());
  Tensor qc = plain(q), kc = plain(k), vc = plain(v);
  return attention_node(
      op, {q, k, v}, q.shape(), {{qc, kc, vc}, qc.data(), kc.data(), vc.data()}, scale,
      [](const Shape& shape, float** gq, float** gk, float** gv, Device device) {
        Tensor tq = Tensor::empty(shape, device), tk = Tensor::empty(shape, device),
               tv = Tensor::empty(shape, device);
        *gq = tq.data(), *gk = tk.data(), *gv = tv.data();
        return std::vector<Tensor>{tq, tk, tv};
      });
}

Tensor scaled_dot_product_attention(const Tensor& qkv, float scale) {
  const char* op =
      "scaled_dot_product_attention";  // one node name for both forms (bench counts it)
  if (qkv.ndim() != 5 || qkv.size(0) != 3)
    throw std::invalid_argument(std::string(op) + ": packed qkv must be [3, b, h, t, dh], got " +
                                shape_str(qkv.shape()));
  const Shape shape(qkv.shape().begin() + 1, qkv.shape().end());
  Tensor packed = plain(qkv);  // q, k, v back to back
  const int64_t n = shape_numel(shape);
  const float* p = packed.data();
  return attention_node(
      op, {qkv}, shape, {{packed}, p, p + n, p + 2 * n}, scale,
      [n, full = qkv.shape()](const Shape&, float** gq, float** gk, float** gv, Device device) {
        Tensor g = Tensor::empty(full, device);
        *gq = g.data(), *gk = g.data() + n, *gv = g.data() + 2 * n;
        return std::vector<Tensor>{g};
      });
}

Tensor packed_self_attention(const Tensor& qkv, int heads, float scale) {
  const char* op = "scaled_dot_product_attention";  // the node bench counts, as above
  if (qkv.ndim() != 3 || heads <= 0 || qkv.size(2) % (3 * heads) != 0)
    throw std::invalid_argument(std::string(op) +
                                ": packed qkv must be [b, t, 3 * heads * dh] with " +
                                std::to_string(heads) + " heads, got " + shape_str(qkv.shape()));
  const int64_t b = qkv.size(0), t = qkv.size(1), width = qkv.size(2) / 3, dh = width / heads;
  Backend& be = backend(qkv.device());
  Tensor packed = plain(qkv);  // the linear layer's output is contiguous already: no copy
  Tensor out = Tensor::empty({b, t, width}, qkv.device());
  Tensor lse = Tensor::empty({b, heads, t}, qkv.device());
  if (out.numel())
    be.attention_forward_packed(int(b), heads, int(t), int(dh), scale, packed.data(), out.data(),
                                lse.data());
  return record(out, op, {qkv},
                [p = packed.detach(), o = out.detach(), lse, heads, scale](const Tensor& g) {
                  Tensor gc = plain(g);
                  Tensor gqkv = Tensor::empty(p.shape(), g.device());
                  const int64_t dh = o.size(2) / heads;
                  if (o.numel())
                    backend_of(g).attention_backward_packed(int(o.size(0)), heads, int(o.size(1)),
                                                            int(dh), scale, p.data(), o.data(),
                                                            gc.data(), lse.data(), gqkv.data());
                  return std::vector<Tensor>{gqkv};
                });
}

}  // namespace forge
