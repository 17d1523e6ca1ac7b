// test_ops_attention_vision.cpp: fused attention, patch embedding, multi-resolution fusion,
// nearest resize, padding and cross-entropy: forward against naive loops written here, backward
// against finite differences (tests/engine/gradcheck.h states step and tolerance).
#include <doctest/doctest.h>

#include <cmath>
#include <stdexcept>
#include <string>

#include "engine/backend.h"
#include "engine/ops.h"
#include "tests/engine/gradcheck.h"

using namespace forge;
using namespace forge::testing;

// Runs f and returns the message of the std::invalid_argument it throws ("" if none).
template <typename F>
static std::string error_of(F f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

// ---- attention ---------------------------------------------------------------------------------

// out [bh, t, dh] from an explicit t x t softmax matrix per problem, in double.
static std::vector<float> naive_attention(const std::vector<float>& q, const std::vector<float>& k,
                                          const std::vector<float>& v, int bh, int t, int dh,
                                          float scale) {
  std::vector<float> out(q.size());
  for (int b = 0; b < bh; ++b) {
    const size_t base = size_t(b) * t * dh;
    std::vector<double> p(size_t(t) * t);
    for (int i = 0; i < t; ++i) {
      double m = -1e300, z = 0;
      for (int j = 0; j < t; ++j) {
        double s = 0;
        for (int d = 0; d < dh; ++d) s += double(q[base + i * dh + d]) * k[base + j * dh + d];
        p[i * t + j] = s * scale;
        m = std::max(m, p[i * t + j]);
      }
      for (int j = 0; j < t; ++j) z += (p[i * t + j] = std::exp(p[i * t + j] - m));
      for (int j = 0; j < t; ++j) p[i * t + j] /= z;
    }
    for (int i = 0; i < t; ++i)
      for (int d = 0; d < dh; ++d) {
        double acc = 0;
        for (int j = 0; j < t; ++j) acc += p[i * t + j] * v[base + j * dh + d];
        out[base + i * dh + d] = float(acc);
      }
  }
  return out;
}

TEST_CASE("attention: forward matches an explicit softmax, gradients match finite differences") {
  Generator gen(11);
  for (int t : {1, 5, 17})
    for (int dh : {4, 8}) {
      CAPTURE(t);
      CAPTURE(dh);
      const float scale = 1.f / std::sqrt(float(dh));
      Tensor q = leaf({2, 3, t, dh}, gen, -2.f, 2.f), k = leaf({2, 3, t, dh}, gen, -2.f, 2.f);
      Tensor v = leaf({2, 3, t, dh}, gen);
      std::vector<float> want =
          naive_attention(q.to_vector(), k.to_vector(), v.to_vector(), 6, t, dh, scale);
      // float32 scores and sums of t <= 17 terms of size <= ~10: error a few 1e-6.
      CHECK(max_abs_diff(scaled_dot_product_attention(q, k, v, scale).to_vector(), want) < 1e-5f);
      check_gradients(
          [scale](auto& x) { return scaled_dot_product_attention(x[0], x[1], x[2], scale); },
          {q, k, v});
    }
  // A single (batch, head) problem takes the CPU backend's other path (fewer problems than
  // threads: problems in order, each GEMM threaded by oneDNN).
  Tensor q1 = leaf({1, 1, 33, 8}, gen), k1 = leaf({1, 1, 33, 8}, gen),
         v1 = leaf({1, 1, 33, 8}, gen);
  CHECK(max_abs_diff(scaled_dot_product_attention(q1, k1, v1, 0.5f).to_vector(),
                     naive_attention(q1.to_vector(), k1.to_vector(), v1.to_vector(), 1, 33, 8,
                                     0.5f)) < 1e-5f);
  check_gradients([](auto& x) { return scaled_dot_product_attention(x[0], x[1], x[2], 0.5f); },
                  {q1, k1, v1});
  Tensor q = leaf({1, 2, 5, 4}, gen), k = leaf({1, 2, 6, 4}, gen);
  CHECK(error_of([&] { scaled_dot_product_attention(q, k, q, 1.f); }).find("[1, 2, 6, 4]") !=
        std::string::npos);
}

TEST_CASE("attention: long rows (t = 129) agree with a reference built from ordinary ops") {
  // The fused node saves only lse [b, h, t] besides its inputs and output (see
  // engine/ops/attention.cpp), so its gradients come from probabilities recomputed in backward.
  // Compare them with autograd through softmax built from matmul, exp, sum and div.
  Generator gen(12);
  const int t = 129, dh = 8;
  const float scale = 0.35f;
  Tensor q = leaf({1, 2, t, dh}, gen), k = leaf({1, 2, t, dh}, gen), v = leaf({1, 2, t, dh}, gen);
  Tensor r = Tensor::uniform({1, 2, t, dh}, gen, -1.f, 1.f);

  Tensor fused = scaled_dot_product_attention(q, k, v, scale);
  sum(mul(fused, r)).backward();
  std::vector<float> gq = q.grad().to_vector(), gk = k.grad().to_vector(),
                     gv = v.grad().to_vector();
  for (Tensor* x : {&q, &k, &v}) x->zero_grad();

  // |scores| <= 0.35 * 8 = 2.8: exp without max subtraction is safe here.
  Tensor e = exp(mul_scalar(matmul(q, transpose(k, 2, 3)), scale));
  Tensor reference = matmul(div(e, sum(e, {3}, true)), v);
  sum(mul(reference, r)).backward();

  // Both sides are float32 sums of 129 terms of size <~ 1: differences of a few 1e-6.
  CHECK(max_abs_diff(fused.to_vector(), reference.to_vector()) < 2e-5f);
  CHECK(max_abs_diff(gq, q.grad().to_vector()) < 2e-5f);
  CHECK(max_abs_diff(gk, k.grad().to_vector()) < 2e-5f);
  CHECK(max_abs_diff(gv, v.grad().to_vector()) < 2e-5f);
}

// ---- patch embedding ---------------------------------------------------------------------------

TEST_CASE("attention over packed qkv [3, b, h, t, dh]: the same output and gradient as q, k, v") {
  // A projection permuted to [3, b, h, t, dh], as the ViT does: a strided view the op packs.
  Generator gen(13);
  const int b = 2, t = 7, h = 3, dh = 4;
  Tensor proj = leaf({b, t, 3, h, dh}, gen);
  Tensor r = Tensor::uniform({b, h, t, dh}, gen, -1.f, 1.f);
  Tensor packed = scaled_dot_product_attention(proj.permute({2, 0, 3, 1, 4}), 0.5f);
  sum(mul(packed, r)).backward();
  const std::vector<float> packed_grad = proj.grad().to_vector();
  proj.zero_grad();
  Tensor qkv = proj.permute({2, 0, 3, 1, 4});
  auto part = [&](int i) { return qkv.slice(0, i, i + 1).reshape({b, h, t, dh}); };
  Tensor separate = scaled_dot_product_attention(part(0), part(1), part(2), 0.5f);
  sum(mul(separate, r)).backward();
  // The same kernels on the same values: exactly equal.
  CHECK(packed.to_vector() == separate.to_vector());
  CHECK(packed_grad == proj.grad().to_vector());
  CHECK(error_of([&] { scaled_dot_product_attention(part(0), 1.f); }).find("[3, b, h, t, dh]") !=
        std::string::npos);
}

TEST_CASE("attention over the unpermuted projection [b, t, 3 h dh]: equal to the gathered path") {
  // On the CPU packed_self_attention reads q, k, v in place and writes [b, t, h dh]; the gathered
  // path permutes the projection to [3, b, h, t, dh], packs it, and permutes the output back.
  Generator gen(14);
  struct Case {
    int b, t, heads, dh;
  };
  // 1 x 1: fewer problems than threads (problems in order, threaded GEMMs); t = 1 and 33 odd tails.
  for (Case c : {Case{2, 7, 3, 4}, Case{1, 33, 1, 8}, Case{3, 1, 2, 4}, Case{2, 17, 2, 8}}) {
    CAPTURE(c.b);
    CAPTURE(c.t);
    CAPTURE(c.heads);
    CAPTURE(c.dh);
    const int width = c.heads * c.dh;
    const float scale = 1.f / std::sqrt(float(c.dh));
    Tensor proj = leaf({c.b, c.t, 3 * width}, gen, -2.f, 2.f);
    Tensor r = Tensor::uniform({c.b, c.t, width}, gen, -1.f, 1.f);
    Tensor packed = packed_self_attention(proj, c.heads, scale);
    REQUIRE(packed.shape() == Shape{c.b, c.t, width});
    sum(mul(packed, r)).backward();
    const std::vector<float> packed_grad = proj.grad().to_vector();
    proj.zero_grad();
    Tensor stacked = proj.reshape({c.b, c.t, 3, c.heads, c.dh}).permute({2, 0, 3, 1, 4});
    Tensor gathered = scaled_dot_product_attention(stacked, scale)
                          .permute({0, 2, 1, 3})
                          .reshape({c.b, c.t, width});
    sum(mul(gathered, r)).backward();
    // The same GEMMs on the same values, only their leading dimensions differ: float sums in the
    // same order, so within a few ulps (1e-6 on values and gradients of order 1).
    CHECK(max_abs_diff(packed.to_vector(), gathered.to_vector()) < 1e-6f);
    CHECK(max_abs_diff(packed_grad, proj.grad().to_vector()) < 1e-6f);
  }
  Tensor small = leaf({2, 5, 3 * 2 * 4}, gen);
  check_gradients([](auto& x) { return packed_self_attention(x[0], 2, 0.5f); }, {small});
  CHECK(error_of([&] { packed_self_attention(small, 5, 1.f); }).find("[2, 5, 24]") !=
        std::string::npos);
}

TEST_CASE("patch_embed: forward matches an explicit loop, parameter gradients") {
  Generator gen(13);
  const int B = 2, C = 3, H = 8, W = 12, P = 4, E = 5, GW = W / P, T = 1 + (H / P) * GW;
  Tensor img = Tensor::uniform({B, C, H, W}, gen, -1.f, 1.f);
  Tensor w = leaf({E, C, P, P}, gen), bias = leaf({E}, gen), cls = leaf({E}, gen);
  Tensor pos = leaf({T, E}, gen);
  Tensor tokens = patch_embed(img, w, bias, cls, pos, P);
  REQUIRE(tokens.shape() == Shape{B, T, E});
  std::vector<float> iv = img.to_vector(), wv = w.to_vector(), bv = bias.to_vector(),
                     cv = cls.to_vector(), pv = pos.to_vector(), got = tokens.to_vector();
  for (int b = 0; b < B; ++b)
    for (int tok = 0; tok < T; ++tok)
      for (int o = 0; o < E; ++o) {
        double want = pv[tok * E + o];
        if (tok == 0) {
          want += cv[o];
        } else {
          const int gy = (tok - 1) / GW, gx = (tok - 1) % GW;
          want += bv[o];
          for (int c = 0; c < C; ++c)
            for (int y = 0; y < P; ++y)
              for (int x = 0; x < P; ++x)
                want += double(wv[((o * C + c) * P + y) * P + x]) *
                        iv[((b * C + c) * H + gy * P + y) * W + gx * P + x];
        }
        // float32 GEMM over 48 products of size <= 1: error well under 1e-5.
        CHECK(got[(b * T + tok) * E + o] == doctest::Approx(want).epsilon(1e-5));
      }
  // The flattened weight [e, c*p*p] is the same weight.
  CHECK(patch_embed(img, reshape(w, {E, C * P * P}), bias, cls, pos, P).to_vector() == got);
  check_gradients([&](auto& x) { return patch_embed(img, x[0], x[1], x[2], x[3], P); },
                  {w, bias, cls, pos});
  const std::string err = error_of([&] {
    patch_embed(Tensor::zeros({1, C, 10, 12}), w, bias, cls, pos, P);
  });
  CHECK(err.find("10x12") != std::string::npos);
  CHECK(err.find("4") != std::string::npos);
}

// ---- nearest resampling: fusion and resize -----------------------------------------------------

// x [n, c, h, w] resampled to [n, c, oh, ow]: source row floor(oy * h / oh), column likewise.
static std::vector<float> naive_resize(const std::vector<float>& x, int planes, int h, int w,
                                       int oh, int ow) {
  std::vector<float> y(size_t(planes) * oh * ow);
  for (int pl = 0; pl < planes; ++pl)
    for (int oy = 0; oy < oh; ++oy)
      for (int ox = 0; ox < ow; ++ox)
        y[(pl * oh + oy) * ow + ox] = x[(pl * h + oy * h / oh) * w + ox * w / ow];
  return y;
}

TEST_CASE("multi_resolution_fusion: explicit nearest sum, up- and down-sampling, gradients") {
  Generator gen(14);
  const int N = 2, C = 3, O = 15;
  // Branch 0 has the output's size, so it maps one to one onto the output; it is set so that
  // every ReLU pre-activation is at least 0.2 away from 0 (either sign), far beyond the
  // gradient check's step of 0.01, and the mask [y > 0] is exercised both ways.
  const int sizes[] = {15, 8, 4, 30};
  std::vector<Tensor> xs;
  std::vector<float> rest(N * C * O * O, 0.f);
  for (int i = 1; i < 4; ++i) {
    xs.push_back(leaf({N, C, sizes[i], sizes[i]}, gen));
    std::vector<float> up = naive_resize(xs.back().to_vector(), N * C, sizes[i], sizes[i], O, O);
    for (size_t j = 0; j < up.size(); ++j) rest[j] += up[j];
  }
  std::vector<float> b0(rest.size()), want(rest.size());
  for (size_t j = 0; j < rest.size(); ++j) {
    const double u = gen.uniform();
    const float pre = u < 0.5 ? float(-0.2 - u) : float(u - 0.3);  // |pre| >= 0.2
    b0[j] = pre - rest[j];
    want[j] = std::max(pre, 0.f);
  }
  Tensor x0 = Tensor::from_vector(b0, {N, C, O, O});
  x0.requires_grad_();
  xs.insert(xs.begin(), x0);
  Tensor y = multi_resolution_fusion(xs, O, O);
  REQUIRE(y.shape() == Shape{N, C, O, O});
  // Four float32 additions of values of size ~1: a few ulps.
  CHECK(max_abs_diff(y.to_vector(), want) < 1e-5f);
  check_gradients([&](auto& x) { return multi_resolution_fusion(x, O, O); }, xs);
  CHECK(error_of([&] {
          multi_resolution_fusion({x0, Tensor::zeros({N, C + 1, 4, 4})}, O, O);
        }).find("[2, 4, 4, 4]") != std::string::npos);
}

TEST_CASE("resize_nearest: forward by the size rule, gradient sums shared sources") {
  Generator gen(15);
  Tensor x = leaf({2, 3, 5, 7}, gen);
  // Rows upsampled (5 -> 9: sources repeat), columns downsampled (7 -> 3: sources skipped).
  Tensor y = resize_nearest(x, 9, 3);
  REQUIRE(y.shape() == Shape{2, 3, 9, 3});
  CHECK(y.to_vector() == naive_resize(x.to_vector(), 6, 5, 7, 9, 3));
  check_gradients([](auto& t) { return resize_nearest(t[0], 9, 3); }, {x});
  check_gradients([](auto& t) { return resize_nearest(t[0], 2, 11); }, {x});
}

TEST_CASE("pad2d: zeros around a copy, gradient is the interior") {
  Generator gen(16);
  Tensor x = leaf({2, 3, 4, 5}, gen);
  Tensor y = pad2d(x, 1, 2, 3, 0);
  REQUIRE(y.shape() == Shape{2, 3, 7, 8});
  std::vector<float> xv = x.to_vector(), yv = y.to_vector();
  for (int pl = 0; pl < 6; ++pl)
    for (int r = 0; r < 7; ++r)
      for (int c = 0; c < 8; ++c) {
        const bool inside = r >= 1 && r < 5 && c >= 3;
        CHECK(yv[(pl * 7 + r) * 8 + c] == (inside ? xv[(pl * 4 + r - 1) * 5 + c - 3] : 0.f));
      }
  check_gradients([](auto& t) { return pad2d(t[0], 1, 2, 3, 0); }, {x});
  CHECK(error_of([&] { pad2d(x, 0, -1, 0, 0); }).find("-1") != std::string::npos);
}

// ---- loss --------------------------------------------------------------------------------------

// The mean over rows of -sum_c target(r, c) log softmax(z_r)_c, in double: the reference both
// cross-entropies are checked against.
template <class Target>
static double soft_target_cross_entropy(const std::vector<float>& zv, int rows, int classes,
                                        Target target) {
  double total = 0;
  for (int r = 0; r < rows; ++r) {
    double norm = 0;
    for (int c = 0; c < classes; ++c) norm += std::exp(double(zv[r * classes + c]));
    for (int c = 0; c < classes; ++c)
      total -= target(r, c) * (zv[r * classes + c] - std::log(norm));
  }
  return total / rows;
}

TEST_CASE("cross_entropy: hand formula with and without smoothing, gradients, bad labels") {
  Generator gen(17);
  const int rows = 4, classes = 5;
  Tensor z = leaf({rows, classes}, gen, -3.f, 3.f);
  const std::vector<int32_t> labels = {0, 4, 2, 2};
  std::vector<float> zv = z.to_vector();
  for (float s : {0.f, 0.1f}) {
    CAPTURE(s);
    const double mean = soft_target_cross_entropy(zv, rows, classes, [&](int r, int c) {
      return (c == labels[r] ? 1.0 - s : 0.0) + s / classes;
    });
    Tensor loss = cross_entropy(z, labels, s);
    REQUIRE(loss.shape() == Shape{1});
    // float32 log-sum-exp over 5 logits of size <= 3: relative error ~1e-6.
    CHECK(loss.item() == doctest::Approx(mean).epsilon(1e-5));
    check_gradients([&](auto& x) { return cross_entropy(x[0], labels, s); }, {z});
  }
  const std::string err = error_of([&] { cross_entropy(z, {0, 1, 5, 2}); });
  CHECK(err.find("label 5") != std::string::npos);
  CHECK(err.find("row 2") != std::string::npos);
  CHECK(error_of([&] { cross_entropy(z, {0, -1, 1, 2}); }).find("label -1") != std::string::npos);
  CHECK(error_of([&] { cross_entropy(z, {0, 1}); }) != "");
}

TEST_CASE("mixed_cross_entropy: the soft-target cross-entropy of the mixed, smoothed targets") {
  Generator gen(18);
  const int rows = 4, classes = 3;
  Tensor z = leaf({rows, classes}, gen, -3.f, 3.f);
  const std::vector<int32_t> a = {0, 2, 1, 1}, b = {1, 2, 0, 2};
  const std::vector<float> w = {0.25f, 1.f, 0.f, 0.6f};
  std::vector<float> zv = z.to_vector();
  for (float s : {0.f, 0.1f}) {
    CAPTURE(s);
    // timm's mixup_target: w onehot(a, on, off) + (1 - w) onehot(b, on, off), on = 1 - s + s/C.
    const double mean = soft_target_cross_entropy(zv, rows, classes, [&](int r, int c) {
      const double ta = (c == a[r] ? 1.0 - s : 0.0) + s / classes;
      const double tb = (c == b[r] ? 1.0 - s : 0.0) + s / classes;
      return w[r] * ta + (1.0 - w[r]) * tb;
    });
    Tensor loss = mixed_cross_entropy(z, a, b, w, s);
    REQUIRE(loss.shape() == Shape{1});
    CHECK(loss.item() == doctest::Approx(mean).epsilon(1e-5));
    check_gradients([&](auto& x) { return mixed_cross_entropy(x[0], a, b, w, s); }, {z});
  }
  // Weight 1 everywhere: the plain cross-entropy of the first labels.
  CHECK(mixed_cross_entropy(z, a, b, {1, 1, 1, 1}, 0.1f).item() ==
        doctest::Approx(cross_entropy(z, a, 0.1f).item()).epsilon(1e-6));
  CHECK(error_of([&] {
          mixed_cross_entropy(z, a, b, {0.5f, 2.f, 0, 0});
        }).find("weight 2") != std::string::npos);
  CHECK(error_of([&] { mixed_cross_entropy(z, a, {0, 1}, w); }) != "");
}
