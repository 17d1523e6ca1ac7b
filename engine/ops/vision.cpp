// vision.cpp: patch_embed (ViT), multi_resolution_fusion (HRNet), resize_nearest and pad2d, each
// one autograd node over its fused primitive (engine/cpu/vision.cpp has the math and the
// backward derivations).
//   patch_embed: saves the image (to rebuild the patch matrix); gradients for weight, bias, cls
//                and pos only (the image is data).
//   fusion:      saves only its output y: the ReLU mask is y > 0 and resampling is linear.
//   resize, pad: save nothing but sizes.
#include <string>

#include "engine/ops.h"
#include "engine/ops/op_util.h"

namespace forge {
using namespace detail;

Tensor patch_embed(const Tensor& images, const Tensor& weight, const Tensor& bias,
                   const Tensor& cls, const Tensor& pos, int patch) {
  const char* op = "patch_embed";
  check_same_device(op, {images, weight, bias, cls, pos});
  check_ndim(op, "images", images, 4);
  if (patch <= 0) throw std::invalid_argument("patch_embed: patch size must be positive");
  PatchEmbedDesc d{
      int(images.size(0)), int(images.size(1)), int(images.size(2)), int(images.size(3)), patch,
      int(weight.size(0))};
  if (d.h % patch || d.w % patch)
    throw std::invalid_argument("patch_embed: image size " + std::to_string(d.h) + "x" +
                                std::to_string(d.w) + " is not a multiple of the patch size " +
                                std::to_string(patch));
  if (weight.shape() != Shape{d.e, d.c, patch, patch} &&
      weight.shape() != Shape{d.e, int64_t(d.patch_dim())})
    throw std::invalid_argument(
        "patch_embed: weight has shape " + shape_str(weight.shape()) + ", expected [e, " +
        std::to_string(d.c) + ", " + std::to_string(patch) + ", " + std::to_string(patch) +
        "] or [e, " + std::to_string(d.patch_dim()) + "] for images " + shape_str(images.shape()));
  check_shape(op, "bias", bias, {d.e});
  check_shape(op, "cls", cls, {d.e});
  check_shape(op, "pos", pos, {d.tokens(), d.e});
  Tensor img = plain(images), w = plain(weight), b = plain(bias), c = plain(cls), p = plain(pos);
  Tensor tokens = Tensor::empty({d.b, d.tokens(), d.e}, images.device());
  if (tokens.numel())
    backend_of(images).patch_embed_forward(d, img.data(), w.data(), b.data(), c.data(), p.data(),
                                           tokens.data());
  return record(
      tokens, op, {images, weight, bias, cls, pos}, [img, d, ws = weight.shape()](const Tensor& g) {
        Tensor gc = plain(g);
        Tensor gw = Tensor::empty(ws, g.device()), gbias = Tensor::empty({d.e}, g.device());
        Tensor gcls = Tensor::empty({d.e}, g.device());
        Tensor gpos = Tensor::empty({d.tokens(), d.e}, g.device());
        backend_of(g).patch_embed_backward(d, img.data(), gc.data(), gw.data(), gbias.data(),
                                           gcls.data(), gpos.data());
        return std::vector<Tensor>{Tensor(), gw, gbias, gcls, gpos};
      });
}

Tensor multi_resolution_fusion(const std::vector<Tensor>& xs, int oh, int ow) {
  const char* op = "multi_resolution_fusion";
  if (xs.empty() || xs.size() > size_t(kMaxBranches))
    throw std::invalid_argument("multi_resolution_fusion: needs 1 to " +
                                std::to_string(kMaxBranches) + " branches, got " +
                                std::to_string(xs.size()));
  if (oh <= 0 || ow <= 0)
    throw std::invalid_argument("multi_resolution_fusion: output size " + std::to_string(oh) + "x" +
                                std::to_string(ow) + " must be positive");
  check_ndim(op, "branch 0", xs[0], 4);
  FusionDesc d{int(xs[0].size(0)), int(xs[0].size(1)), oh, ow, int(xs.size()), {}, {}};
  std::vector<Tensor> inputs;
  const float* ptrs[kMaxBranches];
  for (size_t i = 0; i < xs.size(); ++i) {
    const std::string what = "branch " + std::to_string(i);
    check_same_device(op, {xs[0], xs[i]});
    check_ndim(op, what.c_str(), xs[i], 4);
    if (xs[i].size(0) != d.n || xs[i].size(1) != d.c || xs[i].size(2) == 0 || xs[i].size(3) == 0)
      throw std::invalid_argument("multi_resolution_fusion: " + what + " has shape " +
                                  shape_str(xs[i].shape()) + ", expected [" + std::to_string(d.n) +
                                  ", " + std::to_string(d.c) + ", h > 0, w > 0] like branch 0 " +
                                  shape_str(xs[0].shape()));
    d.hs[i] = int(xs[i].size(2));
    d.ws[i] = int(xs[i].size(3));
    inputs.push_back(plain(xs[i]));
    ptrs[i] = inputs.back().data();
  }
  Tensor y = Tensor::empty({d.n, d.c, oh, ow}, xs[0].device());
  if (y.numel()) backend_of(y).fusion_forward(d, ptrs, y.data());
  return record(y, op, xs, [d, yd = y.detach()](const Tensor& g) {
    Tensor gc = plain(g);
    std::vector<Tensor> gxs;
    float* gptrs[kMaxBranches];
    for (int i = 0; i < d.branches; ++i) {
      gxs.push_back(Tensor::empty({d.n, d.c, d.hs[i], d.ws[i]}, g.device()));
      gptrs[i] = gxs.back().data();
    }
    if (gc.numel()) backend_of(g).fusion_backward(d, yd.data(), gc.data(), gptrs);
    return gxs;
  });
}

Tensor resize_nearest(const Tensor& x, int oh, int ow) {
  check_ndim("resize_nearest", "x", x, 4);
  if (oh <= 0 || ow <= 0 || x.size(2) == 0 || x.size(3) == 0)
    throw std::invalid_argument("resize_nearest: cannot resize " + shape_str(x.shape()) + " to " +
                                std::to_string(oh) + "x" + std::to_string(ow));
  const int n = int(x.size(0)), c = int(x.size(1)), h = int(x.size(2)), w = int(x.size(3));
  Tensor xc = plain(x), y = Tensor::empty({n, c, oh, ow}, x.device());
  if (y.numel()) backend_of(x).resize_nearest_forward(n, c, h, w, oh, ow, xc.data(), y.data());
  return record(y, "resize_nearest", {x}, [n, c, h, w, oh, ow](const Tensor& g) {
    Tensor gc = plain(g), gx = Tensor::empty({n, c, h, w}, g.device());
    if (gx.numel()) backend_of(g).resize_nearest_backward(n, c, h, w, oh, ow, gc.data(), gx.data());
    return std::vector<Tensor>{gx};
  });
}

Tensor pad2d(const Tensor& x, int top, int bottom, int left, int right) {
  check_ndim("pad2d", "x", x, 4);
  if (top < 0 || bottom < 0 || left < 0 || right < 0)
    throw std::invalid_argument("pad2d: padding (top " + std::to_string(top) + ", bottom " +
                                std::to_string(bottom) + ", left " + std::to_string(left) +
                                ", right " + std::to_string(right) + ") must be non-negative");
  const int n = int(x.size(0)), c = int(x.size(1)), h = int(x.size(2)), w = int(x.size(3));
  Tensor xc = plain(x);
  Tensor y = Tensor::empty({n, c, h + top + bottom, w + left + right}, x.device());
  if (y.numel())
    backend_of(x).pad2d_forward(n, c, h, w, top, bottom, left, right, xc.data(), y.data());
  return record(y, "pad2d", {x}, [n, c, h, w, top, bottom, left, right](const Tensor& g) {
    Tensor gc = plain(g), gx = Tensor::empty({n, c, h, w}, g.device());
    if (gx.numel())
      backend_of(g).pad2d_backward(n, c, h, w, top, bottom, left, right, gc.data(), gx.data());
    return std::vector<Tensor>{gx};
  });
}

}  // namespace forge
