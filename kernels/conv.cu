// conv.cu: 2-D convolution, NCHW, as im2col + GEMM (the GEMM is GpuBackend::gemm: cuBLAS on cuda,
// the host GEMM on sim).
//
// x [n, c, h, w], weight W [k, c, r, s] = [k, crs] with crs = c*r*s, y [n, k, oh, ow], P = oh*ow:
//   col_n [crs, P],  col_n[(ch, a, b), (i, j)] = x[n, ch, i*stride - pad + a, j*stride - pad + b]
//                                                (0 outside the image: zero padding)
//   y_n   = W col_n + bias                       (forward)
//   gcol_n = W^T gy_n,  gx_n = col2im(gcol_n)    (backward data)
//   gW    = sum_n gy_n col_n^T,  gbias[k] = sum_{n, i, j} gy[n, k, i, j]   (backward weight)
// col2im is the transpose of im2col: gx[n, ch, y, x] sums gcol_n over every (a, b, i, j) with
// i*stride - pad + a = y and j*stride - pad + b = x. Written as a GATHER, one thread per gx
// element visiting the r*s taps that can reach it, it needs no atomics and sums in a fixed order.
//
// gbias: channel sums of gy over many blocks a channel (slab_reduce.cuh).
// Images go through in chunks whose col matrices fit a scratch cap; each chunk is one batched GEMM
// (forward, backward data). gW sums over images, which a batched GEMM cannot do, so backward
// weight runs one GEMM per image accumulating into gW (beta = 1 after the first).
// Nothing is saved for backward beyond what the op keeps (x and W); col is rebuilt.
//
// On cuda built with cuDNN (FORGE_CUDNN) the convolutions themselves go to cuDNN
// (engine/cuda/cudnn_conv.h) unless FORGE_CONV=im2col (engine/cuda/conv_path.h); these kernels run
// where cuDNN has no engine for a shape, and always on sim. The bias and its gradient are these
// kernels on both paths. At --precision bf16 cuDNN gets each direction's two inputs in bf16 and
// writes fp32 (fp32 compute); where it has no engine for that mix, im2col's bf16 GEMM runs.
#include <algorithm>

#include "engine/cuda/gpu_impl.h"
#include "kernels/bf16_convert.h"
#include "kernels/kernel_util.cuh"
#include "kernels/slab_reduce.cuh"

namespace forge::FORGE_GPU_NS {
namespace {

// Upper bound on the im2col scratch, in floats (64 MiB): a chunk holds as many images as fit.
constexpr int64_t kMaxColFloats = int64_t(1) << 24;

// Index math (kernels/fast_divmod.cuh): every division by a shape extent is a multiply-high and a
// shift with a magic number the host precomputes; the kernels never divide. Word is uint32_t where
// every numerator a kernel divides is below 2^31 (with_index_word on the largest one: the element
// count, or y + pad and x + pad in col2im), uint64_t otherwise; the grid-stride loops run in Word
// too (e + stride < 2^31 + 2^20 < 2^32: no wrap), so a 32-bit instantiation has no 64-bit
// division at all, not even nvcc's trip count. scripts/sass_check.sh checks the PTX for it.
template <class Word>
struct Im2colDivisors {
  FastDivmod<Word> pixels, rows, s, r, ow;  // P = oh*ow, crs, then the digits of a row and a pixel
};
template <class Word>
struct Col2imDivisors {
  FastDivmod<Word> w, h, c, stride;
};
template <class Word>
struct BiasDivisors {
  FastDivmod<Word> pixels, k;
};
// FastDivmod needs a divisor >= 1; an extent 0 makes an empty tensor that no thread indexes.
template <class Word>
FastDivmod<Word> divisor(int64_t extent) {
  return FastDivmod<Word>(std::max<int64_t>(extent, 1));
}

// col [images, crs, P] of images [n0, n0 + images); one thread per col element, consecutive threads
// on consecutive output pixels (reads along an image row).
template <class Word>
__global__ void im2col_kernel(Conv2dDesc d, Im2colDivisors<Word> div, Word total, const float* x,
                              float* col) {
  for (Word e = Word(grid_first()); e < total; e += Word(grid_stride())) {
    Word image_row, pixel, image, row, channel_tap, b, ch, a, i, j;
    div.pixels.divmod(e, image_row, pixel);  // e = image_row * P + pixel
    div.rows.divmod(image_row, image, row);  // image_row = image * crs + row
    div.s.divmod(row, channel_tap, b);       // row = (ch * r + a) * s + b
    div.r.divmod(channel_tap, ch, a);
    div.ow.divmod(pixel, i, j);  // pixel = i * ow + j
    const int iy = int(i) * d.stride - d.pad + int(a);
    const int ix = int(j) * d.stride - d.pad + int(b);
    const bool inside = iy >= 0 && iy < d.h && ix >= 0 && ix < d.w;
    col[e] = inside ? x[((int64_t(image) * d.c + int64_t(ch)) * d.h + iy) * d.w + ix] : 0.f;
  }
}

// gx [images, c, h, w] from gcol [images, crs, P]: for each tap (a, b) the output pixel (i, j)
// that read (y, x) through it, if any: i = (y + pad - a) / stride when that divides exactly.
// Those taps are a = (y + pad) % stride + m stride, m = 0, 1, ..., with i = (y + pad) / stride - m:
// one division per element instead of one per tap, and the same taps summed in the same order
// (a, then b, ascending) as a loop over every tap skipping the others.
template <class Word>
__global__ void col2im_kernel(Conv2dDesc d, Col2imDivisors<Word> div, Word total, const float* gcol,
                              float* gx) {
  const int64_t pixels = int64_t(d.oh) * d.ow, rows = int64_t(d.c) * d.r * d.s;
  for (Word e = Word(grid_first()); e < total; e += Word(grid_stride())) {
    Word image_channel_y, x, image_channel, y, image, ch, first_a, last_i, first_b, last_j;
    div.w.divmod(e, image_channel_y, x);  // e = ((image * c + ch) * h + y) * w + x
    div.h.divmod(image_channel_y, image_channel, y);
    div.c.divmod(image_channel, image, ch);
    div.stride.divmod(y + Word(d.pad), last_i, first_a);  // y + pad = last_i * stride + first_a
    div.stride.divmod(x + Word(d.pad), last_j, first_b);
    const float* g = gcol + int64_t(image) * rows * pixels;
    float sum = 0.f;
    for (int a = int(first_a), i = int(last_i); a < d.r && i >= 0; a += d.stride, --i) {
      if (i >= d.oh) continue;
      for (int b = int(first_b), j = int(last_j); b < d.s && j >= 0; b += d.stride, --j) {
        if (j >= d.ow) continue;
        sum += g[((int64_t(ch) * d.r + a) * d.s + b) * pixels + int64_t(i) * d.ow + j];
      }
    }
    gx[e] = sum;
  }
}

// y [n, k, P] += bias[k].
template <class Word>
__global__ void add_channel_bias_kernel(Word total, BiasDivisors<Word> div, const float* bias,
                                        float* y) {
  for (Word e = Word(grid_first()); e < total; e += Word(grid_stride())) {
    Word image, channel;
    div.k.divmod(div.pixels.div(e), image, channel);  // e = (image * k + channel) * P + pixel
    y[e] += bias[channel];
  }
}

// gbias[k] = sum over n and pixels of gy[n, k, :]: channel sums over many blocks a channel, the
// last block of each adding the slabs' partials in a fixed order (slab_reduce.cuh; no atomics
// on floats, so the same sum every run).
__global__ void channel_sum_kernel(ChannelSlabs s, const float* gy, float* partials,
                                   unsigned* tickets, float* gbias) {
  float* const outs[1] = {gbias};
  channel_slab_sums<1>(
      s, blockIdx.x, [&](int64_t at, float(&acc)[1]) { acc[0] += gy[at]; }, partials, tickets,
      outs);
}

int64_t col_floats_per_image(const Conv2dDesc& d) {
  return int64_t(d.c) * d.r * d.s * d.oh * d.ow;
}
// Degenerate shapes (n = 0, or no output pixels so that col is empty) make one chunk of all the
// images: [1, n] would be an empty range to clamp to, and kMaxColFloats / 0 is undefined.
int images_per_chunk(const Conv2dDesc& d) {
  const int64_t per_image = col_floats_per_image(d);
  if (d.n == 0 || per_image == 0) return std::max(d.n, 1);
  return int(std::clamp<int64_t>(kMaxColFloats / per_image, 1, d.n));
}

void launch_im2col(const Conv2dDesc& d, int images, const float* x, float* col) {
  const int64_t total = images * col_floats_per_image(d);
  with_index_word(total, [&](auto word) {
    using Word = decltype(word);
    const Im2colDivisors<Word> div{divisor<Word>(int64_t(d.oh) * d.ow),
                                   divisor<Word>(int64_t(d.c) * d.r * d.s), divisor<Word>(d.s),
                                   divisor<Word>(d.r), divisor<Word>(d.ow)};
    FORGE_LAUNCH(im2col_kernel<Word>, dim3(grid_blocks(total)), dim3(kBlockThreads), 0, kStream, d,
                 div, Word(total), x, col);
  });
  FORGE_CHECK_LAUNCH("im2col_kernel");
}

// gx [images, c, h, w] = col2im(gcol [images, crs, P]).
void launch_col2im(const Conv2dDesc& d, int images, const float* gcol, float* gx) {
  const int64_t total = int64_t(images) * d.c * d.h * d.w;
  // col2im also divides y + pad and x + pad (y < h, x < w) by the stride.
  const int64_t largest = std::max({total, int64_t(d.h) + d.pad, int64_t(d.w) + d.pad});
  with_index_word(largest, [&](auto word) {
    using Word = decltype(word);
    const Col2imDivisors<Word> div{divisor<Word>(d.w), divisor<Word>(d.h), divisor<Word>(d.c),
                                   divisor<Word>(d.stride)};
    FORGE_LAUNCH(col2im_kernel<Word>, dim3(grid_blocks(total)), dim3(kBlockThreads), 0, kStream, d,
                 div, Word(total), gcol, gx);
  });
  FORGE_CHECK_LAUNCH("col2im_kernel");
}

#if FORGE_CUDNN
// Whether a call may go to cuDNN: unless FORGE_CONV=im2col, for shapes with something to compute
// (cuDNN refuses zero-sized tensors; im2col handles them).
bool cudnn_may_run(ConvPath path, const Conv2dDesc& d) {
  return path == ConvPath::cudnn && d.n > 0 && d.c > 0 && d.k > 0 && d.oh > 0 && d.ow > 0;
}

// The sizes of a convolution's tensors, in floats.
int64_t x_floats(const Conv2dDesc& d) {
  return int64_t(d.n) * d.c * d.h * d.w;
}
int64_t w_floats(const Conv2dDesc& d) {
  return int64_t(d.k) * d.c * d.r * d.s;
}
int64_t y_floats(const Conv2dDesc& d) {
  return int64_t(d.n) * d.k * d.oh * d.ow;
}

// One cuDNN direction with inputs a (na floats) and b (nb floats) and an fp32 output: as they are
// in fp32 and tf32 (cuDNN's fp32 engines are chosen without TF32: docs/GPU_BACKEND.md); at
// --precision bf16 a and b rounded to bf16 first (`bf16_types`: which of x, w, y are bf16), the
// output still fp32 with fp32 compute, as the im2col path's bf16 GEMM gives. `run(types, a, b)`
// returns false where cuDNN has no engine for the types; the caller then runs im2col.
template <typename Run>
bool run_cudnn(GpuBackend& gpu, MatmulPrecision precision, ConvTypes bf16_types, const float* a,
               int64_t na, const float* b, int64_t nb, Run run) {
  if (precision != MatmulPrecision::bf16) return run(kConvFp32, a, b);
  Bf16Scratch a16(gpu, na), b16(gpu, nb);
  convert_to_bf16(a, na, a16.data());
  convert_to_bf16(b, nb, b16.data());
  return run(bf16_types, a16.data(), b16.data());
}
constexpr ConvDtype kF32 = ConvDtype::fp32, kB16 = ConvDtype::bf16;
#endif

// y [n, k, P] += bias[k] (nothing without a bias).
void add_conv_bias(const Conv2dDesc& d, const float* bias, float* y) {
  const int64_t total = int64_t(d.n) * d.k * d.oh * d.ow;
  if (!bias || total == 0) return;
  with_index_word(total, [&](auto word) {
    using Word = decltype(word);
    const BiasDivisors<Word> div{divisor<Word>(int64_t(d.oh) * d.ow), divisor<Word>(d.k)};
    FORGE_LAUNCH(add_channel_bias_kernel<Word>, dim3(grid_blocks(total)), dim3(kBlockThreads), 0,
                 kStream, Word(total), div, bias, y);
  });
  FORGE_CHECK_LAUNCH("add_channel_bias_kernel");
}

// gbias[k] = sum of gy over images and pixels (nothing without a bias), over many blocks a channel.
void conv_bias_gradient(GpuBackend& gpu, ReductionTickets& tickets, const Conv2dDesc& d,
                        const float* gy, float* gbias) {
  if (!gbias || d.k == 0) return;  // k = 0: no channel, and an empty grid is invalid on a GPU
  const ChannelSlabs s = channel_slabs(d.n, d.k, int64_t(d.oh) * d.ow);
  DeviceScratch partials(gpu, s.slabs > 1 ? int64_t(d.k) * s.slabs : 0);
  unsigned* counters = tickets.get(gpu, size_t(d.k));
  FORGE_LAUNCH(channel_sum_kernel, dim3(s.blocks()), dim3(kBlockThreads), 0, kStream, s, gy,
               partials.data(), counters, gbias);
  FORGE_CHECK_LAUNCH(channel_sum_kernel);
}

}  // namespace

void GpuBackend::conv2d_forward(const Conv2dDesc& d, const float* x, const float* w,
                                const float* bias, float* y) {
#if FORGE_CUDNN
  const auto forward = [&](ConvTypes t, const void* xs, const void* ws) {
    return impl_->cudnn.forward(*this, d, t, xs, ws, y);
  };
  if (cudnn_may_run(impl_->conv_path, d) && run_cudnn(*this, impl_->precision, {kB16, kB16, kF32},
                                                      x, x_floats(d), w, w_floats(d), forward))
    return add_conv_bias(d, bias, y);
#endif
  const int crs = d.c * d.r * d.s, pixels = d.oh * d.ow, chunk = images_per_chunk(d);
  DeviceScratch col(*this, chunk * col_floats_per_image(d));
  for (int n0 = 0; n0 < d.n; n0 += chunk) {
    const int images = std::min(chunk, d.n - n0);
    launch_im2col(d, images, x + int64_t(n0) * d.c * d.h * d.w, col.data());
    // y_n [k, P] = W [k, crs] col_n [crs, P], one problem per image of the chunk.
    gemm(false, false, d.k, pixels, crs, 1.f, w, crs, 0, col.data(), pixels, int64_t(crs) * pixels,
         0.f, y + int64_t(n0) * d.k * pixels, pixels, int64_t(d.k) * pixels, images);
  }
  add_conv_bias(d, bias, y);
}

void GpuBackend::conv2d_backward_data(const Conv2dDesc& d, const float* gy, const float* w,
                                      float* gx) {
#if FORGE_CUDNN
  const auto backward_data = [&](ConvTypes t, const void* gys, const void* ws) {
    return impl_->cudnn.backward_data(*this, d, t, gys, ws, gx);
  };
  if (cudnn_may_run(impl_->conv_path, d) &&
      run_cudnn(*this, impl_->precision, {kF32, kB16, kB16}, gy, y_floats(d), w, w_floats(d),
                backward_data))
    return;
#endif
  const int crs = d.c * d.r * d.s, pixels = d.oh * d.ow, chunk = images_per_chunk(d);
  DeviceScratch gcol(*this, chunk * col_floats_per_image(d));
  for (int n0 = 0; n0 < d.n; n0 += chunk) {
    const int images = std::min(chunk, d.n - n0);
    // gcol_n [crs, P] = W^T [crs, k] gy_n [k, P].
    gemm(true, false, crs, pixels, d.k, 1.f, w, crs, 0, gy + int64_t(n0) * d.k * pixels, pixels,
         int64_t(d.k) * pixels, 0.f, gcol.data(), pixels, int64_t(crs) * pixels, images);
    launch_col2im(d, images, gcol.data(), gx + int64_t(n0) * d.c * d.h * d.w);
  }
}

void GpuBackend::conv2d_backward_weight(const Conv2dDesc& d, const float* x, const float* gy,
                                        float* gw, float* gbias) {
#if FORGE_CUDNN
  const auto backward_filter = [&](ConvTypes t, const void* xs, const void* gys) {
    return impl_->cudnn.backward_filter(*this, d, t, xs, gys, gw);
  };
  if (cudnn_may_run(impl_->conv_path, d) &&
      run_cudnn(*this, impl_->precision, {kB16, kF32, kB16}, x, x_floats(d), gy, y_floats(d),
                backward_filter))
    return conv_bias_gradient(*this, impl_->tickets, d, gy, gbias);
#endif
  const int crs = d.c * d.r * d.s, pixels = d.oh * d.ow, chunk = images_per_chunk(d);
  // A sum over no images or no output pixels: zero (and a GEMM with k = 0 would have ld = 0).
  const bool empty_sum = d.n == 0 || pixels == 0;
  if (empty_sum) fill(gw, int64_t(d.k) * crs, 0.f);
  DeviceScratch col(*this, chunk * col_floats_per_image(d));
  for (int n0 = 0; !empty_sum && n0 < d.n; n0 += chunk) {
    const int images = std::min(chunk, d.n - n0);
    launch_im2col(d, images, x + int64_t(n0) * d.c * d.h * d.w, col.data());
    for (int i = 0; i < images; ++i) {
      // gW [k, crs] (+)= gy_n [k, P] col_n^T [P, crs]
      const float beta = n0 + i == 0 ? 0.f : 1.f;
      gemm(false, true, d.k, crs, pixels, 1.f, gy + int64_t(n0 + i) * d.k * pixels, pixels, 0,
           col.data() + i * col_floats_per_image(d), pixels, 0, beta, gw, crs, 0, 1);
    }
  }
  conv_bias_gradient(*this, impl_->tickets, d, gy, gbias);
}

}  // namespace forge::FORGE_GPU_NS
