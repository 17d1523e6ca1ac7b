// conv_stem.cpp: the ViT's convolutional stem (see conv_stem.h).
#include "models/conv_stem.h"

#include <stdexcept>
#include <string>

#include "engine/ops.h"
#include "models/cnn.h"

namespace forge::models {

std::vector<int> conv_stem_channels(int patch, int dim) {
  if (patch < 2 || (patch & (patch - 1)) != 0)
    throw std::invalid_argument("the conv stem needs a patch size that is a power of two, got " +
                                std::to_string(patch));
  int steps = 0;
  while ((1 << steps) < patch) ++steps;
  std::vector<int> channels;
  for (int i = steps - 1; i >= 0; --i) {
    if (dim % (1 << i) != 0)
      throw std::invalid_argument("the conv stem halves the width " + std::to_string(dim) + " " +
                                  std::to_string(steps - 1) + " times (patch " +
                                  std::to_string(patch) + "): not divisible by " +
                                  std::to_string(1 << (steps - 1)));
    channels.push_back(dim >> i);
  }
  return channels;
}

ConvStem::ConvStem(int patch, int dim, Generator& gen, Device device) {
  convs_ = register_module("convs", std::make_shared<nn::Sequential>());
  int in = 3;
  for (int out : conv_stem_channels(patch, dim)) {
    convs_->push_back(conv_bn_relu(in, out, 2, gen, device));
    in = out;
  }
  proj_ = register_module("proj", std::make_shared<nn::Conv2d>(in, dim, 1, 1, 0, gen, device,
                                                               /*bias=*/true));
}

Tensor ConvStem::forward(const Tensor& images) {
  return proj_->forward(convs_->forward(images));
}

Tensor ConvStem::tokens(const Tensor& images, const Tensor& cls, const Tensor& pos) {
  const Tensor map = forward(images);  // [b, dim, g, g]
  const int64_t b = map.size(0), dim = map.size(1), cells = map.size(2) * map.size(3);
  const Tensor cells_first = transpose(map.reshape({b, dim, cells}), 1, 2);  // [b, g*g, dim]
  // The class token broadcast to every image (its gradient sums over them), then the positions.
  const Tensor cls_rows = add(Tensor::zeros({b, 1, dim}, map.device()), cls.reshape({1, 1, dim}));
  return add(concat({cls_rows, cells_first}, 1), pos.reshape({1, cells + 1, dim}));
}

}  // namespace forge::models
