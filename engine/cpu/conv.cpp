// conv.cpp: CPU 2-D convolution through oneDNN primitives, and max pooling by an OpenMP loop.
//
// Convolution, x [n, c, h, w], weight [k, c, r, s], y [n, k, oh, ow], zero padding:
//   y[n, k, i, j] = bias[k] + sum_{c, a, b} x[n, c, i*stride - pad + a, j*stride - pad + b]
//                                          * weight[k, c, a, b]
// Its backward is two more convolutions, which oneDNN provides as primitives:
//   gx[n, c, p, q] = sum over the (k, i, j, a, b) with i*stride - pad + a = p, j*stride - pad + b
//                    = q of gy[n, k, i, j] * weight[k, c, a, b]          (backward data)
//   gw[k, c, a, b] = sum_{n, i, j} gy[n, k, i, j] * x[n, c, i*stride - pad + a, ...]
//   gbias[k]       = sum_{n, i, j} gy[n, k, i, j]                          (backward weights)
//
// Layouts: the caller's buffers are plain NCHW / OIHW. The primitives are created with
// format_tag::any so oneDNN may pick a blocked layout (nChw8c on AVX2) for which it has direct
// JIT kernels; each call then reorders in and out of that layout. Measured on the 2-core
// development machine (AVX2, shared) for n=32, c=k=64, 60x60, 3x3, pad 1, best of 5, reorders
// included: forward 56-75 GFLOP/s, backward data 63-82, backward weights 54-68; with plain
// NCHW primitives (im2col + GEMM) 37, 33 and 19 under the same load.
//
// Creating a primitive costs milliseconds (JIT code generation), so primitives are cached per
// Conv2dDesc: a training loop meets the same few layer shapes at every step.
#include <algorithm>
#include <array>
#include <dnnl.hpp>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "engine/cpu/cpu_backend.h"

namespace forge {

namespace {

using dnnl::memory;
using Tag = memory::format_tag;

// One oneDNN engine for the whole process, and an in-order stream per calling thread (a stream
// is not meant to be shared between threads; primitives are).
dnnl::engine& dnnl_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}
dnnl::stream& dnnl_stream() {
  thread_local dnnl::stream stream(dnnl_engine());
  return stream;
}

memory::desc f32_desc(const memory::dims& dims, Tag tag) {
  return memory::desc(dims, memory::data_type::f32, tag);
}

// The three primitives of one convolution shape, created on first use. Forward and backward
// weights exist in two variants, with and without bias.
struct ConvPrimitives {
  memory::desc x_md, w_md, y_md, b_md;  // the caller's plain layouts
  memory::dims strides, padding;
  std::unique_ptr<dnnl::convolution_forward::primitive_desc> fwd_pd[2];  // [has_bias]
  std::unique_ptr<dnnl::convolution_backward_data::primitive_desc> bwd_data_pd;
  std::unique_ptr<dnnl::convolution_backward_weights::primitive_desc> bwd_weight_pd[2];
  std::unique_ptr<dnnl::primitive> fwd[2], bwd_data, bwd_weight[2];

  explicit ConvPrimitives(const Conv2dDesc& d)
      : x_md(f32_desc({d.n, d.c, d.h, d.w}, Tag::nchw)),
        w_md(f32_desc({d.k, d.c, d.r, d.s}, Tag::oihw)),
        y_md(f32_desc({d.n, d.k, d.oh, d.ow}, Tag::nchw)),
        b_md(f32_desc({d.k}, Tag::x)),
        strides{d.stride, d.stride},
        padding{d.pad, d.pad} {}

  // The same shapes with the layout left to oneDNN.
  static memory::desc any(const memory::desc& md) { return f32_desc(md.dims(), Tag::any); }

  // The forward primitive descriptor, also the hint both backward primitives require.
  const dnnl::convolution_forward::primitive_desc& forward_pd(bool has_bias) {
    if (!fwd_pd[has_bias]) {
      dnnl::convolution_forward::desc desc =
          has_bias ? dnnl::convolution_forward::desc(
                         dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct,
                         any(x_md), any(w_md), b_md, any(y_md), strides, padding, padding)
                   : dnnl::convolution_forward::desc(
                         dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct,
                         any(x_md), any(w_md), any(y_md), strides, padding, padding);
      fwd_pd[has_bias] =
          std::make_unique<dnnl::convolution_forward::primitive_desc>(desc, dnnl_engine());
      fwd[has_bias] = std::make_unique<dnnl::convolution_forward>(*fwd_pd[has_bias]);
    }
    return *fwd_pd[has_bias];
  }

  const dnnl::convolution_backward_data::primitive_desc& backward_data_pd() {
    if (!bwd_data_pd) {
      dnnl::convolution_backward_data::desc desc(dnnl::algorithm::convolution_direct, any(x_md),
                                                 any(w_md), any(y_md), strides, padding, padding);
      bwd_data_pd = std::make_unique<dnnl::convolution_backward_data::primitive_desc>(
          desc, dnnl_engine(), forward_pd(false));
      bwd_data = std::make_unique<dnnl::convolution_backward_data>(*bwd_data_pd);
    }
    return *bwd_data_pd;
  }

  const dnnl::convolution_backward_weights::primitive_desc& backward_weight_pd(bool has_bias) {
    if (!bwd_weight_pd[has_bias]) {
      dnnl::convolution_backward_weights::desc desc =
          has_bias ? dnnl::convolution_backward_weights::desc(dnnl::algorithm::convolution_direct,
                                                              any(x_md), any(w_md), b_md, any(y_md),
                                                              strides, padding, padding)
                   : dnnl::convolution_backward_weights::desc(dnnl::algorithm::convolution_direct,
                                                              any(x_md), any(w_md), any(y_md),
                                                              strides, padding, padding);
      bwd_weight_pd[has_bias] =
          std::make_unique<dnnl::convolution_backward_weights::primitive_desc>(
              desc, dnnl_engine(), forward_pd(has_bias));
      bwd_weight[has_bias] =
          std::make_unique<dnnl::convolution_backward_weights>(*bwd_weight_pd[has_bias]);
    }
    return *bwd_weight_pd[has_bias];
  }
};

// The cached primitives of a shape. The map only grows (one entry per distinct layer shape), so
// references into it stay valid; the mutex guards lookup and lazy creation against training and
// evaluation threads meeting a new shape at once.
ConvPrimitives& conv_primitives(const Conv2dDesc& d) {
  static std::map<std::array<int, 11>, std::unique_ptr<ConvPrimitives>> cache;
  const std::array<int, 11> key{d.n, d.c, d.h, d.w, d.k, d.r, d.s, d.stride, d.pad, d.oh, d.ow};
  auto& entry = cache[key];
  if (!entry) entry = std::make_unique<ConvPrimitives>(d);
  return *entry;
}
std::mutex& conv_cache_mutex() {
  static std::mutex mutex;
  return mutex;
}

// A buffer in a primitive's chosen layout, from the backend's block cache (memory.cpp) rather
// than oneDNN's own allocator: the blocked copies of activations are tens of MB at batch 32, and a
// fresh allocation each call cost page faults and zeroing on every touch of its pages.
struct Scratch {
  void* data = nullptr;
  size_t bytes = 0;
  Scratch() = default;
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  ~Scratch() {
    if (data) cpu_backend().deallocate(data, bytes);
  }
  memory make(const memory::desc& md) {
    bytes = md.get_size();
    data = cpu_backend().allocate(bytes);
    return memory(md, dnnl_engine(), data);
  }
};

// An input of a primitive: the caller's plain buffer, reordered into the layout the primitive
// chose (in `scratch`) when that differs.
memory input_in_layout(const memory::desc& plain, const void* data, const memory::desc& chosen,
                       Scratch& scratch) {
  memory user(plain, dnnl_engine(), const_cast<void*>(data));
  if (chosen == plain) return user;
  memory inner = scratch.make(chosen);
  dnnl::reorder(user, inner).execute(dnnl_stream(), user, inner);
  return inner;
}

// An output of a primitive: the caller's buffer itself when the layouts agree, otherwise a
// scratch buffer in the chosen layout that finish_output() reorders back.
struct Output {
  memory user, inner;
};
Output output_in_layout(const memory::desc& plain, void* data, const memory::desc& chosen,
                        Scratch& scratch) {
  memory user(plain, dnnl_engine(), data);
  return {user, chosen == plain ? user : scratch.make(chosen)};
}
void finish_output(Output out) {
  if (out.inner.get() != out.user.get())
    dnnl::reorder(out.inner, out.user).execute(dnnl_stream(), out.inner, out.user);
  dnnl_stream().wait();
}

}  // namespace

void CpuBackend::conv2d_forward(const Conv2dDesc& d, const float* x, const float* w,
                                const float* bias, float* y) {
  std::unique_lock lock(conv_cache_mutex());
  ConvPrimitives& p = conv_primitives(d);
  const bool has_bias = bias != nullptr;
  const auto& pd = p.forward_pd(has_bias);
  dnnl::primitive& prim = *p.fwd[has_bias];
  lock.unlock();
  Scratch sx, sw, sy;
  std::unordered_map<int, memory> args{
      {DNNL_ARG_SRC, input_in_layout(p.x_md, x, pd.src_desc(), sx)},
      {DNNL_ARG_WEIGHTS, input_in_layout(p.w_md, w, pd.weights_desc(), sw)}};
  if (has_bias) args[DNNL_ARG_BIAS] = memory(p.b_md, dnnl_engine(), const_cast<float*>(bias));
  Output out = output_in_layout(p.y_md, y, pd.dst_desc(), sy);
  args[DNNL_ARG_DST] = out.inner;
  prim.execute(dnnl_stream(), args);
  finish_output(out);
}

void CpuBackend::conv2d_backward_data(const Conv2dDesc& d, const float* gy, const float* w,
                                      float* gx) {
  std::unique_lock lock(conv_cache_mutex());
  ConvPrimitives& p = conv_primitives(d);
  const auto& pd = p.backward_data_pd();
  dnnl::primitive& prim = *p.bwd_data;
  lock.unlock();
  Scratch sgx, sgy, sw;
  Output out = output_in_layout(p.x_md, gx, pd.diff_src_desc(), sgx);
  prim.execute(dnnl_stream(),
               {{DNNL_ARG_DIFF_DST, input_in_layout(p.y_md, gy, pd.diff_dst_desc(), sgy)},
                {DNNL_ARG_WEIGHTS, input_in_layout(p.w_md, w, pd.weights_desc(), sw)},
                {DNNL_ARG_DIFF_SRC, out.inner}});
  finish_output(out);
}

void CpuBackend::conv2d_backward_weight(const Conv2dDesc& d, const float* x, const float* gy,
                                        float* gw, float* gbias) {
  std::unique_lock lock(conv_cache_mutex());
  ConvPrimitives& p = conv_primitives(d);
  const bool has_bias = gbias != nullptr;
  const auto& pd = p.backward_weight_pd(has_bias);
  dnnl::primitive& prim = *p.bwd_weight[has_bias];
  lock.unlock();
  Scratch sgw, sx, sgy;
  Output out = output_in_layout(p.w_md, gw, pd.diff_weights_desc(), sgw);
  std::unordered_map<int, memory> args{
      {DNNL_ARG_SRC, input_in_layout(p.x_md, x, pd.src_desc(), sx)},
      {DNNL_ARG_DIFF_DST, input_in_layout(p.y_md, gy, pd.diff_dst_desc(), sgy)},
      {DNNL_ARG_DIFF_WEIGHTS, out.inner}};
  if (has_bias) args[DNNL_ARG_DIFF_BIAS] = memory(p.b_md, dnnl_engine(), gbias);
  prim.execute(dnnl_stream(), args);
  finish_output(out);
}

// Max pooling, one (sample, channel) plane per iteration; padding reads as -infinity, so a
// window's maximum always comes from the input (the op checks pad <= kernel / 2, hence every
// window holds at least one real pixel). argmax is the flat index y * w + x within the plane; ties
// keep the first maximum in row-major order (and a NaN never wins: `>` is false for it).
//
// The 2x2 stride-2 unpadded pool (the CNN's, on maps up to 120x120) has a loop of its own: the
// four candidates of a window compared in the same row-major order with selects instead of
// branches, so the compiler vectorises across windows; the general loop serves every other shape.
namespace {

void maxpool_plane_2x2(const Pool2dDesc& d, const float* xp, float* yp, int32_t* ap) {
  for (int oy = 0; oy < d.oh; ++oy) {
    const float* r0 = xp + int64_t(2 * oy) * d.w;
    const float* r1 = r0 + d.w;
    const int32_t row0 = 2 * oy * d.w, row1 = row0 + d.w;
    float* yr = yp + int64_t(oy) * d.ow;
    int32_t* ar = ap + int64_t(oy) * d.ow;
#pragma omp simd
    for (int ox = 0; ox < d.ow; ++ox) {
      const float v00 = r0[2 * ox], v01 = r0[2 * ox + 1], v10 = r1[2 * ox], v11 = r1[2 * ox + 1];
      float best = -std::numeric_limits<float>::infinity();
      int32_t at = row0 + 2 * ox;
      at = v00 > best ? row0 + 2 * ox : at;
      best = v00 > best ? v00 : best;
      at = v01 > best ? row0 + 2 * ox + 1 : at;
      best = v01 > best ? v01 : best;
      at = v10 > best ? row1 + 2 * ox : at;
      best = v10 > best ? v10 : best;
      at = v11 > best ? row1 + 2 * ox + 1 : at;
      best = v11 > best ? v11 : best;
      yr[ox] = best;
      ar[ox] = at;
    }
  }
}

void maxpool_plane(const Pool2dDesc& d, const float* xp, float* yp, int32_t* ap) {
  for (int oy = 0; oy < d.oh; ++oy) {
    const int y0 = std::max(oy * d.stride - d.pad, 0);
    const int y1 = std::min(oy * d.stride - d.pad + d.kernel, d.h);
    for (int ox = 0; ox < d.ow; ++ox) {
      const int x0 = std::max(ox * d.stride - d.pad, 0);
      const int x1 = std::min(ox * d.stride - d.pad + d.kernel, d.w);
      float best = -std::numeric_limits<float>::infinity();
      int32_t best_at = y0 * d.w + x0;
      for (int iy = y0; iy < y1; ++iy)
        for (int ix = x0; ix < x1; ++ix)
          if (xp[iy * d.w + ix] > best) {
            best = xp[iy * d.w + ix];
            best_at = iy * d.w + ix;
          }
      yp[oy * d.ow + ox] = best;
      ap[oy * d.ow + ox] = best_at;
    }
  }
}

bool is_2x2_stride_2(const Pool2dDesc& d) {
  return d.kernel == 2 && d.stride == 2 && d.pad == 0;
}

// The backward of the 2x2 stride-2 pool: windows do not overlap, so each input pixel receives
// the gradient of at most one output, and gx is written once, in order, without the zero fill and
// the scattered adds: gx = gy of its window where the pixel is that window's argmax, else 0. Odd
// last rows and columns, in no window, are zero.
void maxpool_plane_2x2_backward(const Pool2dDesc& d, const float* gyp, const int32_t* ap,
                                float* gxp) {
  for (int iy = 0; iy < 2 * d.oh; ++iy) {
    const int64_t o_row = int64_t(iy / 2) * d.ow;
    const int32_t row = iy * d.w;
    const int32_t* ar = ap + o_row;
    const float* gr_y = gyp + o_row;
    float* gr = gxp + row;
    for (int ox = 0; ox < d.ow; ++ox) {
      const int32_t at = ar[ox] - row - 2 * ox;  // 0 or 1 when the maximum is in this row
      const float g = gr_y[ox];
      gr[2 * ox] = at == 0 ? g : 0.f;
      gr[2 * ox + 1] = at == 1 ? g : 0.f;
    }
    std::fill(gr + 2 * d.ow, gr + d.w, 0.f);
  }
  std::fill(gxp + int64_t(2 * d.oh) * d.w, gxp + int64_t(d.h) * d.w, 0.f);
}

}  // namespace

void CpuBackend::maxpool2d_forward(const Pool2dDesc& d, const float* x, float* y, int32_t* argmax) {
  const int64_t planes = int64_t(d.n) * d.c, in_plane = int64_t(d.h) * d.w,
                out_plane = int64_t(d.oh) * d.ow;
  const bool fast = is_2x2_stride_2(d);
#pragma omp parallel for if (planes * out_plane > 4096)
  for (int64_t p = 0; p < planes; ++p) {
    if (fast)
      maxpool_plane_2x2(d, x + p * in_plane, y + p * out_plane, argmax + p * out_plane);
    else
      maxpool_plane(d, x + p * in_plane, y + p * out_plane, argmax + p * out_plane);
  }
}

// Backward: the maximum is the only input each output depends on, with derivative 1, so
//   gx[p, i] = sum of gy[p, o] over the outputs o whose argmax is i
// (a sum: overlapping windows, stride < kernel, can pick the same pixel). Planes are independent.
void CpuBackend::maxpool2d_backward(const Pool2dDesc& d, const float* gy, const int32_t* argmax,
                                    float* gx) {
  const int64_t planes = int64_t(d.n) * d.c, in_plane = int64_t(d.h) * d.w,
                out_plane = int64_t(d.oh) * d.ow;
  const bool fast = is_2x2_stride_2(d);
#pragma omp parallel for if (planes * in_plane > 4096)
  for (int64_t p = 0; p < planes; ++p) {
    float* gxp = gx + p * in_plane;
    const float* gyp = gy + p * out_plane;
    const int32_t* ap = argmax + p * out_plane;
    if (fast) {
      maxpool_plane_2x2_backward(d, gyp, ap, gxp);
      continue;
    }
    std::fill(gxp, gxp + in_plane, 0.f);
    for (int64_t o = 0; o < out_plane; ++o) gxp[ap[o]] += gyp[o];
  }
}

}  // namespace forge
