// vit.cpp: the Vision Transformer's layers (see vit.h for the architecture).
#include "models/vit.h"

#include <cmath>
#include <stdexcept>
#include <string>

#include "engine/autograd.h"
#include "engine/nn/init.h"
#include "engine/ops.h"

namespace forge::models {

SelfAttention::SelfAttention(int dim, int heads, float dropout, Generator& gen, Device device)
    : heads_(heads) {
  if (dim % heads != 0)
    throw std::invalid_argument("SelfAttention: width " + std::to_string(dim) +
                                " is not divisible by " + std::to_string(heads) + " heads");
  qkv_ = register_module("qkv", std::make_shared<nn::Linear>(dim, 3 * dim, gen, device));
  proj_ = register_module("proj", std::make_shared<nn::Linear>(dim, dim, gen, device));
  drop_ = register_module("drop", std::make_shared<nn::Dropout>(dropout, gen));
}

Tensor SelfAttention::attend(const Tensor& x) {
  const int64_t dh = x.size(2) / heads_;
  // q, k and v from one projection [b, t, 3 dim], read as they are; out [b, t, dim].
  Tensor o = packed_self_attention(qkv_->forward(x), heads_, 1.f / std::sqrt(float(dh)));
  return proj_->forward(o);
}

Tensor SelfAttention::probabilities(const Tensor& x) {
  NoGradGuard no_grad;
  const int64_t b = x.size(0), t = x.size(1), dim = x.size(2), dh = dim / heads_;
  Tensor qkv = qkv_->forward(x).reshape({b, t, 3, heads_, dh}).permute({2, 0, 3, 1, 4});
  Tensor q = qkv.slice(0, 0, 1).reshape({b, heads_, t, dh});
  Tensor k = qkv.slice(0, 1, 2).reshape({b, heads_, t, dh});
  return softmax(matmul(q, transpose(k, 2, 3)) * (1.f / std::sqrt(float(dh))));
}

Tensor SelfAttention::forward(const Tensor& x) {
  return drop_->forward(attend(x));
}

Tensor SelfAttention::forward_add(const Tensor& residual, const Tensor& x) {
  return drop_->forward_add(residual, attend(x));
}

VitBlock::VitBlock(const VitConfig& cfg, int index, Generator& gen, Device device) {
  norm1_ = register_module("norm1", std::make_shared<nn::LayerNorm>(cfg.dim, device));
  attn_ = register_module(
      "attn", std::make_shared<SelfAttention>(cfg.dim, cfg.heads, cfg.dropout, gen, device));
  norm2_ = register_module("norm2", std::make_shared<nn::LayerNorm>(cfg.dim, device));
  fc1_ = std::make_shared<nn::Linear>(cfg.dim, cfg.mlp_dim, gen, device);
  mlp_drop1_ = std::make_shared<nn::Dropout>(cfg.dropout, gen);
  fc2_ = std::make_shared<nn::Linear>(cfg.mlp_dim, cfg.dim, gen, device);
  mlp_drop2_ = std::make_shared<nn::Dropout>(cfg.dropout, gen);
  mlp_ = register_module("mlp",
                         std::make_shared<nn::Sequential>(std::vector<std::shared_ptr<nn::Module>>{
                             fc1_, std::make_shared<nn::GELU>(), mlp_drop1_, fc2_, mlp_drop2_}));
  // No generator draws here, so a drop-path rate leaves the initial weights as they were.
  const float rate = cfg.depth > 1 ? cfg.drop_path * float(index) / float(cfg.depth - 1) : 0.f;
  drop_path1_ = register_module("drop_path1", std::make_shared<nn::DropPath>(rate, 2 * index));
  drop_path2_ = register_module("drop_path2", std::make_shared<nn::DropPath>(rate, 2 * index + 1));
}

Tensor VitBlock::attention_probabilities(const Tensor& x) {
  return attn_->probabilities(norm1_->forward(x));
}

Tensor VitBlock::forward(const Tensor& x) {
  // Without drop path, each branch's dropout is fused with the residual sum.
  const Tensor n1 = norm1_->forward(x);
  Tensor h = drop_path1_->active() ? drop_path1_->forward_add(x, attn_->forward(n1))
                                   : attn_->forward_add(x, n1);
  Tensor a = mlp_drop1_->forward_gelu(fc1_->forward(norm2_->forward(h)));
  return drop_path2_->active() ? drop_path2_->forward_add(h, mlp_drop2_->forward(fc2_->forward(a)))
                               : mlp_drop2_->forward_add(h, fc2_->forward(a));
}

VisionTransformer::VisionTransformer(ModelSpec spec, const VitConfig& cfg, Generator& gen,
                                     Device device)
    : ImageClassifier(std::move(spec)), cfg_(cfg) {
  const int size = this->spec().image_size;
  padded_size_ = (size + cfg.patch - 1) / cfg.patch * cfg.patch;
  const int grid = padded_size_ / cfg.patch, tokens = 1 + grid * grid;
  if (cfg.stem == "conv") {
    conv_stem_ =
        register_module("stem", std::make_shared<ConvStem>(cfg.patch, cfg.dim, gen, device));
  } else {
    const int64_t patch_dim = 3 * cfg.patch * cfg.patch;
    patch_weight_ = register_parameter(
        "patch_embed.weight",
        nn::xavier_uniform({cfg.dim, 3, cfg.patch, cfg.patch}, patch_dim, cfg.dim, gen, device));
    patch_bias_ = register_parameter("patch_embed.bias", Tensor::zeros({cfg.dim}, device));
  }
  cls_token_ = register_parameter("cls_token", nn::trunc_normal({cfg.dim}, 0.02f, gen, device));
  pos_embed_ =
      register_parameter("pos_embed", nn::trunc_normal({tokens, cfg.dim}, 0.02f, gen, device));
  embed_drop_ = register_module("embed_drop", std::make_shared<nn::Dropout>(cfg.dropout, gen));
  for (int i = 0; i < cfg.depth; ++i)
    blocks_.push_back(register_module("blocks." + std::to_string(i),
                                      std::make_shared<VitBlock>(cfg, i, gen, device)));
  norm_ = register_module("norm", std::make_shared<nn::LayerNorm>(cfg.dim, device));
  head_ = register_module(
      "head", std::make_shared<nn::Linear>(cfg.dim, this->spec().num_classes, gen, device));
}

Tensor VisionTransformer::embed(const Tensor& images) {
  Tensor x = images;
  const int extra = padded_size_ - static_cast<int>(images.size(-1));
  // Centre the image in the padded square (120 -> 128: 4 zero pixels on every side).
  if (extra > 0) x = pad2d(x, extra / 2, extra - extra / 2, extra / 2, extra - extra / 2);
  x = conv_stem_ ? conv_stem_->tokens(x, cls_token_, pos_embed_)
                 : patch_embed(x, patch_weight_, patch_bias_, cls_token_, pos_embed_, cfg_.patch);
  return embed_drop_->forward(x);
}

TokenAttention VisionTransformer::attention_probabilities(const Tensor& images) {
  NoGradGuard no_grad;
  TokenAttention out{.grid = padded_size_ / cfg_.patch, .padded_size = padded_size_};
  Tensor x = embed(images);
  for (auto& block : blocks_) {
    out.layers.push_back(block->attention_probabilities(x));
    x = block->forward(x);
  }
  return out;
}

Tensor VisionTransformer::forward(const Tensor& images) {
  Tensor x = embed(images);
  for (auto& block : blocks_) x = block->forward(x);
  x = norm_->forward(x);
  Tensor cls = x.slice(1, 0, 1).reshape({x.size(0), cfg_.dim});
  return head_->forward(cls);
}

}  // namespace forge::models
