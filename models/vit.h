// vit.h: the Vision Transformer (Dosovitskiy et al. 2021), pre-norm blocks:
//
//   images -> zero-pad to a multiple of the patch -> patch embedding (+ class token, + learned
//   position embedding) -> dropout -> depth x [ x += drop(attn(LN(x)));  x += drop(mlp(LN(x))) ]
//   -> LN -> class token -> linear head
//
// With drop_path > 0, each residual branch passes through stochastic depth (nn::DropPath) after
// its dropout; block i of depth d drops at drop_path * i / (d - 1), as timm's ViT.
//
// ViT-Ti/16 (the "vit" preset): patch 16, width 192, depth 12, 3 heads, MLP 768, dropout 0.1,
// Xavier-uniform linear weights, truncated-normal (std 0.02) class token and positions. A 120x120
// input is zero-padded to 128: 8x8 = 64 patches plus the class token, 65 tokens.
//
// stem "conv" replaces the patch embedding with a convolutional stem (models/conv_stem.h) giving
// the same token grid from the same padded image; the transformer is unchanged.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "engine/nn/layers.h"
#include "models/conv_stem.h"
#include "models/model.h"

namespace forge::models {

struct VitConfig {
  int patch = 16, dim = 192, depth = 12, heads = 3, mlp_dim = 768;
  float dropout = 0.1f;
  float drop_path = 0.f;       // the last block's stochastic-depth rate
  std::string stem = "patch";  // "patch" (one patch x patch convolution) or "conv" (ConvStem)
};

// Multi-head self-attention: one fused qkv projection, the fused attention op, an output
// projection.
class SelfAttention : public nn::Module {
 public:
  SelfAttention(int dim, int heads, float dropout, Generator& gen, Device device);
  Tensor forward(const Tensor& x) override;  // [b, t, dim] -> [b, t, dim]
  // residual + forward(x), the dropout and the sum in one kernel.
  Tensor forward_add(const Tensor& residual, const Tensor& x);
  // softmax(q k^T / sqrt(dh)) [b, heads, t, t], which the fused attention never materialises:
  // for attention maps of a few images, without gradients.
  Tensor probabilities(const Tensor& x);

 private:
  Tensor attend(const Tensor& x);  // forward(x) before the dropout
  int heads_;
  std::shared_ptr<nn::Linear> qkv_, proj_;
  std::shared_ptr<nn::Dropout> drop_;
};

class VitBlock : public nn::Module {
 public:
  // `index`: the block's place in the stack (0-based), which sets its drop-path rate.
  VitBlock(const VitConfig& cfg, int index, Generator& gen, Device device);
  Tensor forward(const Tensor& x) override;
  // The attention probabilities this block computes on x (see SelfAttention::probabilities).
  Tensor attention_probabilities(const Tensor& x);

 private:
  std::shared_ptr<nn::LayerNorm> norm1_, norm2_;
  std::shared_ptr<SelfAttention> attn_;
  // The MLP, registered as a Sequential (fc1, GELU, dropout, fc2, dropout: its parameter names);
  // forward runs its layers itself to fuse GELU with the first dropout and the second with the
  // residual sum.
  std::shared_ptr<nn::Sequential> mlp_;
  std::shared_ptr<nn::Linear> fc1_, fc2_;
  std::shared_ptr<nn::Dropout> mlp_drop1_, mlp_drop2_;
  std::shared_ptr<nn::DropPath> drop_path1_, drop_path2_;  // attention branch, MLP branch
};

class VisionTransformer : public ImageClassifier {
 public:
  VisionTransformer(ModelSpec spec, const VitConfig& cfg, Generator& gen, Device device);
  Tensor forward(const Tensor& images) override;
  SaliencyKind saliency_kind() const override { return SaliencyKind::attention_rollout; }
  TokenAttention attention_probabilities(const Tensor& images) override;

 private:
  Tensor embed(const Tensor& images);  // padded, patch-embedded tokens, after the dropout
  VitConfig cfg_;
  int padded_size_;
  Tensor patch_weight_, patch_bias_, cls_token_, pos_embed_;  // patch weights: the patch stem
  std::shared_ptr<ConvStem> conv_stem_;                       // the conv stem
  std::shared_ptr<nn::Dropout> embed_drop_;
  std::vector<std::shared_ptr<VitBlock>> blocks_;
  std::shared_ptr<nn::LayerNorm> norm_;
  std::shared_ptr<nn::Linear> head_;
};

}  // namespace forge::models
