// vision.cu: patch embedding (ViT), multi-resolution fusion (HRNet), nearest resize and zero
// padding, NCHW.
//
// Patch embedding (PatchEmbedDesc), image b with G = (h/p)(w/p) patches, T = 1 + G tokens,
// patch_dim k = c*p*p:
//   P_b [G, k]        im2patch: row j = patch j flattened in (channel, row, column) order
//   tokens_b[1 + j] = P_b[j] W^T + bias + pos[1 + j],    tokens_b[0] = cls + pos[0]
// im2patch_kernel builds P for all images, one batched GEMM (a problem per image) writes P_b W^T
// straight into token rows 1..G of each image (row stride e, problem stride T*e), and
// add_token_terms_kernel writes row 0 and adds bias and pos to the rest.
// Backward, g_b = dL/dtokens_b [T, e]:
//   gpos[t] = sum_b g_b[t]   (token_sum_kernel: one thread per (t, i), summing over b)
//   gcls = gpos[0],   gbias = sum_{t >= 1} gpos[t]          (cls_bias_grad_kernel)
//   gW [e, k] = sum_b g_b[1:]^T P_b = Gr^T P                one GEMM over all b*G patch rows, with
//   Gr [b*G, e] the patch rows of g gathered contiguous (GpuBackend::gather) and P rebuilt.
//
// Nearest resampling by size, h -> oh: output row oy reads source row floor(oy * h / oh), columns
// likewise. Fusion: y = ReLU(sum_i x_i[src_i(oy), src_i(ox)]); resize is the one-branch case
// without the ReLU, so both run nearest_sum_kernel.
// Backward: gx_i[sy, sx] = sum over the outputs that read (sy, sx) of gy * [y > 0] (fusion; no
// mask for resize). Written as a GATHER: the outputs reading source row sy are exactly
//   oy in [ceil(sy * oh / h), ceil((sy + 1) * oh / h))
// (floor(oy h / oh) = sy  <=>  sy oh <= oy h < (sy + 1) oh), columns likewise; one thread per gx
// element sums them, so there are no atomics and the order is the CPU's (oy, then ox, ascending).
//
// Padding: y [h + top + bottom, w + left + right] holds x at (top, left), zeros elsewhere; its
// gradient is the same window of gy.
//
// Launch shape: every kernel here is one thread per output element, kBlockThreads per
// block, grid-stride (grid_blocks). Nothing is saved for backward beyond what the ops keep.
#include "kernels/kernel_util.cuh"

namespace forge::FORGE_GPU_NS {
namespace {

// ---- patch embedding --------------------------------------------------------------------------

// PatchEmbedDesc's helpers are host functions (engine/backend.h); kernels use these.
__device__ __forceinline__ int patch_count(const PatchEmbedDesc& d) {
  return (d.h / d.p) * (d.w / d.p);
}
__device__ __forceinline__ int token_count(const PatchEmbedDesc& d) {
  return 1 + patch_count(d);
}

// patches [b*G, k] from images [b, c, h, w].
__global__ void im2patch_kernel(PatchEmbedDesc d, const float* image, float* patches) {
  const int gw = d.w / d.p, grid = patch_count(d), p = d.p, k = d.c * p * p;
  const int64_t total = int64_t(d.b) * grid * k;
  for (int64_t e = grid_first(); e < total; e += grid_stride()) {
    const int col = int(e % k), patch = int(e / k % grid);
    const int64_t b = e / (int64_t(k) * grid);
    const int ch = col / (p * p), y = col / p % p, x = col % p;
    const int iy = patch / gw * p + y, ix = patch % gw * p + x;
    patches[e] = image[((b * d.c + ch) * d.h + iy) * d.w + ix];
  }
}

// tokens [b, T, e]: row 0 = cls + pos[0]; rows t >= 1 (holding the projection) += bias + pos[t].
__global__ void add_token_terms_kernel(PatchEmbedDesc d, const float* bias, const float* cls,
                                       const float* pos, float* tokens) {
  const int tokens_per_image = token_count(d), e_dim = d.e;
  const int64_t total = int64_t(d.b) * tokens_per_image * e_dim;
  for (int64_t e = grid_first(); e < total; e += grid_stride()) {
    const int i = int(e % e_dim), t = int(e / e_dim % tokens_per_image);
    const float position = pos[int64_t(t) * e_dim + i];
    tokens[e] = t == 0 ? cls[i] + position : tokens[e] + bias[i] + position;
  }
}

// gpos [T, e] = sum over images of gtokens [b, T, e].
__global__ void token_sum_kernel(PatchEmbedDesc d, const float* gtokens, float* gpos) {
  const int64_t row = int64_t(token_count(d)) * d.e;
  for (int64_t e = grid_first(); e < row; e += grid_stride()) {
    float sum = 0.f;
    for (int b = 0; b < d.b; ++b) sum += gtokens[b * row + e];
    gpos[e] = sum;
  }
}

// gcls = gpos[0], gbias = sum over patch tokens t >= 1 of gpos[t]; one thread per feature.
__global__ void cls_bias_grad_kernel(PatchEmbedDesc d, const float* gpos, float* gcls,
                                     float* gbias) {
  for (int64_t i = grid_first(); i < d.e; i += grid_stride()) {
    float sum = 0.f;
    for (int t = 1; t < token_count(d); ++t) sum += gpos[int64_t(t) * d.e + i];
    gcls[i] = gpos[i];
    gbias[i] = sum;
  }
}

// ---- nearest resampling -----------------------------------------------------------------------

struct BranchInputs {
  const float* x[kMaxBranches];
};

// Source index of output index o when resampling `in` positions onto `out`.
__device__ __forceinline__ int nearest_source(int o, int in, int out) {
  return int(int64_t(o) * in / out);
}
// First output index reading source index s: ceil(s * out / in).
__device__ __forceinline__ int first_reader(int s, int in, int out) {
  return int((int64_t(s) * out + in - 1) / in);
}

// y [n, c, oh, ow] = sum_i nearest(x_i), then ReLU when kRelu (fusion) or not (resize).
template <bool kRelu>
__global__ void nearest_sum_kernel(FusionDesc d, BranchInputs xs, float* y) {
  const int64_t total = int64_t(d.n) * d.c * d.oh * d.ow;
  for (int64_t e = grid_first(); e < total; e += grid_stride()) {
    const int ox = int(e % d.ow), oy = int(e / d.ow % d.oh);
    const int64_t plane = e / (int64_t(d.oh) * d.ow);
    float sum = 0.f;
    for (int i = 0; i < d.branches; ++i) {
      const int sy = nearest_source(oy, d.hs[i], d.oh), sx = nearest_source(ox, d.ws[i], d.ow);
      sum += xs.x[i][(plane * d.hs[i] + sy) * d.ws[i] + sx];
    }
    y[e] = kRelu ? fmaxf(sum, 0.f) : sum;
  }
}

// gx [planes, h, w] = sum of gy [planes, oh, ow] over the outputs reading each source pixel,
// counting only outputs with y > 0 when relu_output is given (fusion's ReLU mask).
__global__ void nearest_backward_kernel(int64_t planes, int h, int w, int oh, int ow,
                                        const float* relu_output /*nullable*/, const float* gy,
                                        float* gx) {
  const int64_t total = planes * h * w;
  for (int64_t e = grid_first(); e < total; e += grid_stride()) {
    const int sx = int(e % w), sy = int(e / w % h);
    const int64_t out_plane = e / (int64_t(h) * w) * oh * ow;
    const int oy1 = first_reader(sy + 1, h, oh), ox1 = first_reader(sx + 1, w, ow);
    const int ox0 = first_reader(sx, w, ow);
    float sum = 0.f;
    for (int oy = first_reader(sy, h, oh); oy < oy1; ++oy)
      for (int ox = ox0; ox < ox1; ++ox) {
        const int64_t o = out_plane + int64_t(oy) * ow + ox;
        if (!relu_output || relu_output[o] > 0.f) sum += gy[o];
      }
    gx[e] = sum;
  }
}

// ---- padding ----------------------------------------------------------------------------------

__global__ void pad2d_forward_kernel(int64_t planes, int h, int w, int top, int left, int ph,
                                     int pw, const float* x, float* y) {
  const int64_t total = planes * ph * pw;
  for (int64_t e = grid_first(); e < total; e += grid_stride()) {
    const int r = int(e / pw % ph) - top, c = int(e % pw) - left;
    const int64_t plane = e / (int64_t(ph) * pw);
    y[e] = r >= 0 && r < h && c >= 0 && c < w ? x[(plane * h + r) * w + c] : 0.f;
  }
}

__global__ void pad2d_backward_kernel(int64_t planes, int h, int w, int top, int left, int ph,
                                      int pw, const float* gy, float* gx) {
  const int64_t total = planes * h * w;
  for (int64_t e = grid_first(); e < total; e += grid_stride()) {
    const int r = int(e / w % h), c = int(e % w);
    const int64_t plane = e / (int64_t(h) * w);
    gx[e] = gy[(plane * ph + r + top) * pw + c + left];
  }
}

}  // namespace

void GpuBackend::patch_embed_forward(const PatchEmbedDesc& d, const float* image, const float* w,
                                     const float* bias, const float* cls, const float* pos,
                                     float* tokens) {
  const int grid = d.tokens() - 1, k = d.patch_dim();
  DeviceScratch patches(*this, int64_t(d.b) * grid * k);
  FORGE_LAUNCH(im2patch_kernel, dim3(grid_blocks(int64_t(d.b) * grid * k)), dim3(kBlockThreads), 0,
               kStream, d, image, patches.data());
  FORGE_CHECK_LAUNCH(im2patch_kernel);
  // Per image: tokens_b[1:] [G, e] = P_b [G, k] W^T [k, e].
  gemm(false, true, grid, d.e, k, 1.f, patches.data(), k, int64_t(grid) * k, w, k, 0, 0.f,
       tokens + d.e, d.e, int64_t(d.tokens()) * d.e, d.b);
  FORGE_LAUNCH(add_token_terms_kernel, dim3(grid_blocks(int64_t(d.b) * d.tokens() * d.e)),
               dim3(kBlockThreads), 0, kStream, d, bias, cls, pos, tokens);
  FORGE_CHECK_LAUNCH(add_token_terms_kernel);
}

void GpuBackend::patch_embed_backward(const PatchEmbedDesc& d, const float* image,
                                      const float* gtokens, float* gw, float* gbias, float* gcls,
                                      float* gpos) {
  const int tokens = d.tokens(), grid = tokens - 1, k = d.patch_dim();
  FORGE_LAUNCH(token_sum_kernel, dim3(grid_blocks(int64_t(tokens) * d.e)), dim3(kBlockThreads), 0,
               kStream, d, gtokens, gpos);
  FORGE_CHECK_LAUNCH(token_sum_kernel);
  FORGE_LAUNCH(cls_bias_grad_kernel, dim3(grid_blocks(int64_t(d.e))), dim3(kBlockThreads), 0,
               kStream, d, gpos, gcls, gbias);
  FORGE_CHECK_LAUNCH(cls_bias_grad_kernel);
  // Gr [b, G, e] = gtokens[:, 1:, :], contiguous.
  DeviceScratch patch_rows(*this, int64_t(d.b) * grid * d.e);
  StridedView view;
  view.ndim = 3;
  view.shape[0] = d.b, view.shape[1] = grid, view.shape[2] = d.e;
  view.strides[0] = int64_t(tokens) * d.e, view.strides[1] = d.e, view.strides[2] = 1;
  view.offset = d.e;
  gather(gtokens, view, patch_rows.data());
  DeviceScratch patches(*this, int64_t(d.b) * grid * k);
  FORGE_LAUNCH(im2patch_kernel, dim3(grid_blocks(int64_t(d.b) * grid * k)), dim3(kBlockThreads), 0,
               kStream, d, image, patches.data());
  FORGE_CHECK_LAUNCH(im2patch_kernel);
  // gW [e, k] = Gr^T [e, b*G] P [b*G, k].
  gemm(true, false, d.e, k, d.b * grid, 1.f, patch_rows.data(), d.e, 0, patches.data(), k, 0, 0.f,
       gw, k, 0, 1);
}

void GpuBackend::fusion_forward(const FusionDesc& d, const float* const* xs, float* y) {
  BranchInputs inputs{};
  for (int i = 0; i < d.branches; ++i) inputs.x[i] = xs[i];
  FORGE_LAUNCH((nearest_sum_kernel<true>), dim3(grid_blocks(int64_t(d.n) * d.c * d.oh * d.ow)),
               dim3(kBlockThreads), 0, kStream, d, inputs, y);
  FORGE_CHECK_LAUNCH((nearest_sum_kernel<true>));
}

void GpuBackend::fusion_backward(const FusionDesc& d, const float* y, const float* gy,
                                 float* const* gxs) {
  for (int i = 0; i < d.branches; ++i) {  // a launch per branch: each has its own size
    FORGE_LAUNCH(nearest_backward_kernel, dim3(grid_blocks(int64_t(d.n) * d.c * d.hs[i] * d.ws[i])),
                 dim3(kBlockThreads), 0, kStream, int64_t(d.n) * d.c, d.hs[i], d.ws[i], d.oh, d.ow,
                 y, gy, gxs[i]);
    FORGE_CHECK_LAUNCH(nearest_backward_kernel);
  }
}

void GpuBackend::resize_nearest_forward(int n, int c, int h, int w, int oh, int ow, const float* x,
                                        float* y) {
  FusionDesc d{n, c, oh, ow, 1, {h}, {w}};
  FORGE_LAUNCH((nearest_sum_kernel<false>), dim3(grid_blocks(int64_t(n) * c * oh * ow)),
               dim3(kBlockThreads), 0, kStream, d, BranchInputs{{x}}, y);
  FORGE_CHECK_LAUNCH((nearest_sum_kernel<false>));
}

void GpuBackend::resize_nearest_backward(int n, int c, int h, int w, int oh, int ow,
                                         const float* gy, float* gx) {
  FORGE_LAUNCH(nearest_backward_kernel, dim3(grid_blocks(int64_t(n) * c * h * w)),
               dim3(kBlockThreads), 0, kStream, int64_t(n) * c, h, w, oh, ow,
               static_cast<const float*>(nullptr), gy, gx);
  FORGE_CHECK_LAUNCH(nearest_backward_kernel);
}

void GpuBackend::pad2d_forward(int n, int c, int h, int w, int top, int bottom, int left, int right,
                               const float* x, float* y) {
  const int ph = h + top + bottom, pw = w + left + right;
  FORGE_LAUNCH(pad2d_forward_kernel, dim3(grid_blocks(int64_t(n) * c * ph * pw)),
               dim3(kBlockThreads), 0, kStream, int64_t(n) * c, h, w, top, left, ph, pw, x, y);
  FORGE_CHECK_LAUNCH(pad2d_forward_kernel);
}

void GpuBackend::pad2d_backward(int n, int c, int h, int w, int top, int bottom, int left,
                                int right, const float* gy, float* gx) {
  const int ph = h + top + bottom, pw = w + left + right;
  FORGE_LAUNCH(pad2d_backward_kernel, dim3(grid_blocks(int64_t(n) * c * h * w)),
               dim3(kBlockThreads), 0, kStream, int64_t(n) * c, h, w, top, left, ph, pw, gy, gx);
  FORGE_CHECK_LAUNCH(pad2d_backward_kernel);
}

}  // namespace forge::FORGE_GPU_NS
