// conv_stem.h: the ViT's convolutional stem (Xiao et al. 2021, "Early Convolutions Help
// Transformers See Better"), in place of the patch-p patchify convolution:
//
//   images [b, 3, s, s] -> k x [ conv3x3 stride 2 (no bias) - batch norm - ReLU ]
//   -> conv1x1 to the width (with bias) -> class token + one token per cell, + positions
//   -> tokens [b, 1 + (s/p)^2, dim]
//
// with p = 2^k, so the token grid is the patch stem's (s is padded to a multiple of p first, as
// for the patch stem: each stride-2 step then halves it exactly). The widths double towards the
// transformer's: dim/2^(k-1), ..., dim/2, dim; for ViT-Ti/16 (p 16, dim 192) 24, 48, 96, 192, the
// paper's ViT_C stem for its smallest model. The 3x3 convolutions are the CNN's conv_bn_relu
// (He-normal), the 1x1 projection He-normal too. Unlike the patch stem's fused patch_embed, the
// tokens are composed of plain ops (transpose, concat, broadcast add), which pass the gradient on
// to the convolutions.
#pragma once
#include <memory>
#include <vector>

#include "engine/nn/layers.h"

namespace forge::models {

// The stride-2 convolutions' output widths for `patch` and `dim`; throws std::invalid_argument
// when the patch is not a power of two (at least 2) or dim does not halve that many times.
std::vector<int> conv_stem_channels(int patch, int dim);

class ConvStem : public nn::Module {
 public:
  ConvStem(int patch, int dim, Generator& gen, Device device);
  // images [b, 3, s, s] (s a multiple of the patch) -> the projected map [b, dim, s/p, s/p].
  Tensor forward(const Tensor& images) override;
  // The transformer's input tokens: the projected map, a token per cell (row-major), after the
  // class token `cls` [dim], plus the positions `pos` [1 + (s/p)^2, dim].
  Tensor tokens(const Tensor& images, const Tensor& cls, const Tensor& pos);

 private:
  std::shared_ptr<nn::Sequential> convs_;
  std::shared_ptr<nn::Conv2d> proj_;
};

}  // namespace forge::models
