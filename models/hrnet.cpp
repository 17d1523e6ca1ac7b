// hrnet.cpp: HRNet's blocks, multi-resolution modules and classifier (see hrnet.h).
#include "models/hrnet.h"

#include <string>

#include "engine/ops.h"

namespace forge::models {

// conv (k x k, stride) - BN, optionally followed by ReLU.
static std::shared_ptr<nn::Sequential> conv_bn(int in, int out, int kernel, int stride, bool relu,
                                               Generator& gen, Device device) {
  auto s = std::make_shared<nn::Sequential>();
  s->push_back(std::make_shared<nn::Conv2d>(in, out, kernel, stride, kernel / 2, gen, device));
  s->push_back(std::make_shared<nn::BatchNorm2d>(out, device));
  if (relu) s->push_back(std::make_shared<nn::ReLU>());
  return s;
}

BasicBlock::BasicBlock(int c, BlockDropPath drop_path, Generator& gen, Device device) {
  body_ = register_module(
      "body",
      std::make_shared<nn::Sequential>(std::vector<std::shared_ptr<nn::Module>>{
          conv_bn(c, c, 3, 1, true, gen, device), conv_bn(c, c, 3, 1, false, gen, device)}));
  drop_path_ =
      register_module("drop_path", std::make_shared<nn::DropPath>(drop_path.rate, drop_path.layer));
}

// drop_path_ is x + F(x) itself where it draws nothing (eval, or rate 0).
Tensor BasicBlock::forward(const Tensor& x) {
  return relu(drop_path_->forward_add(x, body_->forward(x)));
}

Bottleneck::Bottleneck(int in, int planes, BlockDropPath drop_path, Generator& gen, Device device) {
  const int out = 4 * planes;
  body_ = register_module("body",
                          std::make_shared<nn::Sequential>(std::vector<std::shared_ptr<nn::Module>>{
                              conv_bn(in, planes, 1, 1, true, gen, device),
                              conv_bn(planes, planes, 3, 1, true, gen, device),
                              conv_bn(planes, out, 1, 1, false, gen, device)}));
  if (in != out)
    shortcut_ = register_module("shortcut", conv_bn(in, out, 1, 1, false, gen, device));
  drop_path_ =
      register_module("drop_path", std::make_shared<nn::DropPath>(drop_path.rate, drop_path.layer));
}

Tensor Bottleneck::forward(const Tensor& x) {
  return relu(drop_path_->forward_add(shortcut_ ? shortcut_->forward(x) : x, body_->forward(x)));
}

HrModule::HrModule(const std::vector<int>& ch, int blocks,
                   const std::function<BlockDropPath(int)>& drop_path, Generator& gen,
                   Device device) {
  const int n = static_cast<int>(ch.size());
  for (int b = 0; b < n; ++b) {
    auto branch = std::make_shared<nn::Sequential>();
    for (int k = 0; k < blocks; ++k)
      branch->push_back(std::make_shared<BasicBlock>(ch[b], drop_path(k), gen, device));
    branches_.push_back(register_module("branches." + std::to_string(b), branch));
  }
  fuse_.assign(n, std::vector<std::shared_ptr<nn::Sequential>>(n));
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) {
      if (j == i) continue;
      std::shared_ptr<nn::Sequential> path;
      if (j > i) {  // lower resolution: 1x1 conv + BN; the fusion op upsamples
        path = conv_bn(ch[j], ch[i], 1, 1, false, gen, device);
      } else {  // higher resolution: i - j stride-2 3x3 steps, the last one to ch[i] without ReLU
        path = std::make_shared<nn::Sequential>();
        for (int step = 0; step < i - j; ++step) {
          const bool last = step == i - j - 1;
          path->push_back(conv_bn(ch[j], last ? ch[i] : ch[j], 3, 2, !last, gen, device));
        }
      }
      fuse_[i][j] = register_module("fuse." + std::to_string(i) + "." + std::to_string(j), path);
    }
}

std::vector<Tensor> HrModule::forward(const std::vector<Tensor>& xs) {
  const size_t n = branches_.size();
  std::vector<Tensor> ys(n);
  for (size_t b = 0; b < n; ++b) ys[b] = branches_[b]->forward(xs[b]);
  std::vector<Tensor> out(n);
  for (size_t i = 0; i < n; ++i) {
    std::vector<Tensor> parts;
    for (size_t j = 0; j < n; ++j) parts.push_back(j == i ? ys[j] : fuse_[i][j]->forward(ys[j]));
    out[i] = multi_resolution_fusion(parts, ys[i].size(2), ys[i].size(3));
  }
  return out;
}

HighResolutionNet::HighResolutionNet(ModelSpec spec, const HrnetConfig& cfg, Generator& gen,
                                     Device device)
    : ImageClassifier(std::move(spec)) {
  // Residual levels: the bottleneck, then blocks_per_branch a stage for the stages after it.
  const int levels = 1 + cfg.blocks_per_branch * int(cfg.branch_channels.size() - 1);
  uint64_t next_layer = 0;  // each block's DropPath number, in construction order
  const auto drop_path_at = [&](int level) {
    const float rate = levels > 1 ? cfg.drop_path * float(level) / float(levels - 1) : 0.f;
    return BlockDropPath{rate, next_layer++};
  };
  const int stem = cfg.stem_channels;
  stem_ = register_module("stem",
                          std::make_shared<nn::Sequential>(std::vector<std::shared_ptr<nn::Module>>{
                              conv_bn(3, stem, 3, 2, true, gen, device),
                              conv_bn(stem, stem, 3, 2, true, gen, device)}));
  stage1_ = register_module("stage1", std::make_shared<Bottleneck>(stem, cfg.bottleneck_planes,
                                                                   drop_path_at(0), gen, device));
  const std::vector<int>& ch = cfg.branch_channels;
  for (size_t s = 2; s <= ch.size(); ++s) {
    std::vector<std::shared_ptr<nn::Sequential>> t(s);
    const std::string prefix = "transition" + std::to_string(s - 1) + ".";
    if (s == 2) {  // from the single stage-1 map: one conv per branch, the second strided
      const int in = 4 * cfg.bottleneck_planes;
      t[0] = register_module(prefix + "0", conv_bn(in, ch[0], 3, 1, true, gen, device));
      t[1] = register_module(prefix + "1", conv_bn(in, ch[1], 3, 2, true, gen, device));
    } else {  // existing branches pass through; the new one comes from the lowest resolution
      t[s - 1] = register_module(prefix + std::to_string(s - 1),
                                 conv_bn(ch[s - 2], ch[s - 1], 3, 2, true, gen, device));
    }
    transitions_.push_back(t);
    const std::vector<int> stage_ch(ch.begin(), ch.begin() + s);
    const int first_level = 1 + int(s - 2) * cfg.blocks_per_branch;
    stages_.push_back(register_module(
        "stage" + std::to_string(s),
        std::make_shared<HrModule>(
            stage_ch, cfg.blocks_per_branch,
            [&](int block) { return drop_path_at(first_level + block); }, gen, device)));
  }
  int concat_channels = 0;
  for (int c : ch) concat_channels += c;
  drop_ = register_module("drop", std::make_shared<nn::Dropout>(cfg.dropout, gen));
  head_ = register_module(
      "head", std::make_shared<nn::Linear>(concat_channels, this->spec().num_classes, gen, device));
}

Tensor HighResolutionNet::forward(const Tensor& images) {
  return classify_features(feature_map(images));
}

Tensor HighResolutionNet::feature_map(const Tensor& images) {
  Tensor x = stage1_->forward(stem_->forward(images));
  std::vector<Tensor> branches{x};
  for (size_t s = 0; s < stages_.size(); ++s) {
    std::vector<Tensor> next;
    for (size_t b = 0; b < transitions_[s].size(); ++b) {
      const auto& t = transitions_[s][b];
      // A new branch grows from the lowest-resolution branch so far.
      const Tensor& src = b < branches.size() ? branches[b] : branches.back();
      next.push_back(t ? t->forward(src) : src);
    }
    branches = stages_[s]->forward(next);
  }
  // Head (eq. 12): all branches at the highest resolution, concatenated, pooled.
  const int oh = static_cast<int>(branches[0].size(2)), ow = static_cast<int>(branches[0].size(3));
  std::vector<Tensor> resized;
  for (const Tensor& b : branches)
    resized.push_back(b.size(2) == oh ? b : resize_nearest(b, oh, ow));
  return concat(resized, 1);
}

Tensor HighResolutionNet::classify_features(const Tensor& features) {
  return head_->forward(drop_->forward(global_avg_pool(features)));
}

}  // namespace forge::models
