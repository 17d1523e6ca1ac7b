// reference.h: plain-loop forward and backward of every fused primitive, to read and to test
// against.
//
// The backends (engine/cpu, engine/cuda) compute these with blocking, SIMD, OpenMP, tensor cores
// and online softmax; this is the same math as loops over the definitions, one output at a time,
// accumulated in double, with the equation beside each line. It is an oracle, not a backend: no
// threads, no tricks, no speed. tests/engine/test_reference.cpp checks Device::cpu against it
// and tests/kernels (the same source) Device::sim.
//
// The arguments mean what they mean in engine/backend.h (same names, same layouts, host pointers);
// where a backend saves statistics in the forward for its backward (lse, mean, inverse std), the
// reference's backward recomputes them from the inputs, so that each backward can be read alone.
#pragma once
#include <cstdint>

#include "engine/backend.h"

namespace forge::reference {

// ---- attention (attention.cpp) ---------------------------------------------------------------
// q, k, v, out [bh, t, dh]; lse [bh, t].
void attention_forward(int bh, int t, int dh, float scale, const float* q, const float* k,
                       const float* v, float* out, float* lse);
void attention_backward(int bh, int t, int dh, float scale, const float* q, const float* k,
                        const float* v, const float* gout, float* gq, float* gk, float* gv);

// ---- normalisation (norm.cpp) ----------------------------------------------------------------
// Layer norm over the last dimension d of x [rows, d].
void layernorm_forward(int rows, int d, const float* x, const float* gamma, const float* beta,
                       float eps, float* y);
void layernorm_backward(int rows, int d, const float* x, const float* gy, const float* gamma,
                        float eps, float* gx, float* ggamma, float* gbeta);
// Batch norm in training mode over x [n, c, hw], per channel; running statistics updated with
// the unbiased batch variance.
void batchnorm_forward_train(int n, int c, int hw, const float* x, const float* gamma,
                             const float* beta, float eps, float momentum, float* y,
                             float* running_mean, float* running_var);
void batchnorm_backward(int n, int c, int hw, const float* x, const float* gy, const float* gamma,
                        float eps, float* gx, float* ggamma, float* gbeta);
// Batch norm in eval mode: the running statistics normalise, and are constants to the backward.
void batchnorm_backward_eval(int n, int c, int hw, const float* x, const float* gy,
                             const float* gamma, const float* running_mean,
                             const float* running_var, float eps, float* gx, float* ggamma,
                             float* gbeta);

// ---- convolution and vision ops (vision.cpp) -------------------------------------------------
void conv2d_forward(const Conv2dDesc& d, const float* x, const float* w,
                    const float* bias /*nullable*/, float* y);
void conv2d_backward(const Conv2dDesc& d, const float* x, const float* w, const float* gy,
                     float* gx, float* gw, float* gbias /*nullable*/);
void patch_embed_forward(const PatchEmbedDesc& d, const float* image, const float* w,
                         const float* bias, const float* cls, const float* pos, float* tokens);
void patch_embed_backward(const PatchEmbedDesc& d, const float* image, const float* gtokens,
                          float* gw, float* gbias, float* gcls, float* gpos);
void fusion_forward(const FusionDesc& d, const float* const* xs, float* y);
void fusion_backward(const FusionDesc& d, const float* const* xs, const float* gy,
                     float* const* gxs);

// ---- elementwise, softmax and loss (loss.cpp) ------------------------------------------------
// Softmax over the last dimension of x [rows, d].
void softmax_forward(int rows, int d, const float* x, float* y);
void softmax_backward(int rows, int d, const float* x, const float* gy, float* gx);
// GELU, exact (erf) form.
void gelu_forward(int64_t n, const float* x, float* y);
void gelu_backward(int64_t n, const float* x, const float* gy, float* gx);
// Softmax cross-entropy with label smoothing s, per row: loss [rows].
void cross_entropy_forward(int rows, int classes, const float* logits, const int32_t* labels,
                           float smoothing, float* loss);
void cross_entropy_backward(int rows, int classes, const float* logits, const int32_t* labels,
                            float smoothing, const float* gloss, float* glogits);

}  // namespace forge::reference
