// test_reference.cpp: every fused primitive of a backend against the plain-loop reference
// (engine/reference), forward and backward, so that no backend is its own oracle.
//
// Built twice: in tests/engine for Device::cpu, and in tests/kernels with FORGE_REFERENCE_GPU for
// the GPU backend on Device::sim (and Device::cuda where a GPU answers), in both emulator lane
// orders. Each case calls the Backend primitive (engine/backend.h) on device buffers and the
// reference on the same host values; shapes are multiples of no tile size.
//
// Tolerances: the reference accumulates in double and rounds once, so the difference is the
// backend's float32 rounding: a sum of n terms is off by at most ~n u (u = 6e-8) of the sum of
// their magnitudes, typically sqrt(n) u. With the sizes here (n <= ~300), rel 1e-6 + abs 1e-6 of
// the tensor's scale is ~5x what was measured (at most 0.18 of it, cpu and sim alike); the
// batch-norm and layer-norm input gradients, differences of nearly equal means, get abs 1e-5.
// A wrong formula (a missing term, a wrong scale, a wrong index) is off by far more.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/cuda/builtin.h"
#include "engine/random.h"
#include "engine/reference/reference.h"
#include "engine/tensor.h"
#include "tests/tensor_compare.h"

using namespace forge;
using forge::testing::check_close;
using forge::testing::Tolerance;

namespace {

constexpr Tolerance kSum{1e-6, 1e-6};        // one rounded sum (or a few) per output
constexpr Tolerance kNorm{1e-6, 1e-5};       // normalisation input gradients (see the file comment)
constexpr Tolerance kPointwise{1e-6, 1e-7};  // GELU: one function evaluation per element

// The devices under test: the CPU backend here, the GPU backend in the tests/kernels build.
const std::vector<Device>& devices() {
  static const std::vector<Device> list = [] {
#ifdef FORGE_REFERENCE_GPU
    register_builtin_backends();
    std::vector<Device> found{Device::sim};
    try {
      backend(Device::cuda);
      found.push_back(Device::cuda);
    } catch (const std::exception& e) {
      MESSAGE("Device::cuda skipped: " << std::string(e.what()));
    }
    return found;
#else
    return std::vector<Device>{Device::cpu};
#endif
  }();
  return list;
}

std::vector<float> random_values(size_t n, uint64_t seed, float lo = -1.f, float hi = 1.f) {
  Generator gen(seed);
  return Tensor::uniform({int64_t(n)}, gen, lo, hi).to_vector();
}

// A device buffer holding `values` (or n zeros), and its values read back.
struct Buffer {
  Tensor t;
  Buffer(const std::vector<float>& values, Device d)
      : t(Tensor::from_vector(values, {int64_t(values.size())}).to(d)) {}
  Buffer(size_t n, Device d) : t(Tensor::zeros({int64_t(n)}, d)) {}
  float* ptr() const { return t.data(); }
  std::vector<float> host() const { return t.to_vector(); }
};

// int32 labels in device memory (Backend::allocate), freed at the end of the scope.
struct Labels {
  Backend& be;
  void* ptr;
  size_t bytes;
  Labels(Backend& b, const std::vector<int32_t>& v)
      : be(b), ptr(b.allocate(v.size() * sizeof(int32_t))), bytes(v.size() * sizeof(int32_t)) {
    be.copy_from_host(ptr, v.data(), bytes);
  }
  ~Labels() { be.deallocate(ptr, bytes); }
  const int32_t* data() const { return static_cast<const int32_t*>(ptr); }
};

void check(const std::string& name, const Buffer& got, const std::vector<float>& want,
           const std::vector<int64_t>& shape, Tolerance tol) {
  check_close(name, got.host(), want, shape, tol);
}

}  // namespace

TEST_CASE("reference: attention forward and backward") {
  const int bh = 3, t = 17, dh = 8;
  const float scale = 1.f / std::sqrt(float(dh));
  const size_t n = size_t(bh) * t * dh;
  const auto q = random_values(n, 1, -2, 2), k = random_values(n, 2, -2, 2),
             v = random_values(n, 3), gout = random_values(n, 4);
  std::vector<float> out(n), lse(size_t(bh) * t), gq(n), gk(n), gv(n);
  reference::attention_forward(bh, t, dh, scale, q.data(), k.data(), v.data(), out.data(),
                               lse.data());
  reference::attention_backward(bh, t, dh, scale, q.data(), k.data(), v.data(), gout.data(),
                                gq.data(), gk.data(), gv.data());
  for (Device d : devices()) {
    const std::string on = device_name(d);
    CAPTURE(on);
    Backend& be = backend(d);
    Buffer bq(q, d), bk(k, d), bv(v, d), bgo(gout, d), bout(n, d), blse(lse.size(), d), bgq(n, d),
        bgk(n, d), bgv(n, d);
    be.attention_forward(bh, t, dh, scale, bq.ptr(), bk.ptr(), bv.ptr(), bout.ptr(), blse.ptr());
    be.attention_backward(bh, t, dh, scale, bq.ptr(), bk.ptr(), bv.ptr(), bout.ptr(), bgo.ptr(),
                          blse.ptr(), bgq.ptr(), bgk.ptr(), bgv.ptr());
    check("out", bout, out, {bh, t, dh}, kSum);
    check("lse", blse, lse, {bh, t}, kSum);
    check("gq", bgq, gq, {bh, t, dh}, kSum);
    check("gk", bgk, gk, {bh, t, dh}, kSum);
    check("gv", bgv, gv, {bh, t, dh}, kSum);
  }
}

TEST_CASE("reference: layer norm forward and backward") {
  const int rows = 7, dim = 33;
  const float eps = 1e-6f;
  const size_t n = size_t(rows) * dim;
  const auto x = random_values(n, 5, -3, 3), gy = random_values(n, 6),
             gamma = random_values(dim, 7, 0.5, 1.5), beta = random_values(dim, 8);
  std::vector<float> y(n), gx(n), gg(dim), gb(dim);
  reference::layernorm_forward(rows, dim, x.data(), gamma.data(), beta.data(), eps, y.data());
  reference::layernorm_backward(rows, dim, x.data(), gy.data(), gamma.data(), eps, gx.data(),
                                gg.data(), gb.data());
  for (Device d : devices()) {
    const std::string on = device_name(d);
    CAPTURE(on);
    Backend& be = backend(d);
    Buffer bx(x, d), bgy(gy, d), bgam(gamma, d), bbet(beta, d), by(n, d), bmean(rows, d),
        brstd(rows, d), bgx(n, d), bgg(dim, d), bgb(dim, d);
    be.layernorm_forward(rows, dim, bx.ptr(), bgam.ptr(), bbet.ptr(), eps, by.ptr(), bmean.ptr(),
                         brstd.ptr());
    be.layernorm_backward(rows, dim, bx.ptr(), bgy.ptr(), bgam.ptr(), bmean.ptr(), brstd.ptr(),
                          bgx.ptr(), bgg.ptr(), bgb.ptr(), false);
    check("y", by, y, {rows, dim}, kSum);
    check("gx", bgx, gx, {rows, dim}, kNorm);
    check("ggamma", bgg, gg, {dim}, kSum);
    check("gbeta", bgb, gb, {dim}, kSum);
  }
}

TEST_CASE("reference: batch norm (training) forward, running statistics and backward") {
  const int n = 3, c = 4, hw = 5 * 7;
  const float eps = 1e-5f, momentum = 0.1f;
  const size_t size = size_t(n) * c * hw;
  const auto x = random_values(size, 9, -2, 3), gy = random_values(size, 10),
             gamma = random_values(c, 11, 0.5, 1.5), beta = random_values(c, 12),
             mean0 = random_values(c, 13), var0 = random_values(c, 14, 0.5, 2);
  std::vector<float> y(size), rmean = mean0, rvar = var0, gx(size), gg(c), gb(c);
  reference::batchnorm_forward_train(n, c, hw, x.data(), gamma.data(), beta.data(), eps, momentum,
                                     y.data(), rmean.data(), rvar.data());
  reference::batchnorm_backward(n, c, hw, x.data(), gy.data(), gamma.data(), eps, gx.data(),
                                gg.data(), gb.data());
  for (Device d : devices()) {
    const std::string on = device_name(d);
    CAPTURE(on);
    Backend& be = backend(d);
    Buffer bx(x, d), bgy(gy, d), bgam(gamma, d), bbet(beta, d), by(size, d), bsm(c, d), bsi(c, d),
        brm(mean0, d), brv(var0, d), bgx(size, d), bgg(c, d), bgb(c, d);
    be.batchnorm_forward_train(n, c, hw, bx.ptr(), bgam.ptr(), bbet.ptr(), eps, momentum, by.ptr(),
                               bsm.ptr(), bsi.ptr(), brm.ptr(), brv.ptr());
    be.batchnorm_backward(n, c, hw, bx.ptr(), bgy.ptr(), bgam.ptr(), bsm.ptr(), bsi.ptr(),
                          bgx.ptr(), bgg.ptr(), bgb.ptr());
    check("y", by, y, {n, c, hw}, kSum);
    check("running_mean", brm, rmean, {c}, kSum);
    check("running_var", brv, rvar, {c}, kSum);
    check("gx", bgx, gx, {n, c, hw}, kNorm);
    check("ggamma", bgg, gg, {c}, kSum);
    check("gbeta", bgb, gb, {c}, kSum);
  }
}

TEST_CASE("reference: batch norm (eval) backward with the running statistics") {
  const int n = 3, c = 4, hw = 5 * 7;
  const float eps = 1e-5f;
  const size_t size = size_t(n) * c * hw;
  const auto x = random_values(size, 19, -2, 3), gy = random_values(size, 20),
             gamma = random_values(c, 21, 0.5, 1.5), rmean = random_values(c, 22),
             rvar = random_values(c, 23, 0.05, 2);
  std::vector<float> gx(size), gg(c), gb(c);
  reference::batchnorm_backward_eval(n, c, hw, x.data(), gy.data(), gamma.data(), rmean.data(),
                                     rvar.data(), eps, gx.data(), gg.data(), gb.data());
  for (Device d : devices()) {
    const std::string on = device_name(d);
    CAPTURE(on);
    Backend& be = backend(d);
    Buffer bx(x, d), bgy(gy, d), bgam(gamma, d), brm(rmean, d), brv(rvar, d), bgx(size, d),
        bgg(c, d), bgb(c, d);
    be.batchnorm_backward_eval(n, c, hw, bx.ptr(), bgy.ptr(), bgam.ptr(), brm.ptr(), brv.ptr(), eps,
                               bgx.ptr(), bgg.ptr(), bgb.ptr());
    check("gx", bgx, gx, {n, c, hw}, kSum);
    check("ggamma", bgg, gg, {c}, kSum);
    check("gbeta", bgb, gb, {c}, kSum);
  }
}

TEST_CASE("reference: convolution forward and both backwards") {
  struct Case {
    int k, r, stride, pad;
    bool bias;
  };
  // 3x3 same, 3x3 stride 2 (odd input: the last row and column are read by one window), 1x1,
  // and a 5x5 without padding.
  for (const Case cs : {Case{5, 3, 1, 1, true}, Case{4, 3, 2, 1, false}, Case{6, 1, 1, 0, false},
                        Case{3, 5, 1, 0, true}}) {
    Conv2dDesc dd{2, 3, 9, 7, cs.k, cs.r, cs.r, cs.stride, cs.pad, 0, 0};
    dd.oh = (dd.h + 2 * dd.pad - dd.r) / dd.stride + 1;
    dd.ow = (dd.w + 2 * dd.pad - dd.s) / dd.stride + 1;
    CAPTURE(cs.r);
    CAPTURE(cs.stride);
    const size_t nx = size_t(dd.n) * dd.c * dd.h * dd.w, nw = size_t(dd.k) * dd.c * dd.r * dd.s,
                 ny = size_t(dd.n) * dd.k * dd.oh * dd.ow;
    const auto x = random_values(nx, 15), w = random_values(nw, 16), bias = random_values(dd.k, 17),
               gy = random_values(ny, 18);
    std::vector<float> y(ny), gx(nx), gw(nw), gbias(dd.k);
    reference::conv2d_forward(dd, x.data(), w.data(), cs.bias ? bias.data() : nullptr, y.data());
    reference::conv2d_backward(dd, x.data(), w.data(), gy.data(), gx.data(), gw.data(),
                               cs.bias ? gbias.data() : nullptr);
    for (Device d : devices()) {
      const std::string on = device_name(d);
      CAPTURE(on);
      Backend& be = backend(d);
      Buffer bx(x, d), bw(w, d), bb(bias, d), bgy(gy, d), by(ny, d), bgx(nx, d), bgw(nw, d),
          bgb(dd.k, d);
      be.conv2d_forward(dd, bx.ptr(), bw.ptr(), cs.bias ? bb.ptr() : nullptr, by.ptr());
      be.conv2d_backward_data(dd, bgy.ptr(), bw.ptr(), bgx.ptr());
      be.conv2d_backward_weight(dd, bx.ptr(), bgy.ptr(), bgw.ptr(), cs.bias ? bgb.ptr() : nullptr);
      check("y", by, y, {dd.n, dd.k, dd.oh, dd.ow}, kSum);
      check("gx", bgx, gx, {dd.n, dd.c, dd.h, dd.w}, kSum);
      check("gw", bgw, gw, {dd.k, dd.c, dd.r, dd.s}, kSum);
      if (cs.bias) check("gbias", bgb, gbias, {dd.k}, kSum);
    }
  }
}

TEST_CASE("reference: patch embedding forward and backward") {
  const PatchEmbedDesc pd{2, 3, 12, 8, 4, 6};  // 3 x 2 patches of 4x4, width 6
  const size_t nimg = size_t(pd.b) * pd.c * pd.h * pd.w, nw = size_t(pd.e) * pd.patch_dim(),
               npos = size_t(pd.tokens()) * pd.e, ntok = size_t(pd.b) * npos;
  const auto img = random_values(nimg, 19), w = random_values(nw, 20),
             bias = random_values(pd.e, 21), cls = random_values(pd.e, 22),
             pos = random_values(npos, 23), gt = random_values(ntok, 24);
  std::vector<float> tok(ntok), gw(nw), gb(pd.e), gc(pd.e), gp(npos);
  reference::patch_embed_forward(pd, img.data(), w.data(), bias.data(), cls.data(), pos.data(),
                                 tok.data());
  reference::patch_embed_backward(pd, img.data(), gt.data(), gw.data(), gb.data(), gc.data(),
                                  gp.data());
  for (Device d : devices()) {
    const std::string on = device_name(d);
    CAPTURE(on);
    Backend& be = backend(d);
    Buffer bimg(img, d), bw(w, d), bb(bias, d), bc(cls, d), bp(pos, d), bgt(gt, d), btok(ntok, d),
        bgw(nw, d), bgb(pd.e, d), bgc(pd.e, d), bgp(npos, d);
    be.patch_embed_forward(pd, bimg.ptr(), bw.ptr(), bb.ptr(), bc.ptr(), bp.ptr(), btok.ptr());
    be.patch_embed_backward(pd, bimg.ptr(), bgt.ptr(), bgw.ptr(), bgb.ptr(), bgc.ptr(), bgp.ptr());
    check("tokens", btok, tok, {pd.b, pd.tokens(), pd.e}, kSum);
    check("gw", bgw, gw, {pd.e, pd.patch_dim()}, kSum);
    check("gbias", bgb, gb, {pd.e}, kSum);
    check("gcls", bgc, gc, {pd.e}, kSum);
    check("gpos", bgp, gp, {pd.tokens(), pd.e}, kSum);
  }
}

TEST_CASE("reference: multi-resolution fusion forward and backward") {
  // Output 9x7; branches at the same size, upsampled from 5x4, 3x2 and 1x1, and downsampled
  // from 12x10 (nearest by size both ways).
  FusionDesc fd{2, 3, 9, 7, 5, {9, 5, 3, 1, 12}, {7, 4, 2, 1, 10}};
  std::vector<std::vector<float>> xs, gxs;
  for (int i = 0; i < fd.branches; ++i) {
    xs.push_back(random_values(size_t(fd.n) * fd.c * fd.hs[i] * fd.ws[i], 25 + i));
    gxs.emplace_back(xs.back().size());
  }
  const size_t ny = size_t(fd.n) * fd.c * fd.oh * fd.ow;
  const auto gy = random_values(ny, 40);
  std::vector<float> y(ny);
  std::vector<const float*> xp;
  std::vector<float*> gxp;
  for (int i = 0; i < fd.branches; ++i) {
    xp.push_back(xs[i].data());
    gxp.push_back(gxs[i].data());
  }
  reference::fusion_forward(fd, xp.data(), y.data());
  reference::fusion_backward(fd, xp.data(), gy.data(), gxp.data());
  for (Device d : devices()) {
    const std::string on = device_name(d);
    CAPTURE(on);
    Backend& be = backend(d);
    std::vector<Buffer> bxs, bgxs;
    std::vector<const float*> dxp;
    std::vector<float*> dgxp;
    for (int i = 0; i < fd.branches; ++i) {
      bxs.emplace_back(xs[i], d);
      bgxs.emplace_back(xs[i].size(), d);
      dxp.push_back(bxs.back().ptr());
      dgxp.push_back(bgxs.back().ptr());
    }
    Buffer by(ny, d), bgy(gy, d);
    be.fusion_forward(fd, dxp.data(), by.ptr());
    be.fusion_backward(fd, by.ptr(), bgy.ptr(), dgxp.data());
    check("y", by, y, {fd.n, fd.c, fd.oh, fd.ow}, kSum);
    for (int i = 0; i < fd.branches; ++i)
      check("gx" + std::to_string(i), bgxs[i], gxs[i], {fd.n, fd.c, fd.hs[i], fd.ws[i]}, kSum);
  }
}

TEST_CASE("reference: GELU forward and backward") {
  // [-8, 8] in steps of 1/64 (every region: the negative tail, zero, the linear side).
  std::vector<float> x;
  for (int i = -512; i <= 512; ++i) x.push_back(float(i) / 64.f);
  const auto gy = random_values(x.size(), 41);
  std::vector<float> y(x.size()), gx(x.size());
  reference::gelu_forward(int64_t(x.size()), x.data(), y.data());
  reference::gelu_backward(int64_t(x.size()), x.data(), gy.data(), gx.data());
  for (Device d : devices()) {
    const std::string on = device_name(d);
    CAPTURE(on);
    Backend& be = backend(d);
    Buffer bx(x, d), bgy(gy, d), by(x.size(), d), bgx(x.size(), d);
    be.unary(UnaryOp::gelu, bx.ptr(), by.ptr(), int64_t(x.size()), 0.f);
    be.unary_backward(UnaryOp::gelu, bx.ptr(), bgy.ptr(), bgx.ptr(), int64_t(x.size()));
    check("y", by, y, {int64_t(x.size())}, kPointwise);
    check("gx", bgx, gx, {int64_t(x.size())}, kPointwise);
  }
}

TEST_CASE("reference: softmax forward and backward") {
  const int rows = 6, dim = 37;
  const size_t n = size_t(rows) * dim;
  const auto x = random_values(n, 44, -6, 6), gy = random_values(n, 45);
  std::vector<float> y(n), gx(n);
  reference::softmax_forward(rows, dim, x.data(), y.data());
  reference::softmax_backward(rows, dim, x.data(), gy.data(), gx.data());
  for (Device d : devices()) {
    const std::string on = device_name(d);
    CAPTURE(on);
    Backend& be = backend(d);
    Buffer bx(x, d), bgy(gy, d), by(n, d), bgx(n, d);
    be.softmax_forward(rows, dim, bx.ptr(), by.ptr());
    be.softmax_backward(rows, dim, by.ptr(), bgy.ptr(), bgx.ptr());
    check("y", by, y, {rows, dim}, kSum);
    check("gx", bgx, gx, {rows, dim}, kSum);
  }
}

TEST_CASE("reference: softmax cross-entropy with and without label smoothing") {
  const int rows = 5, classes = 7;
  const auto logits = random_values(size_t(rows) * classes, 42, -4, 4),
             gloss = random_values(rows, 43, 0.1f, 1.f);
  const std::vector<int32_t> labels{0, 6, 3, 3, 1};
  for (float smoothing : {0.f, 0.1f}) {
    CAPTURE(smoothing);
    std::vector<float> loss(rows), glogits(logits.size());
    reference::cross_entropy_forward(rows, classes, logits.data(), labels.data(), smoothing,
                                     loss.data());
    reference::cross_entropy_backward(rows, classes, logits.data(), labels.data(), smoothing,
                                      gloss.data(), glogits.data());
    for (Device d : devices()) {
      const std::string on = device_name(d);
      CAPTURE(on);
      Backend& be = backend(d);
      Labels lab(be, labels);
      Buffer bz(logits, d), bgl(gloss, d), bloss(rows, d), blse(rows, d), bgz(logits.size(), d);
      be.cross_entropy_forward(rows, classes, bz.ptr(), lab.data(), smoothing, bloss.ptr(),
                               blse.ptr());
      be.cross_entropy_backward(rows, classes, bz.ptr(), lab.data(), smoothing, blse.ptr(),
                                bgl.ptr(), bgz.ptr());
      check("loss", bloss, loss, {rows}, kSum);
      check("glogits", bgz, glogits, {rows, classes}, kSum);
    }
  }
}
