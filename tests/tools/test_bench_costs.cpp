// test_bench_costs.cpp: bench's flop and byte formulas (tools/bench/op_costs.h) against counts
// worked out by hand from the shapes, and the flop count read from an autograd graph.
#include <doctest/doctest.h>

#include "engine/ops.h"
#include "tools/bench/op_costs.h"

using namespace forge;
using namespace forge::bench;

TEST_CASE("bench: batched matmul costs 2 m n k flops a problem") {
  // 2 problems of [3, 5] x [5, 4]: A 15, B 20, C 12 elements each
  const PassCosts c = matmul_cost(2, 3, 4, 5);
  CHECK(c.forward.flops == 2 * (2 * 3 * 4 * 5));  // 240
  CHECK(c.forward.bytes == 4 * 2 * (15 + 20 + 12));
  // backward: dA = dC B^T and dB = A^T dC, reading dC, A, B and writing dA, dB
  CHECK(c.backward.flops == 480);
  CHECK(c.backward.bytes == 4 * 2 * (12 + 15 + 20 + 15 + 20));
}

TEST_CASE("bench: conv2d costs 2 N K OH OW C R S flops, twice that backward with an input grad") {
  // x [2, 3, 8, 8] (384), w [4, 3, 3, 3] (108), stride 1, pad 1: y [2, 4, 8, 8] (512)
  const Conv2dDesc d{.n = 2,
                     .c = 3,
                     .h = 8,
                     .w = 8,
                     .k = 4,
                     .r = 3,
                     .s = 3,
                     .stride = 1,
                     .pad = 1,
                     .oh = 8,
                     .ow = 8};
  const PassCosts with_dx = conv2d_cost(d, true, false);
  CHECK(with_dx.forward.flops == 2 * 512 * 27);  // 27648: 27 multiply-adds an output
  CHECK(with_dx.forward.bytes == 4 * (384 + 108 + 512));
  CHECK(with_dx.backward.flops == 2 * 27648);
  // reads dy, x, w; writes dw, dx
  CHECK(with_dx.backward.bytes == 4 * (512 + 384 + 108 + 108 + 384));
  const PassCosts image_input = conv2d_cost(d, false, true);  // no dx; a bias of 4
  CHECK(image_input.forward.flops == 27648 + 512);
  CHECK(image_input.backward.flops == 27648 + 512);
  CHECK(image_input.backward.bytes == 4 * (512 + 384 + 108 + 4));
}

TEST_CASE("bench: fused attention costs 4 BH T^2 dh forward and 10 BH T^2 dh backward") {
  // 6 (batch, head) pairs, 10 tokens, head width 8: 60 rows of q, k, v, out and one lse each
  const PassCosts c = attention_cost(6, 10, 8);
  CHECK(c.forward.flops == 4 * 6 * 100 * 8);  // 19200
  CHECK(c.forward.bytes == 4 * (4 * 480 + 60));
  CHECK(c.backward.flops == 10 * 6 * 100 * 8);
  CHECK(c.backward.bytes == 4 * (8 * 480 + 60));
}

TEST_CASE("bench: the graph count adds the GEMM-shaped ops' forward flops and nothing else") {
  Generator gen(5);
  Tensor x = Tensor::randn({4, 5}, gen), w = Tensor::randn({3, 5}, gen).requires_grad_();
  Tensor b = Tensor::zeros({3}).requires_grad_();
  Tensor img = Tensor::randn({1, 2, 4, 4}, gen),
         k = Tensor::randn({3, 2, 3, 3}, gen).requires_grad_();
  // linear [4, 5] -> [4, 3]: 2 * 4 * 5 * 3 + 12 bias adds = 132
  // conv2d pad 1 -> [1, 3, 4, 4]: 48 outputs of 18 multiply-adds = 1728
  // relu, sum and add are not counted
  Tensor loss = add(sum(relu(linear(x, w, b))), sum(conv2d(img, k, Tensor(), 1, 1)));
  CHECK(graph_forward_flops(loss) == 132 + 1728);
}
