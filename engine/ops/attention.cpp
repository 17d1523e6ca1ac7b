// attention.cpp: scaled_dot_product_attention as ONE autograd node over the fused primitive.
//   out = softmax(scale q k^T) v per (batch, head), q, k, v, out [b, h, t, dh]
// The node saves q, k, v, out (detached) and the per-row log-sum-exp lse [b, h, t]; backward
// recomputes the t x t probabilities from lse (engine/cpu/attention.cpp has the derivation), so
// nothing of size t x t outlives the forward call.
#include "engine/ops.h"
#include "engine/ops/op_util.h"

namespace forge {
using namespace detail;

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    float scale) {
  const char* op = "scaled_dot_product_attention";
  check_same_device(op, {q, k, v});
  check_ndim(op, "q", q, 4);
  check_shape(op, "k", k, q.shape());
  check_shape(op, "v", v, q.shape());
  const int bh = int(q.size(0) * q.size(1)), t = int(q.size(2)), dh = int(q.size(3));
  Tensor qc = plain(q), kc = plain(k), vc = plain(v);
  Tensor out = Tensor::empty(q.shape(), q.device());
  Tensor lse = Tensor::empty({q.size(0), q.size(1), t}, q.device());
  if (out.numel())
    backend_of(q).attention_forward(bh, t, dh, scale, qc.data(), kc.data(), vc.data(), out.data(),
                                    lse.data());
  return record(out, op, {q, k, v},
                [qc, kc, vc, o = out.detach(), lse, bh, t, dh, scale](const Tensor& g) {
                  Tensor gc = plain(g);
                  Tensor gq = Tensor::empty(qc.shape(), g.device());
                  Tensor gk = Tensor::empty(qc.shape(), g.device());
                  Tensor gv = Tensor::empty(qc.shape(), g.device());
                  if (gq.numel())
                    backend_of(g).attention_backward(bh, t, dh, scale, qc.data(), kc.data(),
                                                     vc.data(), o.data(), gc.data(), lse.data(),
                                                     gq.data(), gk.data(), gv.data());
                  return std::vector<Tensor>{gq, gk, gv};
                });
}

}  // namespace forge
