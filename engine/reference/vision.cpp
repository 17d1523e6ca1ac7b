// vision.cpp: convolution, patch embedding and multi-resolution fusion, forward and backward, as
// loops (see reference.h and the descriptors in engine/backend.h).
#include <vector>

#include "engine/reference/reference.h"

namespace forge::reference {

// ---- convolution -----------------------------------------------------------------------------
//   y[b, o, oy, ox] = bias[o] + sum_{ch, ry, sx} w[o, ch, ry, sx] x[b, ch, iy, ix],
//   iy = oy stride - pad + ry,  ix = ox stride - pad + sx   (terms outside the image are zero)

void conv2d_forward(const Conv2dDesc& d, const float* x, const float* w, const float* bias,
                    float* y) {
  for (int b = 0; b < d.n; ++b)
    for (int o = 0; o < d.k; ++o)
      for (int oy = 0; oy < d.oh; ++oy)
        for (int ox = 0; ox < d.ow; ++ox) {
          double sum = bias ? bias[o] : 0.0;
          for (int ch = 0; ch < d.c; ++ch)
            for (int ry = 0; ry < d.r; ++ry)
              for (int sx = 0; sx < d.s; ++sx) {
                const int iy = oy * d.stride - d.pad + ry, ix = ox * d.stride - d.pad + sx;
                if (iy < 0 || iy >= d.h || ix < 0 || ix >= d.w) continue;  // zero padding
                sum += double(w[((size_t(o) * d.c + ch) * d.r + ry) * d.s + sx]) *
                       x[((size_t(b) * d.c + ch) * d.h + iy) * d.w + ix];
              }
          y[((size_t(b) * d.k + o) * d.oh + oy) * d.ow + ox] = float(sum);
        }
}

void conv2d_backward(const Conv2dDesc& d, const float* x, const float* w, const float* gy,
                     float* gx, float* gw, float* gbias) {
  std::vector<double> gxd(size_t(d.n) * d.c * d.h * d.w, 0.0);
  std::vector<double> gwd(size_t(d.k) * d.c * d.r * d.s, 0.0), gbd(d.k, 0.0);
  // In the forward pass every y[b, o, oy, ox] was a sum of w[o, ch, ry, sx] x[b, ch, iy, ix]
  // (+ bias[o]), so now each output's gradient flows back to both factors of each term:
  //   gx[b, ch, iy, ix] += w[o, ch, ry, sx] gy[b, o, oy, ox]
  //   gw[o, ch, ry, sx] += x[b, ch, iy, ix] gy[b, o, oy, ox]
  //   gbias[o]          += gy[b, o, oy, ox]
  for (int b = 0; b < d.n; ++b)
    for (int o = 0; o < d.k; ++o)
      for (int oy = 0; oy < d.oh; ++oy)
        for (int ox = 0; ox < d.ow; ++ox) {
          const double g = gy[((size_t(b) * d.k + o) * d.oh + oy) * d.ow + ox];
          gbd[o] += g;
          for (int ch = 0; ch < d.c; ++ch)
            for (int ry = 0; ry < d.r; ++ry)
              for (int sx = 0; sx < d.s; ++sx) {
                const int iy = oy * d.stride - d.pad + ry, ix = ox * d.stride - d.pad + sx;
                if (iy < 0 || iy >= d.h || ix < 0 || ix >= d.w) continue;
                const size_t wi = ((size_t(o) * d.c + ch) * d.r + ry) * d.s + sx;
                const size_t xi = ((size_t(b) * d.c + ch) * d.h + iy) * d.w + ix;
                gxd[xi] += w[wi] * g;
                gwd[wi] += x[xi] * g;
              }
        }
  for (size_t i = 0; i < gxd.size(); ++i) gx[i] = float(gxd[i]);
  for (size_t i = 0; i < gwd.size(); ++i) gw[i] = float(gwd[i]);
  if (gbias)
    for (int o = 0; o < d.k; ++o) gbias[o] = float(gbd[o]);
}

// ---- patch embedding -------------------------------------------------------------------------
//   tokens[b, 0, e]   = cls[e] + pos[0, e]
//   tokens[b, 1+j, e] = bias[e] + pos[1+j, e] + sum_{ch, py, px} w[e, ch, py, px] image[b, ch,
//                       gy p + py, gx p + px],   patch j = gy (w / p) + gx

// The pixel of image b that element (ch, py, px) of patch j reads.
static size_t patch_pixel(const PatchEmbedDesc& d, int b, int j, int ch, int py, int px) {
  const int gy = j / d.grid_w(), gx = j % d.grid_w();
  return ((size_t(b) * d.c + ch) * d.h + gy * d.p + py) * d.w + gx * d.p + px;
}

void patch_embed_forward(const PatchEmbedDesc& d, const float* image, const float* w,
                         const float* bias, const float* cls, const float* pos, float* tokens) {
  const int patches = d.tokens() - 1;
  for (int b = 0; b < d.b; ++b) {
    float* out = tokens + size_t(b) * d.tokens() * d.e;
    for (int e = 0; e < d.e; ++e) out[e] = cls[e] + pos[e];  // the class token, position 0
    for (int j = 0; j < patches; ++j)
      for (int e = 0; e < d.e; ++e) {
        double sum = double(bias[e]) + pos[size_t(1 + j) * d.e + e];
        for (int ch = 0; ch < d.c; ++ch)
          for (int py = 0; py < d.p; ++py)
            for (int px = 0; px < d.p; ++px)
              sum += double(w[((size_t(e) * d.c + ch) * d.p + py) * d.p + px]) *
                     image[patch_pixel(d, b, j, ch, py, px)];
        out[size_t(1 + j) * d.e + e] = float(sum);
      }
  }
}

void patch_embed_backward(const PatchEmbedDesc& d, const float* image, const float* gtokens,
                          float* gw, float* gbias, float* gcls, float* gpos) {
  const int patches = d.tokens() - 1;
  std::vector<double> gwd(size_t(d.e) * d.patch_dim(), 0.0), gbd(d.e, 0.0), gcd(d.e, 0.0);
  std::vector<double> gpd(size_t(d.tokens()) * d.e, 0.0);
  for (int b = 0; b < d.b; ++b) {
    const float* g = gtokens + size_t(b) * d.tokens() * d.e;
    // In the forward pass tokens[b, 0, e] = cls[e] + pos[0, e], so now gcls and gpos[0] get
    // the sum over the batch of gtokens[b, 0, :].
    for (int e = 0; e < d.e; ++e) {
      gcd[e] += g[e];
      gpd[e] += g[e];
    }
    // and tokens[b, 1+j, e] = bias[e] + pos[1+j, e] + sum w[e, .] patch_j, so now
    //   gbias[e] += gtokens[b, 1+j, e],  gpos[1+j, e] += gtokens[b, 1+j, e],
    //   gw[e, ch, py, px] += gtokens[b, 1+j, e] image[pixel (ch, py, px) of patch j]
    for (int j = 0; j < patches; ++j)
      for (int e = 0; e < d.e; ++e) {
        const double gt = g[size_t(1 + j) * d.e + e];
        gbd[e] += gt;
        gpd[size_t(1 + j) * d.e + e] += gt;
        for (int ch = 0; ch < d.c; ++ch)
          for (int py = 0; py < d.p; ++py)
            for (int px = 0; px < d.p; ++px)
              gwd[((size_t(e) * d.c + ch) * d.p + py) * d.p + px] +=
                  gt * image[patch_pixel(d, b, j, ch, py, px)];
      }
  }
  for (size_t i = 0; i < gwd.size(); ++i) gw[i] = float(gwd[i]);
  for (size_t i = 0; i < gpd.size(); ++i) gpos[i] = float(gpd[i]);
  for (int e = 0; e < d.e; ++e) {
    gbias[e] = float(gbd[e]);
    gcls[e] = float(gcd[e]);
  }
}

// ---- multi-resolution fusion -----------------------------------------------------------------
//   y[b, ch, oy, ox] = ReLU(sum_i x_i[b, ch, floor(oy h_i / oh), floor(ox w_i / ow)])
// (nearest resampling of every branch to the output size, then the sum, then ReLU)

// The pre-activation sum at one output pixel, and the source pixel of branch i.
static size_t fusion_source(const FusionDesc& d, int i, int plane, int oy, int ox) {
  const int sy = int(int64_t(oy) * d.hs[i] / d.oh), sx = int(int64_t(ox) * d.ws[i] / d.ow);
  return (size_t(plane) * d.hs[i] + sy) * d.ws[i] + sx;
}

static double fusion_sum(const FusionDesc& d, const float* const* xs, int plane, int oy, int ox) {
  double sum = 0;
  for (int i = 0; i < d.branches; ++i) sum += xs[i][fusion_source(d, i, plane, oy, ox)];
  return sum;
}

void fusion_forward(const FusionDesc& d, const float* const* xs, float* y) {
  for (int plane = 0; plane < d.n * d.c; ++plane)  // plane = b c + ch
    for (int oy = 0; oy < d.oh; ++oy)
      for (int ox = 0; ox < d.ow; ++ox) {
        const double sum = fusion_sum(d, xs, plane, oy, ox);
        y[(size_t(plane) * d.oh + oy) * d.ow + ox] = float(sum > 0 ? sum : 0);  // ReLU
      }
}

void fusion_backward(const FusionDesc& d, const float* const* xs, const float* gy,
                     float* const* gxs) {
  std::vector<std::vector<double>> g(d.branches);
  for (int i = 0; i < d.branches; ++i) g[i].assign(size_t(d.n) * d.c * d.hs[i] * d.ws[i], 0.0);
  // In the forward pass y = ReLU(sum), so the sum's gradient is gy where sum > 0 and 0
  // elsewhere; the sum added x_i at its source pixel, so that pixel gets the sum's gradient,
  // once for every output pixel that read it (upsampling reads one source pixel many times).
  for (int plane = 0; plane < d.n * d.c; ++plane)
    for (int oy = 0; oy < d.oh; ++oy)
      for (int ox = 0; ox < d.ow; ++ox) {
        if (!(fusion_sum(d, xs, plane, oy, ox) > 0)) continue;  // ReLU'(sum) = 0
        const double gsum = gy[(size_t(plane) * d.oh + oy) * d.ow + ox];
        for (int i = 0; i < d.branches; ++i) g[i][fusion_source(d, i, plane, oy, ox)] += gsum;
      }
  for (int i = 0; i < d.branches; ++i)
    for (size_t e = 0; e < g[i].size(); ++e) gxs[i][e] = float(g[i][e]);
}

}  // namespace forge::reference
