// autograd.h: reverse-mode automatic differentiation over a dynamic graph.
//
// Each op that has an input requiring a gradient records a Node: its inputs and a backward
// function mapping the gradient of its output to the gradients of its inputs. backward() walks
// the nodes reachable from a scalar in reverse topological order, sums the gradients that reach
// each node, hands leaves their gradient (accumulating across calls), and frees the graph as it
// goes, so tensors saved for backward are released as soon as they are used.
//
// Saving tensors for backward: capture them in the backward function, and capture an op's OUTPUT
// only through detach() (output -> node -> output would be a reference cycle).
#pragma once
#include <functional>
#include <vector>

#include "engine/tensor.h"

namespace forge {

// Gradients for each input, in order; an undefined Tensor means "no gradient for this input".
using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_output)>;

// Optional, beside a BackwardFn: the same backward given, for each input, the gradient autograd
// has already summed for it (`into[k]`, contiguous, the input's shape; undefined where there is
// none yet). For each input it either adds its gradient into into[k] in place and returns an
// undefined Tensor there, or returns the gradient as BackwardFn does. A layer norm on a residual
// stream adds into the residual branch's gradient in its own kernel, sparing autograd's axpy.
using BackwardIntoFn =
    std::function<std::vector<Tensor>(const Tensor& grad_output, const std::vector<Tensor>& into)>;

struct Node {
  const char* name;
  std::vector<Tensor> inputs;
  BackwardFn backward;
  BackwardIntoFn backward_into;  // may be empty
};

// Is recording on? Off inside a NoGradGuard (evaluation, optimizer steps).
bool grad_enabled();

class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// Attaches a node to `output` when recording is on and any input requires a gradient; returns
// `output`. The op's name appears in errors raised during backward.
Tensor record(Tensor output, const char* name, std::vector<Tensor> inputs, BackwardFn backward);

// Runs backward from `root` with the given seed gradient (same shape as root).
void run_backward(const Tensor& root, const Tensor& seed);

// Called by backward, while a LeafGradientScope is alive on the thread, with each leaf once its
// gradient of this backward is final (every node that feeds it has run), while the rest of
// backward is still to come: engine/dist/gradient_reducer.h starts a bucket's all-reduce from it.
// A leaf no node of the graph reaches is never named.
using LeafGradientHook = std::function<void(const Tensor& leaf)>;

class LeafGradientScope {
 public:
  explicit LeafGradientScope(LeafGradientHook hook);
  ~LeafGradientScope();
  LeafGradientScope(const LeafGradientScope&) = delete;
  LeafGradientScope& operator=(const LeafGradientScope&) = delete;

 private:
  LeafGradientHook previous_;
};

}  // namespace forge
