// hrnet.h: the High-Resolution Network (Wang et al. 2020), HRNet-W18-small-v1 body.
//
//   stem: two stride-2 3x3 conv-BN-ReLU (64 channels)              120 -> 60 -> 30
//   stage 1: one bottleneck block (64 -> 128 channels)              30x30
//   transition: 3x3 convs to 2 branches of 16 and 32 channels      30x30, 15x15
//   stage 2: 2 branches x 2 basic blocks, fusion
//   transition + stage 3: 3 branches (16, 32, 64)                   + 8x8
//   transition + stage 4: 4 branches (16, 32, 64, 128)              + 4x4
//   head (the seed paper's eq. 12): every branch resized (nearest) to 30x30, concatenated (240
//   channels), global average pool, dropout, linear.
//
// Fusion into branch i sums, for every branch j: j == i as is; a lower resolution (j > i) through
// 1x1 conv + BN, then nearest-resampled to branch i's size; a higher resolution (j < i) through
// i - j stride-2 3x3 conv-BN steps (ReLU between them). The sum and the final ReLU are the fused
// multi_resolution_fusion op, which also does the resampling.
//
// With drop_path > 0 the residual branch F of every block (the bottleneck and each basic block)
// passes through stochastic depth (nn::DropPath), relu(x + drop_path(F(x))) as timm's ResNet
// blocks: a block at depth l of the network's L residual levels drops at drop_path * l / (L - 1)
// (the bottleneck is level 0; stage s's k-th block, in every branch alike, level 1 + (s - 2)
// blocks_per_branch + k), the rate rising linearly to drop_path at the last level, as the ViT's.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "engine/nn/layers.h"
#include "models/model.h"

namespace forge::models {

struct HrnetConfig {
  int stem_channels = 64;
  int bottleneck_planes = 32;  // stage 1 output: 4 x planes = 128 channels
  std::vector<int> branch_channels = {16, 32, 64, 128};
  int blocks_per_branch = 2;
  float dropout = 0.2f;
  float drop_path = 0.f;  // the last residual level's stochastic-depth rate
};

// Stochastic depth of one residual block: its rate and its DropPath layer number (distinct for
// every block, so blocks draw independently).
struct BlockDropPath {
  float rate = 0.f;
  uint64_t layer = 0;
};

// x + F(x) with F = conv3x3-BN-ReLU-conv3x3-BN, then ReLU.
class BasicBlock : public nn::Module {
 public:
  BasicBlock(int channels, BlockDropPath drop_path, Generator& gen, Device device);
  Tensor forward(const Tensor& x) override;

 private:
  std::shared_ptr<nn::Sequential> body_;
  std::shared_ptr<nn::DropPath> drop_path_;
};

// Bottleneck: 1x1 reduce, 3x3, 1x1 expand (x4), with a 1x1 conv-BN shortcut when widths differ.
class Bottleneck : public nn::Module {
 public:
  Bottleneck(int in, int planes, BlockDropPath drop_path, Generator& gen, Device device);
  Tensor forward(const Tensor& x) override;

 private:
  std::shared_ptr<nn::Sequential> body_, shortcut_;
  std::shared_ptr<nn::DropPath> drop_path_;
};

// One multi-resolution module: parallel branches of basic blocks, then the exchange (fusion).
// Block k of every branch has drop_path(k) (rate by depth; layer numbers it hands out itself).
class HrModule : public nn::Module {
 public:
  HrModule(const std::vector<int>& channels, int blocks,
           const std::function<BlockDropPath(int)>& drop_path, Generator& gen, Device device);
  std::vector<Tensor> forward(const std::vector<Tensor>& xs);

 private:
  std::vector<std::shared_ptr<nn::Sequential>> branches_;
  // fuse_[i][j]: how branch j reaches branch i (null when i == j).
  std::vector<std::vector<std::shared_ptr<nn::Sequential>>> fuse_;
};

class HighResolutionNet : public ImageClassifier {
 public:
  HighResolutionNet(ModelSpec spec, const HrnetConfig& cfg, Generator& gen, Device device);
  Tensor forward(const Tensor& images) override;
  // The head's input before its pool: every branch at 30x30, concatenated (240 channels).
  Tensor feature_map(const Tensor& images) override;
  Tensor classify_features(const Tensor& features) override;

 private:
  std::shared_ptr<nn::Sequential> stem_;
  std::shared_ptr<Bottleneck> stage1_;
  // transitions_[s][b]: makes branch b of stage s + 2 (null: the branch passes through).
  std::vector<std::vector<std::shared_ptr<nn::Sequential>>> transitions_;
  std::vector<std::shared_ptr<HrModule>> stages_;
  std::shared_ptr<nn::Dropout> drop_;
  std::shared_ptr<nn::Linear> head_;
};

}  // namespace forge::models
