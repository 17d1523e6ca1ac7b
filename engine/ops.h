// ops.h: the differentiable operations. Each records its backward (engine/autograd.h) and calls
// the primitive table of its inputs' device (engine/backend.h); model code never names a device.
// Inputs of one op must share a device; shape errors name the op and both shapes.
//
// Implementations, one family a file, forward and backward side by side:
//   ops/shape_ops.cpp    reshape, permute, transpose, slice, contiguous, concat
//   ops/elementwise.cpp  add, sub, mul, div, scalar ops, neg, exp, log, relu, gelu, dropout,
//                        dropout_add, gelu_dropout
//   ops/reduce.cpp       sum, mean (all or over axes), global average pool
//   ops/linalg.cpp       matmul (batched, broadcast), linear
//   ops/conv.cpp         conv2d, max_pool2d
//   ops/norm.cpp         batch_norm2d, layer_norm, softmax
//   ops/attention.cpp    scaled_dot_product_attention (fused)
//   ops/vision.cpp       patch_embed, multi_resolution_fusion, resize_nearest, pad2d
//   ops/loss.cpp         cross_entropy, mixed_cross_entropy
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "engine/tensor.h"

namespace forge {

// ---- shape
// --------------------------------------------------------------------------------------- reshape
// accepts one -1 extent, inferred from the element count.
Tensor reshape(const Tensor& x, const Shape& shape);
Tensor permute(const Tensor& x, const std::vector<int>& order);
Tensor transpose(const Tensor& x, int a, int b);
Tensor slice(const Tensor& x, int axis, int64_t start, int64_t end);  // [start, end)
Tensor contiguous(const Tensor& x);
Tensor concat(const std::vector<Tensor>& xs, int axis);

// ---- elementwise (binary ops broadcast with numpy rules)
// ------------------------------------------
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor add_scalar(const Tensor& x, float value);
Tensor mul_scalar(const Tensor& x, float value);
Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor relu(const Tensor& x);
// GELU, exact erf form: x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)).
Tensor gelu(const Tensor& x);
// Inverted dropout: zeroes each element with probability p and scales the rest by 1/(1-p) when
// `training`; the identity otherwise. The mask is a function of (seed, element index).
Tensor dropout(const Tensor& x, float p, bool training, uint64_t seed);
// Dropout fused with its neighbour in a transformer block, equal bit for bit to the unfused ops:
// residual + dropout(x) (same shapes) and dropout(gelu(x)); the same mask as dropout's for a seed.
Tensor dropout_add(const Tensor& residual, const Tensor& x, float p, bool training, uint64_t seed);
Tensor gelu_dropout(const Tensor& x, float p, bool training, uint64_t seed);

inline Tensor operator+(const Tensor& a, const Tensor& b) {
  return add(a, b);
}
inline Tensor operator-(const Tensor& a, const Tensor& b) {
  return sub(a, b);
}
inline Tensor operator*(const Tensor& a, const Tensor& b) {
  return mul(a, b);
}
inline Tensor operator/(const Tensor& a, const Tensor& b) {
  return div(a, b);
}
inline Tensor operator*(const Tensor& a, float s) {
  return mul_scalar(a, s);
}
inline Tensor operator+(const Tensor& a, float s) {
  return add_scalar(a, s);
}
inline Tensor operator-(const Tensor& a) {
  return neg(a);
}

// ---- reductions
// -----------------------------------------------------------------------------------
Tensor sum(const Tensor& x);   // all elements -> shape [1]
Tensor mean(const Tensor& x);  // all elements -> shape [1]
Tensor sum(const Tensor& x, const std::vector<int>& axes, bool keepdim = false);
Tensor mean(const Tensor& x, const std::vector<int>& axes, bool keepdim = false);
// [n, c, h, w] -> [n, c]
Tensor global_avg_pool(const Tensor& x);

// ---- linear algebra
// ------------------------------------------------------------------------------- a [..., m, k] x b
// [..., k, n] -> [..., m, n]; batch dimensions broadcast; 1-D b is [k, n=1] squeezed. A 2-D b is
// shared by every batch of a (one GEMM call).
Tensor matmul(const Tensor& a, const Tensor& b);
// x [..., in] . weight [out, in]^T + bias [out] (bias may be undefined).
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias);

// ---- convolution and pooling
// ---------------------------------------------------------------------- x [n, c, h, w], weight [k,
// c, r, s], bias [k] or undefined; zero padding.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, int stride, int pad);
Tensor max_pool2d(const Tensor& x, int kernel, int stride, int pad = 0);

// ---- normalisation
// -------------------------------------------------------------------------------- x [n, c, h, w].
// training: batch statistics, running_mean/var updated in place (not recorded); eval: running
// statistics.
Tensor batch_norm2d(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                    const Tensor& running_mean, const Tensor& running_var, bool training,
                    float momentum, float eps);
// Normalises over the last dimension; gamma, beta [d].
Tensor layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps);
// Softmax over the last dimension.
Tensor softmax(const Tensor& x);

// ---- attention
// ------------------------------------------------------------------------------------ q, k, v [b,
// h, t, dh] -> [b, h, t, dh]; one fused node: saves only the per-row log-sum-exp.
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, float scale);
// The same with q, k, v stacked: qkv [3, b, h, t, dh] (one projection, permuted) -> [b, h, t, dh];
// its gradient is one tensor, with no per-part slicing (fewer kernel launches on a GPU).
Tensor scaled_dot_product_attention(const Tensor& qkv, float scale);
// A transformer's self-attention over its one projection as it comes out of the linear layer:
// qkv [b, t, 3 * heads * dh] (laid out [b, t, 3, heads, dh]) -> [b, t, heads * dh], the layout
// the output projection reads, with no gather and no permuted copy, forward or backward (every
// backend reads the packed layout in place: engine/backend.h attention_forward_packed).
Tensor packed_self_attention(const Tensor& qkv, int heads, float scale);

// ---- vision
// --------------------------------------------------------------------------------------- images
// [b, c, h, w], weight [e, c, p, p] (or [e, c*p*p]), bias [e], cls [e], pos [1+n, e]
// -> tokens [b, 1 + (h/p)(w/p), e]. See PatchEmbedDesc in engine/backend.h.
Tensor patch_embed(const Tensor& images, const Tensor& weight, const Tensor& bias,
                   const Tensor& cls, const Tensor& pos, int patch);
// HRNet fusion: ReLU(sum_i nearest_resize(xs[i] -> (oh, ow))); every x_i [n, c, h_i, w_i].
Tensor multi_resolution_fusion(const std::vector<Tensor>& xs, int oh, int ow);
Tensor resize_nearest(const Tensor& x, int oh, int ow);
Tensor pad2d(const Tensor& x, int top, int bottom, int left, int right);

// ---- loss
// ----------------------------------------------------------------------------------------- Mean
// over rows of the softmax cross-entropy of logits [rows, classes] against integer labels, with
// label smoothing s (target = (1-s) onehot + s/classes). Returns shape [1].
Tensor cross_entropy(const Tensor& logits, const std::vector<int32_t>& labels,
                     float smoothing = 0.f);
// The same against labels already on the logits' device: `labels` holds at least rows int32
// values, each in [0, classes) (the caller checks them: they are not read back). Nothing is
// uploaded, as a step captured as a CUDA graph needs (train/graph_step.h).
Tensor cross_entropy(const Tensor& logits, std::shared_ptr<Storage> labels, float smoothing);
// Cross-entropy against a per-row mixture of two labels (mixup, cutmix: data/mixup.h):
//   mean_r [ w_r CE_s(z_r, a_r) + (1 - w_r) CE_s(z_r, b_r) ],  w_r in [0, 1].
// CE is linear in its target, so this is exactly the soft-target cross-entropy against
// w_r t(a_r) + (1 - w_r) t(b_r), t the smoothed one-hot target above: timm's mixup target with
// label smoothing (SoftTargetCrossEntropy of mixup_target), on every backend without a new kernel.
Tensor mixed_cross_entropy(const Tensor& logits, const std::vector<int32_t>& labels,
                           const std::vector<int32_t>& other_labels,
                           const std::vector<float>& weights, float smoothing = 0.f);

}  // namespace forge
