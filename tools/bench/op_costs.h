// op_costs.h: how much arithmetic and memory traffic each differentiable op does, computed from
// its shapes, so that `bench` can turn a time into GFLOP/s and GB/s.
//
// Conventions (the same for every op, so figures compare):
//  - flops: one per floating-point add, multiply, compare or transcendental in the op's formula
//    (a fused multiply-add is 2). Integer work (dropout's hash, index arithmetic) is not counted.
//    For memory-bound ops the flop count is small and GB/s is the figure to read.
//  - bytes: the compulsory traffic of a float32 implementation: every input read once, every
//    output written once (4 bytes an element, int32 indices 4 bytes too). Re-reads by multi-pass
//    algorithms and caches are not counted, so GB/s is a lower bound on what the memory saw.
//  - backward: what the op's backward function computes for inputs that need a gradient,
//    given the gradient of its output; the autograd walk's own copies are not counted.
// The formula of each op sits beside its function in op_costs.cpp.
#pragma once
#include <cstdint>

#include "engine/backend.h"
#include "engine/tensor.h"

namespace forge::bench {

struct Cost {
  double flops = 0, bytes = 0;
};

struct PassCosts {
  Cost forward, backward;
};

// ---- GEMM-shaped ops (compute-bound)
PassCosts matmul_cost(int64_t batch, int64_t m, int64_t n, int64_t k);
PassCosts linear_cost(int64_t rows, int64_t in, int64_t out, bool bias);
PassCosts conv2d_cost(const Conv2dDesc& d, bool input_grad, bool bias);
PassCosts attention_cost(int64_t bh, int64_t t, int64_t dh);
PassCosts patch_embed_cost(const PatchEmbedDesc& d);

// ---- normalisation
PassCosts batch_norm_train_cost(int64_t n, int64_t c, int64_t hw);
PassCosts batch_norm_eval_cost(int64_t n, int64_t c, int64_t hw);
PassCosts layer_norm_cost(int64_t rows, int64_t d);
PassCosts softmax_cost(int64_t rows, int64_t d);

// ---- elementwise, over `n` elements
PassCosts relu_cost(int64_t n);
PassCosts gelu_cost(int64_t n);
PassCosts dropout_cost(int64_t n);
PassCosts add_cost(int64_t n);  // both inputs of n elements (no broadcasting)
PassCosts mul_cost(int64_t n);

// ---- data movement and reductions
PassCosts copy_cost(int64_t n);  // contiguous() of a permuted view, concat of n elements in all
PassCosts reduce_cost(int64_t in, int64_t out, bool mean);  // sum or mean of `in` down to `out`
PassCosts max_pool_cost(const Pool2dDesc& d);
PassCosts resize_nearest_cost(int64_t in, int64_t out);  // element counts of x and y
PassCosts pad_cost(int64_t in, int64_t out);
PassCosts fusion_cost(const FusionDesc& d);
PassCosts cross_entropy_cost(int64_t rows, int64_t classes);

// The forward flops of the GEMM-shaped nodes (conv2d, linear, matmul, fused attention, patch
// embedding) of the autograd graph that produced `root`, from their recorded input and output
// shapes; other ops are not counted (the usual convention for a network's FLOP count). Call it
// before backward(), which frees the graph.
double graph_forward_flops(const Tensor& root);

}  // namespace forge::bench
