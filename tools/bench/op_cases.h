// op_cases.h: the differentiable ops `bench ops` times, each on inputs shaped like the place the
// ViT, HRNet or CNN preset uses it (120x120 images), with its flop and byte counts.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "engine/tensor.h"
#include "tools/bench/op_costs.h"

namespace forge::bench {

struct OpCase {
  std::string name;    // what --filter matches
  std::string shapes;  // the inputs, for the table
  PassCosts cost;
  std::function<Tensor()> forward;  // runs the op on the case's inputs, recorded by autograd
  std::vector<Tensor> leaves;       // the inputs that receive gradients
};

// Every case at batch `batch` (the presets train at 32), inputs drawn from `gen` on `device`.
std::vector<OpCase> make_op_cases(Device device, int batch, Generator& gen);

}  // namespace forge::bench
