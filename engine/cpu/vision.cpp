// vision.cpp: CPU patch embedding (ViT), multi-resolution fusion (HRNet), nearest resize and
// zero padding, all on NCHW planes.
//
// Patch embedding (PatchEmbedDesc in engine/backend.h), image b with G = (h/p)(w/p) patches:
//   P_b [G, c*p*p]            im2patch: row j = patch j flattened in (channel, row, column) order
//   tokens_b[1 + j] = P_b[j] W^T + bias + pos[1 + j],   tokens_b[0] = cls + pos[0]
// computed as one GEMM over the b*G patch rows of every image, then a pass adding the rest.
// Backward, with g_b = dL/dtokens_b [T, e] (T = 1 + G):
//   gpos[t] = sum_b g_b[t]       gcls = gpos[0]       gbias = sum_{t >= 1} gpos[t]
//   gW      = sum_b g_b[1:]^T P_b                     (a GEMM over all b*G patch rows)
// P is rebuilt from the image in backward rather than kept: it is as large as the image.
//
// Nearest resampling by size, h -> oh: output row oy reads source row floor(oy * h / oh) (columns
// likewise), which covers down- and up-sampling by any ratio (HRNet: 120 -> 30, 15, 8, 4).
// Fusion:  y = ReLU(sum_i x_i[src_i(oy), src_i(ox)]).
// Backward: dL/dx_i[sy, sx] = sum over outputs (oy, ox) that read (sy, sx) of gy [y > 0]; several
// outputs read one source pixel when upsampling, so the sum is a scatter. Every (n, c) plane of
// every gx_i is written by the one thread that owns that plane: no races, no atomics.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "engine/cpu/cpu_backend.h"

namespace forge {

// ---- patch embedding ---------------------------------------------------------------------------

// patches [b * G, c*p*p] from images [b, c, h, w] (G patches per image, row-major over the grid).
static void im2patch(const PatchEmbedDesc& d, const float* image, float* patches) {
  const int gh = d.grid_h(), gw = d.grid_w(), p = d.p;
  const int64_t rows = int64_t(d.b) * gh * gw;
#pragma omp parallel for if (rows * d.patch_dim() > 32768)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t b = r / (gh * gw);
    const int gy = int(r % (gh * gw)) / gw, gx = int(r % (gh * gw)) % gw;
    float* dst = patches + r * d.patch_dim();
    for (int ch = 0; ch < d.c; ++ch)
      for (int y = 0; y < p; ++y) {
        const float* src = image + ((b * d.c + ch) * d.h + gy * p + y) * d.w + gx * p;
        std::copy(src, src + p, dst + (ch * p + y) * p);
      }
  }
}

void CpuBackend::patch_embed_forward(const PatchEmbedDesc& d, const float* image, const float* w,
                                     const float* bias, const float* cls, const float* pos,
                                     float* tokens) {
  const int T = d.tokens(), G = T - 1, e = d.e, k = d.patch_dim();
  // One GEMM over all b*G patch rows, proj = P W^T, then each token row adds its terms.
  std::vector<float> patches(size_t(d.b) * G * k), proj(size_t(d.b) * G * e);
  im2patch(d, image, patches.data());
  gemm(false, true, d.b * G, e, k, 1.f, patches.data(), k, 0, w, k, 0, 0.f, proj.data(), e, 0, 1);
#pragma omp parallel for if (int64_t(d.b) * T * e > 32768)
  for (int64_t r = 0; r < int64_t(d.b) * T; ++r) {
    const int64_t b = r / T;
    const int t = int(r % T);
    const float* pt = pos + int64_t(t) * e;
    float* out = tokens + r * e;
    if (t == 0) {
      for (int i = 0; i < e; ++i) out[i] = cls[i] + pt[i];
    } else {
      const float* pr = proj.data() + (b * G + t - 1) * e;
      for (int i = 0; i < e; ++i) out[i] = pr[i] + bias[i] + pt[i];
    }
  }
}

void CpuBackend::patch_embed_backward(const PatchEmbedDesc& d, const float* image,
                                      const float* gtokens, float* gw, float* gbias, float* gcls,
                                      float* gpos) {
  const int T = d.tokens(), G = T - 1, e = d.e, k = d.patch_dim();
  // gpos[t] = sum over images, gbias = sum over patch tokens of gpos: double accumulators, as
  // gbias sums b*G terms (thousands for a ViT batch).
#pragma omp parallel if (int64_t(d.b) * T * e > 32768)
  {
    std::vector<double> acc(e);
#pragma omp for
    for (int t = 0; t < T; ++t) {
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int b = 0; b < d.b; ++b) {
        const float* g = gtokens + (int64_t(b) * T + t) * e;
        for (int i = 0; i < e; ++i) acc[i] += g[i];
      }
      for (int i = 0; i < e; ++i) gpos[int64_t(t) * e + i] = float(acc[i]);
    }
  }
  std::copy(gpos, gpos + e, gcls);
  std::vector<double> bias_acc(e, 0.0);
  for (int t = 1; t < T; ++t)
    for (int i = 0; i < e; ++i) bias_acc[i] += gpos[int64_t(t) * e + i];
  for (int i = 0; i < e; ++i) gbias[i] = float(bias_acc[i]);
  // gW [e, k] = G_rows^T P over all b*G patch rows: gather the patch rows of the gradient into
  // one contiguous matrix so that a single GEMM sums over images as well as patches.
  std::vector<float> patches(size_t(d.b) * G * k), grows(size_t(d.b) * G * e);
  im2patch(d, image, patches.data());
  for (int b = 0; b < d.b; ++b)
    std::copy(gtokens + (int64_t(b) * T + 1) * e, gtokens + (int64_t(b) + 1) * T * e,
              grows.data() + int64_t(b) * G * e);
  gemm(true, false, e, k, d.b * G, 1.f, grows.data(), e, 0, patches.data(), k, 0, 0.f, gw, k, 0, 1);
}

// ---- nearest resampling ------------------------------------------------------------------------

// Source index of output index o when resampling `in` positions onto `out`: floor(o * in / out).
static inline int nearest_source(int o, int in, int out) {
  return int(int64_t(o) * in / out);
}

// Source column of every output column.
static std::vector<int> nearest_columns(int w, int ow) {
  std::vector<int> cols(ow);
  for (int ox = 0; ox < ow; ++ox) cols[ox] = nearest_source(ox, w, ow);
  return cols;
}

// y (+)= nearest(x) for one plane: x [h, w] -> y [oh, ow].
static void resample_plane(const float* x, int h, int w, const int* cols, int oh, int ow, float* y,
                           bool accumulate) {
  for (int oy = 0; oy < oh; ++oy) {
    const float* src = x + int64_t(nearest_source(oy, h, oh)) * w;
    float* dst = y + int64_t(oy) * ow;
    if (accumulate)
      for (int ox = 0; ox < ow; ++ox) dst[ox] += src[cols[ox]];
    else
      for (int ox = 0; ox < ow; ++ox) dst[ox] = src[cols[ox]];
  }
}

// gx = the transpose of resample_plane applied to gy: zero, then sum each output into its source.
static void resample_plane_backward(const float* gy, int oh, int ow, const int* cols, int h, int w,
                                    float* gx) {
  std::fill(gx, gx + int64_t(h) * w, 0.f);
  for (int oy = 0; oy < oh; ++oy) {
    float* dst = gx + int64_t(nearest_source(oy, h, oh)) * w;
    const float* src = gy + int64_t(oy) * ow;
    for (int ox = 0; ox < ow; ++ox) dst[cols[ox]] += src[ox];
  }
}

void CpuBackend::fusion_forward(const FusionDesc& d, const float* const* xs, float* y) {
  std::vector<std::vector<int>> cols(d.branches);
  for (int i = 0; i < d.branches; ++i) cols[i] = nearest_columns(d.ws[i], d.ow);
  const int64_t planes = int64_t(d.n) * d.c, out_plane = int64_t(d.oh) * d.ow;
#pragma omp parallel for if (planes * out_plane * d.branches > 32768)
  for (int64_t pl = 0; pl < planes; ++pl) {
    float* yp = y + pl * out_plane;
    for (int i = 0; i < d.branches; ++i)
      resample_plane(xs[i] + pl * d.hs[i] * d.ws[i], d.hs[i], d.ws[i], cols[i].data(), d.oh, d.ow,
                     yp, i > 0);
    for (int64_t j = 0; j < out_plane; ++j) yp[j] = std::max(yp[j], 0.f);
  }
}

void CpuBackend::fusion_backward(const FusionDesc& d, const float* y, const float* gy,
                                 float* const* gxs) {
  std::vector<std::vector<int>> cols(d.branches);
  for (int i = 0; i < d.branches; ++i) cols[i] = nearest_columns(d.ws[i], d.ow);
  const int64_t planes = int64_t(d.n) * d.c, out_plane = int64_t(d.oh) * d.ow;
#pragma omp parallel if (planes * out_plane * d.branches > 32768)
  {
    std::vector<float> masked(out_plane);  // gy [y > 0] of the current plane
#pragma omp for
    for (int64_t pl = 0; pl < planes; ++pl) {
      const float *yp = y + pl * out_plane, *gp = gy + pl * out_plane;
      for (int64_t j = 0; j < out_plane; ++j) masked[j] = yp[j] > 0.f ? gp[j] : 0.f;
      for (int i = 0; i < d.branches; ++i)
        resample_plane_backward(masked.data(), d.oh, d.ow, cols[i].data(), d.hs[i], d.ws[i],
                                gxs[i] + pl * d.hs[i] * d.ws[i]);
    }
  }
}

void CpuBackend::resize_nearest_forward(int n, int c, int h, int w, int oh, int ow, const float* x,
                                        float* y) {
  const std::vector<int> cols = nearest_columns(w, ow);
  const int64_t planes = int64_t(n) * c;
#pragma omp parallel for if (planes * oh * ow > 32768)
  for (int64_t pl = 0; pl < planes; ++pl)
    resample_plane(x + pl * h * w, h, w, cols.data(), oh, ow, y + pl * oh * ow, false);
}

void CpuBackend::resize_nearest_backward(int n, int c, int h, int w, int oh, int ow,
                                         const float* gy, float* gx) {
  const std::vector<int> cols = nearest_columns(w, ow);
  const int64_t planes = int64_t(n) * c;
#pragma omp parallel for if (planes * oh * ow > 32768)
  for (int64_t pl = 0; pl < planes; ++pl)
    resample_plane_backward(gy + pl * oh * ow, oh, ow, cols.data(), h, w, gx + pl * h * w);
}

// ---- zero padding ------------------------------------------------------------------------------
// y [h + top + bottom, w + left + right] holds x at offset (top, left), zeros elsewhere; the
// gradient of x is the same window of gy.

void CpuBackend::pad2d_forward(int n, int c, int h, int w, int top, int bottom, int left, int right,
                               const float* x, float* y) {
  const int ph = h + top + bottom, pw = w + left + right;
  const int64_t planes = int64_t(n) * c;
#pragma omp parallel for if (planes * ph * pw > 32768)
  for (int64_t pl = 0; pl < planes; ++pl) {
    float* yp = y + pl * ph * pw;
    std::fill(yp, yp + int64_t(ph) * pw, 0.f);
    for (int r = 0; r < h; ++r) {
      const float* src = x + (pl * h + r) * w;
      std::copy(src, src + w, yp + int64_t(r + top) * pw + left);
    }
  }
}

void CpuBackend::pad2d_backward(int n, int c, int h, int w, int top, int bottom, int left,
                                int right, const float* gy, float* gx) {
  const int ph = h + top + bottom, pw = w + left + right;
  const int64_t planes = int64_t(n) * c;
#pragma omp parallel for if (planes * h * w > 32768)
  for (int64_t pl = 0; pl < planes; ++pl)
    for (int r = 0; r < h; ++r) {
      const float* src = gy + (pl * ph + r + top) * pw + left;
      std::copy(src, src + w, gx + (pl * h + r) * w);
    }
}

}  // namespace forge
