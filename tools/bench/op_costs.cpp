// op_costs.cpp: the flop and byte formulas of op_costs.h, one function an op, each with its math.
// Element counts: E for the op's main tensor, C channels, R rows; bytes are 4 * elements (float32
// and int32 alike).
#include "tools/bench/op_costs.h"

#include <cmath>
#include <cstring>
#include <unordered_set>
#include <vector>

#include "engine/autograd.h"

namespace forge::bench {

constexpr double kWord = 4;  // bytes of a float32 or an int32

// A [batch, m, k] x [batch, k, n] = C [batch, m, n]
//   forward:  2 m n k flops a problem; reads A, B, writes C: 4 (mk + kn + mn)
//   backward: dA = dC B^T and dB = A^T dC, two GEMMs of the same size: 4 m n k; reads dC, A, B,
//             writes dA, dB: 4 (mn + 2 mk + 2 kn)
PassCosts matmul_cost(int64_t batch, int64_t m, int64_t n, int64_t k) {
  const double b = double(batch), mk = double(m) * k, kn = double(k) * n, mn = double(m) * n;
  return {{2 * b * mn * k, kWord * b * (mk + kn + mn)},
          {4 * b * mn * k, kWord * b * (mn + 2 * mk + 2 * kn)}};
}

// y [R, O] = x [R, I] W^T [I, O] + bias [O]
//   forward:  2 R I O (+ R O bias adds); reads x, W, bias, writes y: 4 (RI + OI + O + RO)
//   backward: dx = dy W and dW = dy^T x: 4 R I O, db = column sums of dy: R O adds;
//             reads dy, W, x, writes dx, dW, db: 4 (RO + 2 RI + 2 OI + O)
PassCosts linear_cost(int64_t rows, int64_t in, int64_t out, bool bias) {
  const double r = double(rows), ri = r * in, oi = double(out) * in, ro = r * out;
  const double b = bias ? double(out) : 0, bias_adds = bias ? ro : 0;
  return {{2 * ri * out + bias_adds, kWord * (ri + oi + b + ro)},
          {4 * ri * out + bias_adds, kWord * (ro + 2 * ri + 2 * oi + b)}};
}

// y [N, K, OH, OW] = conv(x [N, C, H, W], w [K, C, R, S]) + bias [K]
//   forward:  2 N K OH OW C R S (+ N K OH OW bias adds); reads x, w, bias, writes y
//   backward: dw = the x-dy correlation, 2 N K OH OW C R S, reading x and dy, writing dw;
//             dx (when the input needs it) the same count again, reading w, writing dx;
//             dbias: N K OH OW adds
PassCosts conv2d_cost(const Conv2dDesc& d, bool input_grad, bool bias) {
  const double y = double(d.n) * d.k * d.oh * d.ow, x = double(d.n) * d.c * d.h * d.w;
  const double w = double(d.k) * d.c * d.r * d.s, macs = y * d.c * d.r * d.s;
  const double bias_adds = bias ? y : 0, b = bias ? double(d.k) : 0;
  Cost forward{2 * macs + bias_adds, kWord * (x + w + b + y)};
  Cost backward{2 * macs + bias_adds, kWord * (y + x + w + b)};
  if (input_grad) {
    backward.flops += 2 * macs;
    backward.bytes += kWord * (w + x);
  }
  return {forward, backward};
}

// out = softmax(scale q k^T) v per (batch, head); q, k, v, out [BH, T, dh], lse [BH, T]
//   forward:  q k^T and P v: 4 BH T^2 dh (the softmax's ~5 BH T^2 not counted, as in the
//             FlashAttention papers); reads q, k, v, writes out, lse: 4 BH T (4 dh + 1)
//   backward: recomputes S = q k^T, then dV = P^T dO, dP = dO V^T, dQ = dS K, dK = dS^T Q:
//             five products, 10 BH T^2 dh; reads q, k, v, out, dO, lse, writes dQ, dK, dV:
//             4 BH T (8 dh + 1)
PassCosts attention_cost(int64_t bh, int64_t t, int64_t dh) {
  const double rows = double(bh) * t, scores = rows * t;
  return {{4 * scores * dh, kWord * rows * (4 * dh + 1)},
          {10 * scores * dh, kWord * rows * (8 * dh + 1)}};
}

// tokens [B, T, E], T = 1 + n patches of P = C p^2 values each; W [E, P]
//   forward:  the patch GEMM 2 B n E P, bias and position adds on patch rows 2 B n E, class row
//             cls + pos B E; reads image, W, bias, cls, pos, writes tokens
//   backward: dW = sum over (b, j) of dtok (x) patch: 2 B n E P; dbias B n E, dcls B E and
//             dpos B T E adds; reads image and dtokens, writes dW, dbias, dcls, dpos (no image
//             gradient: it is data)
PassCosts patch_embed_cost(const PatchEmbedDesc& d) {
  const double b = d.b, n = double(d.grid_h()) * d.grid_w(), t = d.tokens(), e = d.e;
  const double p = d.patch_dim(), image = double(d.b) * d.c * d.h * d.w;
  const double params = e * p + 2 * e + t * e;  // W, bias, cls, pos
  return {
      {2 * b * n * e * p + 2 * b * n * e + b * e, kWord * (image + params + b * t * e)},
      {2 * b * n * e * p + b * n * e + b * e + b * t * e, kWord * (image + b * t * e + params)}};
}

// Batch norm, training, x [N, C, HW], E = N C HW
//   forward:  sum and sum of squares (3 E), y = (x - mean) (invstd gamma) + beta (3 E): 6 E;
//             reads x, gamma, beta, running stats, writes y, saved mean/invstd, running stats
//   backward: xhat = (x - mean) invstd (2 E), sum dy (E), sum dy xhat (2 E),
//             dx = gamma invstd / M (M dy - sum dy - xhat sum dy xhat) (5 E): 10 E;
//             reads x, dy, gamma, mean, invstd, writes dx, dgamma, dbeta
PassCosts batch_norm_train_cost(int64_t n, int64_t c, int64_t hw) {
  const double e = double(n) * c * hw, ch = double(c);
  return {{6 * e, kWord * (2 * e + 8 * ch)}, {10 * e, kWord * (3 * e + 5 * ch)}};
}

// Batch norm, eval (running statistics folded into a per-channel scale a and shift b)
//   forward:  y = a x + b: 2 E; reads x, gamma, beta, running mean and variance, writes y
//   backward: dx = dy gamma s (E), dgamma = sum dy (x - rm) s (4 E), dbeta = sum dy (E): 6 E;
//             reads x, dy, gamma, running stats, writes dx, dgamma, dbeta
PassCosts batch_norm_eval_cost(int64_t n, int64_t c, int64_t hw) {
  const double e = double(n) * c * hw, ch = double(c);
  return {{2 * e, kWord * (2 * e + 4 * ch)}, {6 * e, kWord * (3 * e + 5 * ch)}};
}

// Layer norm over the last dimension d of x [R, d], E = R d
//   forward:  mean (E), variance: subtract, square, add (3 E), y = (x - mean) rstd gamma + beta
//             (4 E): 8 E; reads x, gamma, beta, writes y, mean and rstd [R]
//   backward: xhat (2 E), g = dy gamma (E), sum g (E), sum g xhat (2 E),
//             dx = rstd (g - mean g - xhat mean(g xhat)) (4 E), dgamma (2 E), dbeta (E): 13 E;
//             reads x, dy, gamma, mean, rstd, writes dx, dgamma, dbeta
PassCosts layer_norm_cost(int64_t rows, int64_t d) {
  const double e = double(rows) * d, r = double(rows), w = double(d);
  return {{8 * e, kWord * (2 * e + 2 * w + 2 * r)}, {13 * e, kWord * (3 * e + 3 * w + 2 * r)}};
}

// Softmax over the last dimension of [R, d], E = R d
//   forward:  row max (E), exp(x - max) (2 E), row sum (E), divide (E): 5 E; reads x, writes y
//   backward: dx = y (dy - sum dy y): dot (2 E), subtract (E), multiply (E): 4 E;
//             reads y, dy, writes dx
PassCosts softmax_cost(int64_t rows, int64_t d) {
  const double e = double(rows) * d;
  return {{5 * e, kWord * 2 * e}, {4 * e, kWord * 3 * e}};
}

// ReLU: y = max(x, 0): E; dx = dy [x > 0]: E (reads x, dy, writes dx)
PassCosts relu_cost(int64_t n) {
  const double e = double(n);
  return {{e, kWord * 2 * e}, {e, kWord * 3 * e}};
}

// GELU, erf form: y = 0.5 x (1 + erf(x / sqrt 2)): 5 E
//   dx = dy (Phi(x) + x phi(x)), Phi as above (4), phi = exp(-x^2 / 2) / sqrt(2 pi) (4),
//   x phi, the sum and the product with dy (3): 11 E; reads x, dy, writes dx
PassCosts gelu_cost(int64_t n) {
  const double e = double(n);
  return {{5 * e, kWord * 2 * e}, {11 * e, kWord * 3 * e}};
}

// Dropout: keep = uniform(seed, i) >= p (a compare; the hash is integer work), y = keep x / (1-p):
// 2 E each way; the mask is recomputed from the seed, so backward reads dy and writes dx only.
PassCosts dropout_cost(int64_t n) {
  const double e = double(n);
  return {{2 * e, kWord * 2 * e}, {2 * e, kWord * 2 * e}};
}

// add: y = a + b: E; reads a, b, writes y. Backward: each input receives dy (no arithmetic);
// reads dy, writes da, db.
PassCosts add_cost(int64_t n) {
  const double e = double(n);
  return {{e, kWord * 3 * e}, {0, kWord * 3 * e}};
}

// mul: y = a b: E; reads a, b, writes y. Backward: da = dy b, db = dy a: 2 E; reads dy, a, b,
// writes da, db.
PassCosts mul_cost(int64_t n) {
  const double e = double(n);
  return {{e, kWord * 3 * e}, {2 * e, kWord * 5 * e}};
}

// A copy (contiguous() of a permuted view, concat): no arithmetic, reads and writes E each way.
PassCosts copy_cost(int64_t n) {
  const double e = double(n);
  return {{0, kWord * 2 * e}, {0, kWord * 2 * e}};
}

// sum or mean of `in` elements down to `out`: in adds (+ out scalings for a mean); reads x,
// writes y. Backward broadcasts dy back (out scalings for a mean): reads dy, writes dx.
PassCosts reduce_cost(int64_t in, int64_t out, bool mean) {
  const double i = double(in), o = double(out), scale = mean ? o : 0;
  return {{i + scale, kWord * (i + o)}, {scale, kWord * (o + i)}};
}

// Max pool, k x k windows: k^2 compares per output O; reads x (I), writes y and the int32 argmax.
// Backward: dy routed to the argmax of each window, one add an output (windows may overlap);
// reads dy and argmax, writes dx.
PassCosts max_pool_cost(const Pool2dDesc& d) {
  const double o = double(d.n) * d.c * d.oh * d.ow, i = double(d.n) * d.c * d.h * d.w;
  return {{double(d.kernel) * d.kernel * o, kWord * (i + 2 * o)}, {o, kWord * (2 * o + i)}};
}

// Nearest resize of `in` elements to `out`: a gather, no arithmetic; backward sums each output
// gradient into its source: out adds; reads dy, writes dx.
PassCosts resize_nearest_cost(int64_t in, int64_t out) {
  const double i = double(in), o = double(out);
  return {{0, kWord * (i + o)}, {o, kWord * (o + i)}};
}

// Zero padding of `in` elements to `out`: a copy each way (backward crops).
PassCosts pad_cost(int64_t in, int64_t out) {
  const double i = double(in), o = double(out);
  return {{0, kWord * (i + o)}, {0, kWord * (o + i)}};
}

// HRNet fusion of B branches S_i into y [N, C, OH, OW] (E elements): y = ReLU(sum of B resampled
// branches): B - 1 adds and one max an output, B E; reads every branch, writes y.
// Backward: the ReLU mask (E) and one add per (output, branch) (B E); reads y, dy, writes every
// branch gradient.
PassCosts fusion_cost(const FusionDesc& d) {
  const double e = double(d.n) * d.c * d.oh * d.ow, nb = d.branches;
  double branches = 0;
  for (int i = 0; i < d.branches; ++i) branches += double(d.n) * d.c * d.hs[i] * d.ws[i];
  return {{nb * e, kWord * (branches + e)}, {(nb + 1) * e, kWord * (2 * e + branches)}};
}

// Softmax cross-entropy of logits [R, K] and its mean over rows:
//   forward:  row max (RK), exp(z - max) (2 RK), row sum (RK), target dot (2 RK), log and
//             loss per row (2 R), the mean (R): 6 RK + 3 R; reads logits and int32 labels,
//             writes loss and lse [R]
//   backward: dz = dloss (exp(z - lse) - target): 4 RK, plus the mean's R; reads logits,
//             labels, lse, dloss, writes dz
PassCosts cross_entropy_cost(int64_t rows, int64_t classes) {
  const double r = double(rows), rk = r * classes;
  return {{6 * rk + 3 * r, kWord * (rk + 3 * r)}, {4 * rk + r, kWord * (2 * rk + 3 * r)}};
}

// Forward flops of one recorded node producing `out`, from its inputs' shapes (0 for nodes that
// are not GEMM-shaped).
static double node_forward_flops(const Node& node, const Tensor& out) {
  const std::vector<Tensor>& in = node.inputs;
  if (std::strcmp(node.name, "conv2d") == 0) {
    Conv2dDesc d{};
    d.n = int(out.size(0)), d.k = int(out.size(1)), d.oh = int(out.size(2));
    d.ow = int(out.size(3));
    d.c = int(in[1].size(1)), d.r = int(in[1].size(2)), d.s = int(in[1].size(3));
    d.h = int(in[0].size(2)), d.w = int(in[0].size(3));
    return conv2d_cost(d, false, in[2].defined()).forward.flops;
  }
  if (std::strcmp(node.name, "linear") == 0) {
    const int64_t features = in[1].size(1);
    return linear_cost(in[0].numel() / features, features, in[1].size(0), in[2].defined())
        .forward.flops;
  }
  if (std::strcmp(node.name, "matmul") == 0) {
    const int64_t m = in[0].size(-2), k = in[0].size(-1), n = in[1].size(-1);
    return matmul_cost(out.numel() / (m * n), m, n, k).forward.flops;
  }
  // q, k, v or stacked qkv (out [b, h, t, dh]), or the unpermuted projection (out [b, t, h dh]:
  // the flops of one head of width h dh)
  if (std::strcmp(node.name, "scaled_dot_product_attention") == 0)
    return out.ndim() == 3
               ? attention_cost(out.size(0), out.size(1), out.size(2)).forward.flops
               : attention_cost(out.size(0) * out.size(1), out.size(2), out.size(3)).forward.flops;
  if (std::strcmp(node.name, "patch_embed") == 0) {
    const Tensor& images = in[0];
    const int64_t e = in[1].size(0), c = images.size(1);
    const int patch = int(std::lround(std::sqrt(double(in[1].numel() / e / c))));
    PatchEmbedDesc d{int(images.size(0)), int(c), int(images.size(2)),
                     int(images.size(3)), patch,  int(e)};
    return patch_embed_cost(d).forward.flops;
  }
  return 0;
}

double graph_forward_flops(const Tensor& root) {
  double flops = 0;
  std::unordered_set<const Node*> visited;
  std::vector<Tensor> pending{root};
  while (!pending.empty()) {
    Tensor t = std::move(pending.back());
    pending.pop_back();
    const Node* node = t.defined() ? t.grad_fn().get() : nullptr;
    if (!node || !visited.insert(node).second) continue;
    flops += node_forward_flops(*node, t);
    for (const Tensor& in : node->inputs) pending.push_back(in);
  }
  return flops;
}

}  // namespace forge::bench
