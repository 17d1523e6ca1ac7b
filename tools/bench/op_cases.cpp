// op_cases.cpp: one case per differentiable op of engine/ops.h that the models run, plus softmax
// and batched matmul. Where each shape comes from (B = batch):
//   ViT-Ti/16 at 120x120: images padded to 128, 65 tokens of width 192, 3 heads of 64, MLP 768
//   HRNet-W18-small: stem 120 -> 60 -> 30; branches of 16, 32, 64, 128 channels at 30, 15, 8, 4
//   CNN: stages of 32, 64, 128, 256 channels at 120, 60, 30, 15, 2x2 max pools between
// sub, div, neg, exp, log and the scalar ops share add's and mul's primitives and no model uses
// them, so they have no case of their own.
#include "tools/bench/op_cases.h"

#include <cmath>

#include "engine/ops.h"

namespace forge::bench {

namespace {

// A random input on `device`; `grad` makes it a leaf that receives a gradient.
Tensor input(const Shape& shape, Generator& gen, Device device, bool grad = true) {
  Tensor t = Tensor::randn(shape, gen, 0.f, 1.f, device);
  if (grad) t.requires_grad_();
  return t;
}

std::string shapes_of(std::initializer_list<std::pair<const char*, Shape>> named) {
  std::string s;
  for (const auto& [name, shape] : named) {
    if (!s.empty()) s += ' ';
    s.append(name).append(shape_str(shape));
  }
  return s;
}

// A k x k convolution of c channels of size x size to k_out channels, zero padding `pad`.
Conv2dDesc square_conv(int n, int c, int size, int k_out, int k, int stride, int pad) {
  const int out = (size + 2 * pad - k) / stride + 1;
  return {.n = n,
          .c = c,
          .h = size,
          .w = size,
          .k = k_out,
          .r = k,
          .s = k,
          .stride = stride,
          .pad = pad,
          .oh = out,
          .ow = out};
}

}  // namespace

std::vector<OpCase> make_op_cases(Device dev, int batch, Generator& gen) {
  const int64_t b = batch, tokens = 65, dim = 192, heads = 3, dh = 64, mlp = 768;
  const int64_t rows = b * tokens;
  std::vector<OpCase> cases;
  auto add_case = [&](std::string name, std::string shapes, PassCosts cost,
                      std::vector<Tensor> leaves, std::function<Tensor()> forward) {
    cases.push_back(
        {std::move(name), std::move(shapes), cost, std::move(forward), std::move(leaves)});
  };

  {  // ViT MLP fc1
    Tensor x = input({rows, dim}, gen, dev), w = input({mlp, dim}, gen, dev),
           bias = input({mlp}, gen, dev);
    add_case("linear", shapes_of({{"x", x.shape()}, {"w", w.shape()}, {"b", bias.shape()}}),
             linear_cost(rows, dim, mlp, true), {x, w, bias}, [=] { return linear(x, w, bias); });
  }
  {  // attention scores q k^T as an unfused batched GEMM
    Tensor q = input({b * heads, tokens, dh}, gen, dev),
           k = input({b * heads, dh, tokens}, gen, dev);
    add_case("matmul_batched", shapes_of({{"a", q.shape()}, {"b", k.shape()}}),
             matmul_cost(b * heads, tokens, tokens, dh), {q, k}, [=] { return matmul(q, k); });
  }
  {  // HRNet stage-1 3x3 conv at 30x30
    Tensor x = input({b, 64, 30, 30}, gen, dev), w = input({64, 64, 3, 3}, gen, dev);
    const Conv2dDesc d = square_conv(batch, 64, 30, 64, 3, 1, 1);
    add_case("conv2d_3x3", shapes_of({{"x", x.shape()}, {"w", w.shape()}}),
             conv2d_cost(d, true, false), {x, w}, [=] { return conv2d(x, w, Tensor(), 1, 1); });
  }
  {  // HRNet's first stem conv on the image (which needs no gradient), stride 2
    Tensor x = input({b, 3, 120, 120}, gen, dev, false), w = input({64, 3, 3, 3}, gen, dev);
    const Conv2dDesc d = square_conv(batch, 3, 120, 64, 3, 2, 1);
    add_case("conv2d_stem", shapes_of({{"x", x.shape()}, {"w", w.shape()}}),
             conv2d_cost(d, false, false), {w}, [=] { return conv2d(x, w, Tensor(), 2, 1); });
  }
  for (bool training : {true, false}) {  // after the 3x3 conv above
    Tensor x = input({b, 64, 30, 30}, gen, dev), gamma = input({64}, gen, dev),
           beta = input({64}, gen, dev);
    Tensor mean = Tensor::zeros({64}, dev), var = Tensor::ones({64}, dev);
    add_case(training ? "batch_norm_train" : "batch_norm_eval", shapes_of({{"x", x.shape()}}),
             training ? batch_norm_train_cost(b, 64, 900) : batch_norm_eval_cost(b, 64, 900),
             {x, gamma, beta},
             [=] { return batch_norm2d(x, gamma, beta, mean, var, training, 0.1f, 1e-5f); });
  }
  {
    Tensor x = input({rows, dim}, gen, dev), gamma = input({dim}, gen, dev),
           beta = input({dim}, gen, dev);
    add_case("layer_norm", shapes_of({{"x", x.shape()}}), layer_norm_cost(rows, dim),
             {x, gamma, beta}, [=] { return layer_norm(x, gamma, beta, 1e-6f); });
  }
  {  // ViT MLP activation
    Tensor x = input({rows, mlp}, gen, dev);
    add_case("gelu", shapes_of({{"x", x.shape()}}), gelu_cost(x.numel()), {x},
             [=] { return gelu(x); });
  }
  {
    Tensor x = input({b, 64, 30, 30}, gen, dev);
    add_case("relu", shapes_of({{"x", x.shape()}}), relu_cost(x.numel()), {x},
             [=] { return relu(x); });
  }
  {  // ViT MLP dropout, p = 0.1
    Tensor x = input({rows, mlp}, gen, dev);
    add_case("dropout", shapes_of({{"x", x.shape()}}), dropout_cost(x.numel()), {x},
             [=] { return dropout(x, 0.1f, true, 1234); });
  }
  {  // the attention probabilities, were they unfused
    Tensor x = input({b * heads * tokens, tokens}, gen, dev);
    add_case("softmax", shapes_of({{"x", x.shape()}}), softmax_cost(b * heads * tokens, tokens),
             {x}, [=] { return softmax(x); });
  }
  {
    Tensor q = input({b, heads, tokens, dh}, gen, dev), k = input({b, heads, tokens, dh}, gen, dev),
           v = input({b, heads, tokens, dh}, gen, dev);
    const float scale = 1.f / std::sqrt(float(dh));
    add_case("attention", shapes_of({{"q,k,v", q.shape()}}), attention_cost(b * heads, tokens, dh),
             {q, k, v}, [=] { return scaled_dot_product_attention(q, k, v, scale); });
  }
  {  // the ViT's: read from the qkv projection's output, written as the output projection reads
    Tensor qkv = input({b, tokens, 3 * dim}, gen, dev);
    add_case("attention_packed", shapes_of({{"qkv", qkv.shape()}}),
             attention_cost(b * heads, tokens, dh), {qkv},
             [=] { return packed_self_attention(qkv, heads, 1.f / std::sqrt(float(dh))); });
  }
  {  // ViT-Ti/16 on the padded 128x128 image (which needs no gradient)
    Tensor img = input({b, 3, 128, 128}, gen, dev, false), w = input({dim, 3, 16, 16}, gen, dev),
           bias = input({dim}, gen, dev), cls = input({dim}, gen, dev),
           pos = input({tokens, dim}, gen, dev);
    const PatchEmbedDesc d{batch, 3, 128, 128, 16, int(dim)};
    add_case("patch_embed", shapes_of({{"images", img.shape()}, {"w", w.shape()}}),
             patch_embed_cost(d), {w, bias, cls, pos},
             [=] { return patch_embed(img, w, bias, cls, pos, 16); });
  }
  {  // HRNet stage 4 into branch 0: four 16-channel inputs at 30, 15, 8, 4
    std::vector<Tensor> xs;
    FusionDesc d{.n = batch, .c = 16, .oh = 30, .ow = 30, .branches = 4, .hs = {}, .ws = {}};
    const int sizes[] = {30, 15, 8, 4};
    for (int i = 0; i < 4; ++i) {
      xs.push_back(input({b, 16, sizes[i], sizes[i]}, gen, dev));
      d.hs[i] = d.ws[i] = sizes[i];
    }
    add_case("fusion", shapes_of({{"x0", xs[0].shape()}, {"x3", xs[3].shape()}}), fusion_cost(d),
             xs, [=] { return multi_resolution_fusion(xs, 30, 30); });
  }
  {  // residual sums and a gating product of HRNet-sized maps
    Tensor x = input({b, 64, 30, 30}, gen, dev), y = input({b, 64, 30, 30}, gen, dev);
    add_case("add", shapes_of({{"a,b", x.shape()}}), add_cost(x.numel()), {x, y},
             [=] { return add(x, y); });
    add_case("mul", shapes_of({{"a,b", x.shape()}}), mul_cost(x.numel()), {x, y},
             [=] { return mul(x, y); });
  }
  {  // HRNet head: the four branches at 30x30, concatenated along channels
    std::vector<Tensor> xs;
    int64_t total = 0;
    for (int64_t c : {16, 32, 64, 128}) {
      xs.push_back(input({b, c, 30, 30}, gen, dev));
      total += xs.back().numel();
    }
    add_case("concat", shapes_of({{"x0", xs[0].shape()}, {"x3", xs[3].shape()}}), copy_cost(total),
             xs, [=] { return concat(xs, 1); });
  }
  {  // ViT's q/k/v head split: a permuted view made contiguous
    Tensor x = input({b, heads, tokens, dh}, gen, dev);
    add_case("permute_copy", shapes_of({{"x", x.shape()}}), copy_cost(x.numel()), {x}, [=] {
      return contiguous(permute(x, {0, 2, 1, 3}));
    });
  }
  {  // mean over the tokens of a ViT activation; sum of an HRNet map to one number
    Tensor x = input({b, tokens, dim}, gen, dev);
    add_case("mean", shapes_of({{"x", x.shape()}}) + " axis 1",
             reduce_cost(x.numel(), b * dim, true), {x}, [=] { return mean(x, {1}); });
    Tensor y = input({b, 64, 30, 30}, gen, dev);
    add_case("sum", shapes_of({{"x", y.shape()}}), reduce_cost(y.numel(), 1, false), {y},
             [=] { return sum(y); });
  }
  {  // CNN: after the first stage
    Tensor x = input({b, 32, 120, 120}, gen, dev);
    const Pool2dDesc d{batch, 32, 120, 120, 2, 2, 0, 60, 60};
    add_case("max_pool", shapes_of({{"x", x.shape()}}) + " 2x2/2", max_pool_cost(d), {x},
             [=] { return max_pool2d(x, 2, 2); });
  }
  {  // HRNet head: the 240 concatenated channels
    Tensor x = input({b, 240, 30, 30}, gen, dev);
    add_case("global_avg_pool", shapes_of({{"x", x.shape()}}),
             reduce_cost(x.numel(), b * 240, true), {x}, [=] { return global_avg_pool(x); });
  }
  {  // HRNet head: branch 2 up to 30x30
    Tensor x = input({b, 64, 8, 8}, gen, dev);
    add_case("resize_nearest", shapes_of({{"x", x.shape()}}) + " -> 30x30",
             resize_nearest_cost(x.numel(), b * 64 * 900), {x},
             [=] { return resize_nearest(x, 30, 30); });
  }
  {  // ViT: 120 -> 128 (timed with a gradient, though the model's images need none)
    Tensor x = input({b, 3, 120, 120}, gen, dev);
    add_case("pad", shapes_of({{"x", x.shape()}}) + " -> 128x128",
             pad_cost(x.numel(), b * 3 * 128 * 128), {x}, [=] { return pad2d(x, 4, 4, 4, 4); });
  }
  {  // two classes (selfie, anime), the models' loss
    Tensor logits = input({b, 2}, gen, dev);
    std::vector<int32_t> labels(batch);
    for (int i = 0; i < batch; ++i) labels[i] = i % 2;
    add_case("cross_entropy", shapes_of({{"logits", logits.shape()}}), cross_entropy_cost(b, 2),
             {logits}, [=] { return cross_entropy(logits, labels); });
  }
  return cases;
}

}  // namespace forge::bench
