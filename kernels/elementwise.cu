// elementwise.cu: fill, strided gather/scatter, broadcast binary ops, unary ops and the backward of
// relu and gelu, axpy, dropout. One thread per element in grid-stride loops (launch_utils.cuh):
// grid = min(ceil(n / 256), 4096) blocks of 256 threads. Nothing is saved for backward here; the
// ops that need x keep it themselves, and dropout recomputes its mask.
//
//   fill:     x[i] = value
//   gather:   dst[i] = src[view(i)]
//   scatter:  dst[view(i)] (+)= src[i]
//   binary:   out[i] = a[av(i)] op b[bv(i)]   (stride 0 broadcasts)
//   (view(i): the i-th element's offset, ViewIndexer in launch_utils.cuh: one precomputed
//   multiply-high division per inner dimension, in 32 bits below 2^31 elements)
//   unary:    y = -x, e^x, ln x, sqrt x, x^2, max(x, 0), gelu(x) = x Phi(x), alpha x, x + alpha
//   backward: relu: gx = gy [x > 0];   gelu: gx = gy (Phi(x) + x phi(x))
//   (gelu in double and rounded once, as on the CPU, or where fp64 is slow in float: gelu_math.h)
//   axpy:     y += alpha x
//   dropout:  y = x / (1 - p) where counter_uniform(seed, i) >= p, else 0 (engine/random.h: the
//             same hash on every device, so masks equal the CPU's bit for bit); a seed made by
//             dropout_seed is derived in the kernel from the step in device memory
//             (engine/cuda/step_values.h), so a replayed CUDA graph draws its own step's masks
//   dropout_add:  y = residual + dropout(x)
//   gelu_dropout: y = dropout(gelu(x));  backward gx = dropout(gy) gelu'(x)
//             (each product is rounded before the sum, as the unfused kernels round it)
// Views are coalesced first (launch_utils.cuh): a contiguous one is walked without any division.
#include <cmath>
#include <stdexcept>

#include "engine/cuda/gpu_impl.h"
#include "engine/gelu_math.h"
#include "engine/random.h"
#include "kernels/kernel_util.cuh"

namespace forge::FORGE_GPU_NS {

// ---- kernels --------------------------------------------------------------------------------

__global__ void fill_kernel(float* x, int64_t n, float value) {
  for (int64_t i = grid_first(); i < n; i += grid_stride()) x[i] = value;
}

template <class Word>
__global__ void gather_kernel(const float* src, ViewIndexer<Word> view, float* dst, int64_t n) {
  for (int64_t i = grid_first(); i < n; i += grid_stride()) dst[i] = src[view(Word(i))];
}

// Several i may reach one destination when the view has a zero stride (a broadcast's backward):
// `atomic` then makes each += indivisible. The order of the additions is whatever the threads'
// order is, so such sums vary in the last bits between runs; views without overlap take the plain
// path and are exact.
template <class Word>
__global__ void scatter_kernel(const float* src, float* dst, ViewIndexer<Word> view, int64_t n,
                               bool accumulate, bool atomic) {
  for (int64_t i = grid_first(); i < n; i += grid_stride()) {
    float* d = dst + view(Word(i));
    if (atomic)
      atomicAdd(d, src[i]);
    else if (accumulate)
      *d += src[i];
    else
      *d = src[i];
  }
}

template <class Word>
__global__ void binary_kernel(BinaryOp op, const float* a, ViewIndexer<Word> av, const float* b,
                              ViewIndexer<Word> bv, float* out, int64_t n) {
  for (int64_t i = grid_first(); i < n; i += grid_stride()) {
    const float x = a[av(Word(i))], y = b[bv(Word(i))];
    float r = 0.f;
    switch (op) {  // the same op for every thread: no divergence
      case BinaryOp::add:
        r = x + y;
        break;
      case BinaryOp::sub:
        r = x - y;
        break;
      case BinaryOp::mul:
        r = x * y;
        break;
      case BinaryOp::div:
        r = x / y;
        break;
    }
    out[i] = r;
  }
}

__global__ void unary_kernel(UnaryOp op, const float* x, float* y, int64_t n, float alpha,
                             bool float_gelu) {
  for (int64_t i = grid_first(); i < n; i += grid_stride()) {
    const float v = x[i];
    float r = 0.f;
    switch (op) {
      case UnaryOp::neg:
        r = -v;
        break;
      case UnaryOp::exp:
        r = expf(v);
        break;
      case UnaryOp::log:
        r = logf(v);
        break;
      case UnaryOp::sqrt:
        r = sqrtf(v);
        break;
      case UnaryOp::square:
        r = v * v;
        break;
      case UnaryOp::relu:
        r = v > 0.f ? v : 0.f;
        break;
      case UnaryOp::gelu:
        // engine/gelu_math.h: the double path shared with the CPU, or the float one
        r = float_gelu ? gelu_forward_float(v) : gelu_forward_value(v);
        break;
      case UnaryOp::scale:
        r = alpha * v;
        break;
      case UnaryOp::add_scalar:
        r = v + alpha;
        break;
    }
    y[i] = r;
  }
}

// d/dx x Phi(x) = Phi(x) + x phi(x), phi(x) = exp(-x^2 / 2) / sqrt(2 pi) (engine/gelu_math.h).
__global__ void unary_backward_kernel(bool gelu, const float* x, const float* gy, float* gx,
                                      int64_t n, bool float_gelu) {
  for (int64_t i = grid_first(); i < n; i += grid_stride()) {
    const float v = x[i];
    if (gelu) {
      gx[i] = gy[i] * (float_gelu ? gelu_slope_float(v) : gelu_slope_value(v));
    } else {
      gx[i] = v > 0.f ? gy[i] : 0.f;
    }
  }
}

__global__ void axpy_kernel(float alpha, const float* x, float* y, int64_t n) {
  for (int64_t i = grid_first(); i < n; i += grid_stride()) y[i] += alpha * x[i];
}

__global__ void dropout_kernel(const float* x, float* y, int64_t n, float p, float keep_scale,
                               SeedArg seed_arg) {
  const uint64_t seed = seed_arg.get();
  for (int64_t i = grid_first(); i < n; i += grid_stride())
    y[i] = counter_uniform(seed, uint64_t(i)) >= p ? x[i] * keep_scale : 0.f;
}

__global__ void dropout_add_kernel(const float* residual, const float* x, float* y, int64_t n,
                                   float p, float keep_scale, SeedArg seed_arg) {
  const uint64_t seed = seed_arg.get();
  for (int64_t i = grid_first(); i < n; i += grid_stride()) {
    // __fmul_rn: rounded before the sum, as the unfused dropout kernel stores it (an FMA would not)
    const float kept = counter_uniform(seed, uint64_t(i)) >= p ? __fmul_rn(x[i], keep_scale) : 0.f;
    y[i] = residual[i] + kept;
  }
}

__global__ void gelu_dropout_kernel(const float* x, float* y, int64_t n, float p, float keep_scale,
                                    SeedArg seed_arg, bool float_gelu) {
  const uint64_t seed = seed_arg.get();
  for (int64_t i = grid_first(); i < n; i += grid_stride()) {
    const float v = x[i];
    const float a = float_gelu ? gelu_forward_float(v) : gelu_forward_value(v);
    y[i] = counter_uniform(seed, uint64_t(i)) >= p ? a * keep_scale : 0.f;
  }
}

__global__ void gelu_dropout_backward_kernel(const float* x, const float* gy, float* gx, int64_t n,
                                             float p, float keep_scale, SeedArg seed_arg,
                                             bool float_gelu) {
  const uint64_t seed = seed_arg.get();
  for (int64_t i = grid_first(); i < n; i += grid_stride()) {
    const float v = x[i];
    const float g = counter_uniform(seed, uint64_t(i)) >= p ? gy[i] * keep_scale : 0.f;
    gx[i] = g * (float_gelu ? gelu_slope_float(v) : gelu_slope_value(v));
  }
}

// ---- launchers ------------------------------------------------------------------------------

void GpuBackend::fill(float* x, int64_t n, float value) {
  FORGE_LAUNCH(fill_kernel, dim3(grid_blocks(n)), dim3(kBlockThreads), 0, kStream, x, n, value);
  FORGE_CHECK_LAUNCH("fill_kernel");
}

void GpuBackend::gather(const float* src_base, const StridedView& src, float* dst) {
  const int64_t n = view_numel(src);
  StridedView view = src;
  StridedView* views[] = {&view};
  coalesce_views(views, 1);
  with_index_word(n, [&](auto word) {
    using Word = decltype(word);
    FORGE_LAUNCH(gather_kernel<Word>, dim3(grid_blocks(n)), dim3(kBlockThreads), 0, kStream,
                 src_base, ViewIndexer<Word>(view), dst, n);
  });
  FORGE_CHECK_LAUNCH("gather_kernel");
}

void GpuBackend::scatter(const float* src, float* dst_base, const StridedView& dst,
                         bool accumulate) {
  const int64_t n = view_numel(dst);
  bool overlapping = false;  // a zero stride over an extent > 1: several i, one destination
  for (int d = 0; d < dst.ndim; ++d) overlapping |= dst.strides[d] == 0 && dst.shape[d] > 1;
  StridedView view = dst;
  StridedView* views[] = {&view};
  coalesce_views(views, 1);
  with_index_word(n, [&](auto word) {
    using Word = decltype(word);
    FORGE_LAUNCH(scatter_kernel<Word>, dim3(grid_blocks(n)), dim3(kBlockThreads), 0, kStream, src,
                 dst_base, ViewIndexer<Word>(view), n, accumulate, accumulate && overlapping);
  });
  FORGE_CHECK_LAUNCH("scatter_kernel");
}

void GpuBackend::binary(BinaryOp op, const float* a, const StridedView& av, const float* b,
                        const StridedView& bv, float* out) {
  const int64_t n = view_numel(av);
  StridedView a_view = av, b_view = bv;
  StridedView* views[] = {&a_view, &b_view};
  coalesce_views(views, 2);
  with_index_word(n, [&](auto word) {
    using Word = decltype(word);
    FORGE_LAUNCH(binary_kernel<Word>, dim3(grid_blocks(n)), dim3(kBlockThreads), 0, kStream, op, a,
                 ViewIndexer<Word>(a_view), b, ViewIndexer<Word>(b_view), out, n);
  });
  FORGE_CHECK_LAUNCH("binary_kernel");
}

void GpuBackend::unary(UnaryOp op, const float* x, float* y, int64_t n, float alpha) {
  FORGE_LAUNCH(unary_kernel, dim3(grid_blocks(n)), dim3(kBlockThreads), 0, kStream, op, x, y, n,
               alpha, impl_->float_gelu);
  FORGE_CHECK_LAUNCH("unary_kernel");
}

void GpuBackend::unary_backward(UnaryOp op, const float* x, const float* gy, float* gx, int64_t n) {
  if (op != UnaryOp::relu && op != UnaryOp::gelu)
    throw std::invalid_argument("unary_backward: only relu and gelu have a backward primitive");
  FORGE_LAUNCH(unary_backward_kernel, dim3(grid_blocks(n)), dim3(kBlockThreads), 0, kStream,
               op == UnaryOp::gelu, x, gy, gx, n, impl_->float_gelu);
  FORGE_CHECK_LAUNCH("unary_backward_kernel");
}

void GpuBackend::axpy(float alpha, const float* x, float* y, int64_t n) {
  FORGE_LAUNCH(axpy_kernel, dim3(grid_blocks(n)), dim3(kBlockThreads), 0, kStream, alpha, x, y, n);
  FORGE_CHECK_LAUNCH("axpy_kernel");
}

void GpuBackend::dropout_forward(const float* x, float* y, int64_t n, float p, uint64_t seed) {
  const float keep_scale = 1.f / (1.f - p);  // computed as the CPU does, so outputs match exactly
  FORGE_LAUNCH(dropout_kernel, dim3(grid_blocks(n)), dim3(kBlockThreads), 0, kStream, x, y, n, p,
               keep_scale, impl_->step_values.seed(*this, seed));
  FORGE_CHECK_LAUNCH("dropout_kernel");
}

void GpuBackend::dropout_backward(const float* gy, float* gx, int64_t n, float p, uint64_t seed) {
  dropout_forward(gy, gx, n, p, seed);  // the same mask and scale: dy/dx is diagonal
}

void GpuBackend::dropout_add_forward(const float* residual, const float* x, float* y, int64_t n,
                                     float p, uint64_t seed) {
  const float keep_scale = 1.f / (1.f - p);
  FORGE_LAUNCH(dropout_add_kernel, dim3(grid_blocks(n)), dim3(kBlockThreads), 0, kStream, residual,
               x, y, n, p, keep_scale, impl_->step_values.seed(*this, seed));
  FORGE_CHECK_LAUNCH("dropout_add_kernel");
}

void GpuBackend::gelu_dropout_forward(const float* x, float* y, int64_t n, float p, uint64_t seed) {
  const float keep_scale = 1.f / (1.f - p);
  FORGE_LAUNCH(gelu_dropout_kernel, dim3(grid_blocks(n)), dim3(kBlockThreads), 0, kStream, x, y, n,
               p, keep_scale, impl_->step_values.seed(*this, seed), impl_->float_gelu);
  FORGE_CHECK_LAUNCH("gelu_dropout_kernel");
}

void GpuBackend::gelu_dropout_backward(const float* x, const float* gy, float* gx, int64_t n,
                                       float p, uint64_t seed) {
  const float keep_scale = 1.f / (1.f - p);
  FORGE_LAUNCH(gelu_dropout_backward_kernel, dim3(grid_blocks(n)), dim3(kBlockThreads), 0, kStream,
               x, gy, gx, n, p, keep_scale, impl_->step_values.seed(*this, seed),
               impl_->float_gelu);
  FORGE_CHECK_LAUNCH("gelu_dropout_backward_kernel");
}

}  // namespace forge::FORGE_GPU_NS
