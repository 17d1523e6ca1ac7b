// pending_vision.cu: TEMPORARY placeholders for the convolution, pooling, attention and vision
// kernel families; each throws until its real kernels/<family>.cu lands. Delete this file when they
// all have.
#include <stdexcept>

#include "engine/cuda/gpu_backend.h"

namespace forge::FORGE_GPU_NS {
void GpuBackend::patch_embed_forward(const PatchEmbedDesc& d, const float* image, const float* w,
                                     const float* bias, const float* cls, const float* pos,
                                     float* tokens) {
  throw std::logic_error("gpu patch_embed_forward: not written yet");
}
void GpuBackend::patch_embed_backward(const PatchEmbedDesc& d, const float* image,
                                      const float* gtokens, float* gw, float* gbias, float* gcls,
                                      float* gpos) {
  throw std::logic_error("gpu patch_embed_backward: not written yet");
}
void GpuBackend::fusion_forward(const FusionDesc& d, const float* const* xs, float* y) {
  throw std::logic_error("gpu fusion_forward: not written yet");
}
void GpuBackend::fusion_backward(const FusionDesc& d, const float* y, const float* gy,
                                 float* const* gxs) {
  throw std::logic_error("gpu fusion_backward: not written yet");
}
void GpuBackend::resize_nearest_forward(int n, int c, int h, int w, int oh, int ow, const float* x,
                                        float* y) {
  throw std::logic_error("gpu resize_nearest_forward: not written yet");
}
void GpuBackend::resize_nearest_backward(int n, int c, int h, int w, int oh, int ow,
                                         const float* gy, float* gx) {
  throw std::logic_error("gpu resize_nearest_backward: not written yet");
}
void GpuBackend::pad2d_forward(int n, int c, int h, int w, int top, int bottom, int left, int right,
                               const float* x, float* y) {
  throw std::logic_error("gpu pad2d_forward: not written yet");
}
void GpuBackend::pad2d_backward(int n, int c, int h, int w, int top, int bottom, int left,
                                int right, const float* gy, float* gx) {
  throw std::logic_error("gpu pad2d_backward: not written yet");
}
}  // namespace forge::FORGE_GPU_NS
