// pool.cu: max pooling over k x k windows, NCHW (Pool2dDesc in engine/backend.h).
//
// Forward, one thread per output (plane p, oy, ox), window rows oy*stride - pad + [0, kernel):
//   y[p, oy, ox] = max over the window's pixels inside the image (padding reads as -inf; the op
//                  keeps pad <= kernel / 2, so every window holds a real pixel)
//   argmax[p, oy, ox] = y_in * w + x_in of that maximum, the FIRST in row-major order on ties
//                       (strict > while scanning, like the CPU), saved for backward.
// Backward: gx[p, i] = sum of gy[p, o] over the outputs o whose argmax is i. Written as a GATHER:
// one thread per input pixel visits the windows that contain it,
//   oy in [ceil((iy + pad - kernel + 1) / stride), floor((iy + pad) / stride)] within [0, oh)
// (columns likewise), so each gx element has one writer: no atomics, and the sum runs in output
// order, the CPU's order.
// Launch shape: kBlockThreads threads per block, grid-stride over the elements.
#include <cmath>

#include "kernels/kernel_util.cuh"

namespace forge::FORGE_GPU_NS {
namespace {

__global__ void maxpool2d_forward_kernel(Pool2dDesc d, const float* x, float* y, int32_t* argmax) {
  const int64_t total = int64_t(d.n) * d.c * d.oh * d.ow;
  for (int64_t e = grid_first(); e < total; e += grid_stride()) {
    const int ox = int(e % d.ow), oy = int(e / d.ow % d.oh);
    const float* plane = x + e / (int64_t(d.oh) * d.ow) * d.h * d.w;
    const int y0 = max_int(oy * d.stride - d.pad, 0),
              y1 = min_int(oy * d.stride - d.pad + d.kernel, d.h);
    const int x0 = max_int(ox * d.stride - d.pad, 0),
              x1 = min_int(ox * d.stride - d.pad + d.kernel, d.w);
    float best = -INFINITY;
    int32_t best_at = y0 * d.w + x0;
    for (int iy = y0; iy < y1; ++iy)
      for (int ix = x0; ix < x1; ++ix)
        if (plane[iy * d.w + ix] > best) {
          best = plane[iy * d.w + ix];
          best_at = iy * d.w + ix;
        }
    y[e] = best;
    argmax[e] = best_at;
  }
}

// First window index whose window [o*stride - pad, o*stride - pad + kernel) contains i, and one
// past the last, clipped to [0, out).
__device__ __forceinline__ int first_window(int i, int kernel, int stride, int pad) {
  const int lowest = i + pad - kernel + 1;  // o * stride >= lowest
  return lowest <= 0 ? 0 : (lowest + stride - 1) / stride;
}
__device__ __forceinline__ int end_window(int i, int stride, int pad, int out) {
  return min_int((i + pad) / stride + 1, out);  // o * stride <= i + pad; i + pad >= 0
}

__global__ void maxpool2d_backward_kernel(Pool2dDesc d, const float* gy, const int32_t* argmax,
                                          float* gx) {
  const int64_t total = int64_t(d.n) * d.c * d.h * d.w;
  for (int64_t e = grid_first(); e < total; e += grid_stride()) {
    const int ix = int(e % d.w), iy = int(e / d.w % d.h), here = iy * d.w + ix;
    const int64_t out_plane = e / (int64_t(d.h) * d.w) * d.oh * d.ow;
    const int oy1 = end_window(iy, d.stride, d.pad, d.oh);
    const int ox0 = first_window(ix, d.kernel, d.stride, d.pad);
    const int ox1 = end_window(ix, d.stride, d.pad, d.ow);
    float sum = 0.f;
    for (int oy = first_window(iy, d.kernel, d.stride, d.pad); oy < oy1; ++oy)
      for (int ox = ox0; ox < ox1; ++ox) {
        const int64_t o = out_plane + oy * d.ow + ox;
        if (argmax[o] == here) sum += gy[o];
      }
    gx[e] = sum;
  }
}

}  // namespace

void GpuBackend::maxpool2d_forward(const Pool2dDesc& d, const float* x, float* y, int32_t* argmax) {
  const int64_t total = int64_t(d.n) * d.c * d.oh * d.ow;
  FORGE_LAUNCH(maxpool2d_forward_kernel, dim3(grid_blocks(total)), dim3(kBlockThreads), 0, kStream,
               d, x, y, argmax);
  FORGE_CHECK_LAUNCH(maxpool2d_forward_kernel);
}

void GpuBackend::maxpool2d_backward(const Pool2dDesc& d, const float* gy, const int32_t* argmax,
                                    float* gx) {
  const int64_t total = int64_t(d.n) * d.c * d.h * d.w;
  FORGE_LAUNCH(maxpool2d_backward_kernel, dim3(grid_blocks(total)), dim3(kBlockThreads), 0, kStream,
               d, gy, argmax, gx);
  FORGE_CHECK_LAUNCH(maxpool2d_backward_kernel);
}

}  // namespace forge::FORGE_GPU_NS
