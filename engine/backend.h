// backend.h: the primitive table, one implementation per device.
//
// Differentiable ops (engine/ops) do the bookkeeping: shapes, broadcasting, autograd nodes. The
// arithmetic is done here, on raw device pointers to CONTIGUOUS float32 buffers, by whichever
// backend owns the tensors: engine/cpu for Device::cpu, engine/cuda (built twice) for Device::sim
// and Device::cuda. Every fused op has its forward and its backward side by side.
//
// Conventions, for every entry below:
//  - pointers are device pointers of the backend's own device; sizes are in elements;
//  - outputs are OVERWRITTEN, never accumulated into (autograd accumulates), unless the comment
//    says "+=";
//  - int32 buffers (labels, argmax indices) are raw device memory from allocate();
//  - a primitive may run asynchronously on cuda; copy_to_host() synchronises.
#pragma once
#include <cstddef>
#include <cstdint>

#include "engine/device.h"

namespace forge {

constexpr int kMaxDims = 8;

// A strided view: out[i0..in] = base[offset + sum_k i_k * strides[k]].
struct StridedView {
  int ndim = 0;
  int64_t shape[kMaxDims] = {};
  int64_t strides[kMaxDims] = {};
  int64_t offset = 0;
};

enum class BinaryOp { add, sub, mul, div };
enum class UnaryOp { neg, exp, log, sqrt, square, relu, gelu, scale, add_scalar };

// 2-D convolution, NCHW input [n, c, h, w], weight [k, c, r, s], output [n, k, oh, ow].
// One tensor of a multi-tensor Adam step: n floats at each of p, g, m, v, and its step t >= 1.
struct AdamTensor {
  float* p;
  const float* g;
  float* m;
  float* v;
  int64_t n;
  int step;
};

// One tensor of a multi-tensor weight average (Backend::ema_update): n floats at each of average
// and model.
struct EmaTensor {
  float* average;
  const float* model;
  int64_t n;
};

struct Conv2dDesc {
  int n, c, h, w;   // input
  int k, r, s;      // output channels, kernel height, kernel width
  int stride, pad;  // same in both directions; zero padding
  int oh, ow;       // output size: (h + 2 pad - r) / stride + 1
};

// Max pooling over k x k windows, NCHW.
struct Pool2dDesc {
  int n, c, h, w;
  int kernel, stride, pad;
  int oh, ow;
};

// Patch embedding of images [b, c, h, w] with square patches p (h, w multiples of p):
//   tokens[b, 0, :]   = cls + pos[0, :]
//   tokens[b, 1+j, :] = W · patch_j(image_b) + bias + pos[1+j, :],   j = gy * (w/p) + gx
// patch_j flattened in (channel, row, column) order, so W [e, c*p*p] matches a conv weight
// [e, c, p, p]. Output tokens [b, 1 + (h/p)*(w/p), e].
struct PatchEmbedDesc {
  int b, c, h, w, p, e;
  int grid_h() const { return h / p; }
  int grid_w() const { return w / p; }
  int tokens() const { return 1 + grid_h() * grid_w(); }
  int patch_dim() const { return c * p * p; }
};

// Multi-resolution fusion (HRNet): y = ReLU(sum_i nearest(x_i -> (oh, ow))).
// Branch i is [n, c, hs[i], ws[i]]; nearest resampling by size: source row = floor(oy * h_i / oh).
constexpr int kMaxBranches = 8;
struct FusionDesc {
  int n, c, oh, ow;
  int branches;
  int hs[kMaxBranches], ws[kMaxBranches];
};

// What the matmul-like primitives compute in: gemm, linear_*, conv2d_* (im2col + GEMM),
// patch_embed_* and attention_* (docs/MIXED_PRECISION.md). Tensors stay fp32 whatever is chosen.
//   fp32  fp32 inputs, fp32 products and sums (the default, and the only choice on cpu);
//   tf32  fp32 GEMMs whose inputs the tensor cores round to tf32 (10-bit mantissa), fp32 sums:
//         cuBLAS's CUBLAS_COMPUTE_32F_FAST_TF32 on cuda; the same rounding of the GEMM inputs
//         on sim, so the emulator shows its effect; attention stays fp32;
//   bf16  inputs rounded to bf16 (round to nearest even) into scratch, products on the tensor
//         cores, fp32 accumulation and fp32 outputs; norms, softmax statistics, loss and every
//         reduction stay fp32.
enum class MatmulPrecision { fp32, tf32, bf16 };
const char* matmul_precision_name(MatmulPrecision precision);

// What changes from one training step to the next besides its data (Backend::set_step_values).
struct StepValues {
  uint64_t step = 0;            // the global step (dropout seeds, accumulate_step_metrics)
  float lr = 0.f;               // the learning rate of this step's optimizer update
  int64_t optimizer_steps = 0;  // the optimizer's updates before this step (Adam's t - 1)
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual Device device() const = 0;

  // ---- precision -----------------------------------------------------------------------------
  // The backend's matmul precision from now on (a process-wide setting of the device, fp32 until
  // set). The default accepts fp32 only and throws std::invalid_argument naming the device and
  // the precision otherwise: the CPU backend computes in fp32 only.
  virtual void set_matmul_precision(MatmulPrecision precision);
  virtual MatmulPrecision matmul_precision() const { return MatmulPrecision::fp32; }

  // ---- per-step values ------------------------------------------------------------------------
  // train/train_step.cpp sets them before each step. The cpu backend needs none of this (its
  // primitives take every value as an argument, and the default does nothing). A GPU backend keeps
  // them in device memory, and its kernels read there every argument that is one of them or
  // derived from them: a learning rate equal to `lr` (adam_step, sgd_step), the step of
  // accumulate_step_metrics when equal to `step`, Adam's bias corrections 1 - b^t (t taken as
  // optimizer_steps plus the tensor's t - optimizer_steps of the call), and a dropout seed made
  // by dropout_seed. The results are those of the arguments; but a step captured as a CUDA graph
  // (engine/cuda/builtin.h GpuGraph), which repeats its kernels' arguments, replays with the
  // values of the step it replays once set_step_values has written them.
  virtual void set_step_values(const StepValues& values);
  // Dropout's seed for call `call` of the layer keyed `key` at `step`: step_seed(key, step, call)
  // (engine/random.h). A GPU backend also remembers how it was made, until the next
  // set_step_values, so that its dropout kernels given this seed derive it on the device (from the
  // step values' step plus step - values.step).
  virtual uint64_t dropout_seed(uint64_t key, uint64_t step, uint64_t call);

  // ---- memory ------------------------------------------------------------------------------
  virtual void* allocate(size_t bytes) = 0;
  virtual void deallocate(void* ptr, size_t bytes) = 0;
  virtual void copy_from_host(void* dst, const void* src, size_t bytes) = 0;
  virtual void copy_to_host(void* dst, const void* src, size_t bytes) = 0;  // synchronises
  virtual void copy(void* dst, const void* src, size_t bytes) = 0;          // device to device
  virtual void synchronize() = 0;

  // ---- elementwise ---------------------------------------------------------------------------
  virtual void fill(float* x, int64_t n, float value) = 0;
  // dst (contiguous, src.shape) = gather of the strided view of src_base.
  virtual void gather(const float* src_base, const StridedView& src, float* dst) = 0;
  // dst_base[strided view dst] (+)= src (contiguous, dst.shape). accumulate: += instead of =.
  virtual void scatter(const float* src, float* dst_base, const StridedView& dst,
                       bool accumulate) = 0;
  // out = a op b over `shape`; a and b are strided views (stride 0 broadcasts), out contiguous.
  virtual void binary(BinaryOp op, const float* a, const StridedView& av, const float* b,
                      const StridedView& bv, float* out) = 0;
  // y = f(x); alpha is the factor of scale and the addend of add_scalar.
  virtual void unary(UnaryOp op, const float* x, float* y, int64_t n, float alpha) = 0;
  // gx = gy * f'(x) for relu and gelu (erf form); op is UnaryOp::relu or UnaryOp::gelu.
  virtual void unary_backward(UnaryOp op, const float* x, const float* gy, float* gx,
                              int64_t n) = 0;
  // y += alpha * x
  virtual void axpy(float alpha, const float* x, float* y, int64_t n) = 0;

  // ---- reductions ----------------------------------------------------------------------------
  // Sums x (contiguous, shape in_shape) down to out_shape: same ndim, each extent equal or 1.
  virtual void reduce_sum(const float* x, const int64_t* in_shape, const int64_t* out_shape,
                          int ndim, float* out) = 0;
  // Gradient-norm clipping over a list of `count` flat tensors, xs[i] holding ns[i] floats, with
  // nothing read back to the host (on a GPU two launches for the whole list, no transfer):
  //   norm = sqrt(S), S = sum over tensors of (float) sum_i x_i^2 (each tensor's sum rounded to
  //   float, those added in double);  *norm_out (one device float) = norm;
  //   when norm is finite and > max_norm: x *= max_norm / (norm + 1e-6) in place.
  // A non-finite norm leaves every x as it was (scaling would spread a NaN into every weight).
  virtual void clip_by_global_norm(float* const* xs, const int64_t* ns, int count, float max_norm,
                                   float* norm_out) = 0;

  // ---- GEMM (row-major) ----------------------------------------------------------------------
  // For each of `batch` problems: C = alpha * op(A) op(B) + beta * C, op(A) [m, k], op(B) [k, n],
  // ld* are row strides, stride_* the distance between consecutive problems.
  virtual void gemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a,
                    int lda, int64_t stride_a, const float* b, int ldb, int64_t stride_b,
                    float beta, float* c, int ldc, int64_t stride_c, int batch) = 0;
  // A linear layer's GEMMs (row-major). Forward: y [rows, out] = x [rows, in] W^T + bias, W
  // [out, in], bias [out] (nullable) added to every row. Weight gradient: gw [out, in] = gy^T x and
  // gbias [out] (nullable) = the sum of gy's rows. On a GPU each is one GEMM whose epilogue adds
  // the bias or reduces its gradient (cuBLASLt), instead of a broadcast or a reduction launched
  // beside it.
  virtual void linear_forward(int rows, int in, int out, const float* x, const float* w,
                              const float* bias, float* y) = 0;
  virtual void linear_backward_weight(int rows, int in, int out, const float* x, const float* gy,
                                      float* gw, float* gbias) = 0;

  // ---- convolution ---------------------------------------------------------------------------
  virtual void conv2d_forward(const Conv2dDesc& d, const float* x, const float* w,
                              const float* bias /*nullable*/, float* y) = 0;
  virtual void conv2d_backward_data(const Conv2dDesc& d, const float* gy, const float* w,
                                    float* gx) = 0;
  virtual void conv2d_backward_weight(const Conv2dDesc& d, const float* x, const float* gy,
                                      float* gw, float* gbias /*nullable*/) = 0;

  // ---- normalisation -------------------------------------------------------------------------
  // Batch norm over x [n, c, hw] per channel. Training: batch statistics, saves mean and
  // inverse std, updates running stats (running = (1-momentum) running + momentum batch, the
  // variance unbiased).
  virtual void batchnorm_forward_train(int n, int c, int hw, const float* x, const float* gamma,
                                       const float* beta, float eps, float momentum, float* y,
                                       float* save_mean, float* save_invstd, float* running_mean,
                                       float* running_var) = 0;
  virtual void batchnorm_forward_eval(int n, int c, int hw, const float* x, const float* gamma,
                                      const float* beta, const float* running_mean,
                                      const float* running_var, float eps, float* y) = 0;
  virtual void batchnorm_backward(int n, int c, int hw, const float* x, const float* gy,
                                  const float* gamma, const float* save_mean,
                                  const float* save_invstd, float* gx, float* ggamma,
                                  float* gbeta) = 0;
  // Backward of the eval forward, whose statistics are constants: with s = 1 / sqrt(running_var
  // + eps) per channel (in double, as the forward folds it) and xhat = (x - running_mean) s,
  //   gx = gy gamma s,   ggamma = sum_{n,hw} gy xhat,   gbeta = sum_{n,hw} gy
  // (one pass; fine-tuning with frozen statistics runs it).
  virtual void batchnorm_backward_eval(int n, int c, int hw, const float* x, const float* gy,
                                       const float* gamma, const float* running_mean,
                                       const float* running_var, float eps, float* gx,
                                       float* ggamma, float* gbeta) = 0;
  // Layer norm over the last dimension d of x [rows, d]; saves mean and reciprocal std per row.
  virtual void layernorm_forward(int rows, int d, const float* x, const float* gamma,
                                 const float* beta, float eps, float* y, float* mean,
                                 float* rstd) = 0;
  // accumulate_gx: gx += the input gradient (autograd's sum with the residual branch's gradient,
  // in the same launch), else gx = it.
  virtual void layernorm_backward(int rows, int d, const float* x, const float* gy,
                                  const float* gamma, const float* mean, const float* rstd,
                                  float* gx, float* ggamma, float* gbeta, bool accumulate_gx) = 0;
  // Softmax over the last dimension of [rows, d].
  virtual void softmax_forward(int rows, int d, const float* x, float* y) = 0;
  virtual void softmax_backward(int rows, int d, const float* y, const float* gy, float* gx) = 0;

  // ---- attention -----------------------------------------------------------------------------
  // Fused scaled-dot-product attention, q, k, v, out [bh, t, dh]:
  //   out_i = sum_j softmax_j(scale * q_i . k_j) v_j,   lse_i = log sum_j exp(scale * q_i . k_j)
  // Only lse [bh, t] is saved; backward recomputes the probabilities from it.
  virtual void attention_forward(int bh, int t, int dh, float scale, const float* q, const float* k,
                                 const float* v, float* out, float* lse) = 0;
  virtual void attention_backward(int bh, int t, int dh, float scale, const float* q,
                                  const float* k, const float* v, const float* out,
                                  const float* gout, const float* lse, float* gq, float* gk,
                                  float* gv) = 0;
  // The same attention read in place from a transformer's packed projection, per (batch, head):
  //   qkv [b, t, 3, heads, dh] (the qkv linear layer's output as it is), out [b, t, heads, dh]
  //   (the layout the output projection reads), lse [b, heads, t]; backward writes gqkv packed
  //   like qkv. No gather of q, k, v, no permuted copy of the output, no scatter of gqkv.
  virtual void attention_forward_packed(int b, int heads, int t, int dh, float scale,
                                        const float* qkv, float* out, float* lse) = 0;
  virtual void attention_backward_packed(int b, int heads, int t, int dh, float scale,
                                         const float* qkv, const float* out, const float* gout,
                                         const float* lse, float* gqkv) = 0;

  // ---- vision ops ----------------------------------------------------------------------------
  virtual void patch_embed_forward(const PatchEmbedDesc& d, const float* image, const float* w,
                                   const float* bias, const float* cls, const float* pos,
                                   float* tokens) = 0;
  // Gradients of the parameters only (the image is data): gw [e, c*p*p], gbias [e], gcls [e],
  // gpos [tokens, e].
  virtual void patch_embed_backward(const PatchEmbedDesc& d, const float* image,
                                    const float* gtokens, float* gw, float* gbias, float* gcls,
                                    float* gpos) = 0;
  virtual void fusion_forward(const FusionDesc& d, const float* const* xs, float* y) = 0;
  // gx_i = sum over the outputs that read each source pixel of gy * [y > 0].
  virtual void fusion_backward(const FusionDesc& d, const float* y, const float* gy,
                               float* const* gxs) = 0;
  // Nearest resize by size, [n, c, h, w] -> [n, c, oh, ow]; backward scatters (sums) into gx.
  virtual void resize_nearest_forward(int n, int c, int h, int w, int oh, int ow, const float* x,
                                      float* y) = 0;
  virtual void resize_nearest_backward(int n, int c, int h, int w, int oh, int ow, const float* gy,
                                       float* gx) = 0;
  // Zero padding [n, c, h, w] -> [n, c, h + top + bottom, w + left + right].
  virtual void pad2d_forward(int n, int c, int h, int w, int top, int bottom, int left, int right,
                             const float* x, float* y) = 0;
  virtual void pad2d_backward(int n, int c, int h, int w, int top, int bottom, int left, int right,
                              const float* gy, float* gx) = 0;
  // Max pool; argmax holds, per output, the flat index (within its h*w plane) of the maximum.
  virtual void maxpool2d_forward(const Pool2dDesc& d, const float* x, float* y,
                                 int32_t* argmax) = 0;
  virtual void maxpool2d_backward(const Pool2dDesc& d, const float* gy, const int32_t* argmax,
                                  float* gx) = 0;

  // ---- loss ----------------------------------------------------------------------------------
  // Softmax cross-entropy from logits [rows, classes], labels int32 [rows], label smoothing s:
  //   target = (1 - s) onehot(label) + s / classes;  loss_r = lse_r - sum_c target_c logit_rc
  virtual void cross_entropy_forward(int rows, int classes, const float* logits,
                                     const int32_t* labels, float smoothing, float* loss,
                                     float* lse) = 0;
  // glogits[r, c] = gloss[r] * (softmax_rc - target_rc)
  virtual void cross_entropy_backward(int rows, int classes, const float* logits,
                                      const int32_t* labels, float smoothing, const float* lse,
                                      const float* gloss, float* glogits) = 0;
  // A training pass's running figures, kept on the device so that a step needs no transfer
  // (train/step_metrics.h reads them back once a log interval). sums: 4 device doubles,
  //   sums[0] += rows * loss[0];  sums[1] += rows r with argmax_c logits[r, c] == labels[r]
  //   (the first maximum);  sums[2] = loss[0];  sums[3] = step when loss[0] is not finite and
  //   sums[3] < 0 (the first step whose loss was not finite; -1 before).
  virtual void accumulate_step_metrics(int rows, int classes, const float* logits,
                                       const int32_t* labels, const float* loss, int64_t step,
                                       double* sums) = 0;

  // ---- dropout -------------------------------------------------------------------------------
  // Keeps element i when uniform(seed, i) >= p, scaling kept ones by 1/(1-p). The uniform comes
  // from a counter-based hash (engine/random.h: counter_uniform), identical on every device, so
  // backward recomputes the mask instead of storing it.
  virtual void dropout_forward(const float* x, float* y, int64_t n, float p, uint64_t seed) = 0;
  virtual void dropout_backward(const float* gy, float* gx, int64_t n, float p, uint64_t seed) = 0;
  // Dropout fused with what stands next to it in a transformer block (one kernel on a GPU, where
  // two launches and a round trip through memory bought nothing), with the mask above:
  //   dropout_add:  y = residual + dropout(x)    (its backward: g to residual, dropout's to x)
  //   gelu_dropout: y = dropout(gelu(x));  backward: gx = dropout(gy) * gelu'(x), x the input
  // Each rounds as the unfused ops do, so results equal theirs bit for bit.
  virtual void dropout_add_forward(const float* residual, const float* x, float* y, int64_t n,
                                   float p, uint64_t seed) = 0;
  virtual void gelu_dropout_forward(const float* x, float* y, int64_t n, float p,
                                    uint64_t seed) = 0;
  virtual void gelu_dropout_backward(const float* x, const float* gy, float* gx, int64_t n, float p,
                                     uint64_t seed) = 0;
  // GELU that keeps its slope, where storing gelu'(x) is cheaper than computing it twice (the
  // CPU: the erfc in doubles is most of GELU's time). Forward: y = dropout(gelu(x)) (no dropout
  // when p = 0) and slope = gelu'(x) rounded to float; backward: gx = dropout(gy) * slope. The
  // roundings of gelu_dropout above, so results equal its bit for bit. The slope is one more
  // saved tensor (x stays alive as the node's input): +71 MiB for ViT-Ti at batch 32. Backends
  // that return false (sim, cuda: there a second tensor's traffic costs more than the exp) never
  // see the two entries.
  virtual bool gelu_keeps_slope() const { return false; }
  virtual void gelu_slope_forward(const float* x, float* y, float* slope, int64_t n, float p,
                                  uint64_t seed);
  virtual void gelu_slope_backward(const float* slope, const float* gy, float* gx, int64_t n,
                                   float p, uint64_t seed);

  // ---- optimizers ----------------------------------------------------------------------------
  // Adam / AdamW for `count` tensors at once (one launch on a GPU, as llm.c does), each with its
  // own step t >= 1 (AdamTensor):
  //   g' = g + wd * p (Adam, decoupled = false)      m = b1 m + (1 - b1) g'
  //   v = b2 v + (1 - b2) g'^2                        p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 -
  //   b2^t)) + eps) AdamW (decoupled = true): p -= lr * wd * p before the update, g' = g.
  virtual void adam_step(const AdamTensor* tensors, int count, float lr, float beta1, float beta2,
                         float eps, float weight_decay, bool decoupled) = 0;
  // SGD with momentum: g' = g + wd p; buf = momentum buf + g'; p -= lr * (nesterov ? g' + momentum
  // buf : buf)
  virtual void sgd_step(int64_t n, float* p, const float* g, float* buf, float lr, float momentum,
                        float weight_decay, bool nesterov) = 0;
  // A model's exponential moving average (train/model_ema.h) for `count` tensors at once (one
  // launch on a GPU): average = decay * average + (1 - decay) * model, each element rounded as
  // unary(scale, decay) and then axpy(1 - decay) round it (the product decay * average alone).
  virtual void ema_update(const EmaTensor* tensors, int count, float decay) = 0;
};

// The backend of a device. cpu is always there; sim and cuda when built in (FORGE_SIM,
// FORGE_CUDA); asking for one that is not, or cuda without a usable GPU, throws a clear error.
Backend& backend(Device device);
// Called once by a backend library to make itself known (see engine/cuda).
void register_backend(Device device, Backend* (*factory)());

}  // namespace forge
