// pending_vit.cpp: TEMPORARY placeholders for attention, vision ops and loss; each throws until its
// real file lands.
#include <stdexcept>

#include "engine/cpu/cpu_backend.h"

namespace forge {
void CpuBackend::attention_forward(int bh, int t, int dh, float scale, const float* q,
                                   const float* k, const float* v, float* out, float* lse) {
  throw std::logic_error("cpu attention_forward: not written yet");
}
void CpuBackend::attention_backward(int bh, int t, int dh, float scale, const float* q,
                                    const float* k, const float* v, const float* out,
                                    const float* gout, const float* lse, float* gq, float* gk,
                                    float* gv) {
  throw std::logic_error("cpu attention_backward: not written yet");
}
void CpuBackend::patch_embed_forward(const PatchEmbedDesc& d, const float* image, const float* w,
                                     const float* bias, const float* cls, const float* pos,
                                     float* tokens) {
  throw std::logic_error("cpu patch_embed_forward: not written yet");
}
void CpuBackend::patch_embed_backward(const PatchEmbedDesc& d, const float* image,
                                      const float* gtokens, float* gw, float* gbias, float* gcls,
                                      float* gpos) {
  throw std::logic_error("cpu patch_embed_backward: not written yet");
}
void CpuBackend::fusion_forward(const FusionDesc& d, const float* const* xs, float* y) {
  throw std::logic_error("cpu fusion_forward: not written yet");
}
void CpuBackend::fusion_backward(const FusionDesc& d, const float* y, const float* gy,
                                 float* const* gxs) {
  throw std::logic_error("cpu fusion_backward: not written yet");
}
void CpuBackend::resize_nearest_forward(int n, int c, int h, int w, int oh, int ow, const float* x,
                                        float* y) {
  throw std::logic_error("cpu resize_nearest_forward: not written yet");
}
void CpuBackend::resize_nearest_backward(int n, int c, int h, int w, int oh, int ow,
                                         const float* gy, float* gx) {
  throw std::logic_error("cpu resize_nearest_backward: not written yet");
}
void CpuBackend::pad2d_forward(int n, int c, int h, int w, int top, int bottom, int left, int right,
                               const float* x, float* y) {
  throw std::logic_error("cpu pad2d_forward: not written yet");
}
void CpuBackend::pad2d_backward(int n, int c, int h, int w, int top, int bottom, int left,
                                int right, const float* gy, float* gx) {
  throw std::logic_error("cpu pad2d_backward: not written yet");
}
void CpuBackend::cross_entropy_forward(int rows, int classes, const float* logits,
                                       const int32_t* labels, float smoothing, float* loss,
                                       float* lse) {
  throw std::logic_error("cpu cross_entropy_forward: not written yet");
}
void CpuBackend::cross_entropy_backward(int rows, int classes, const float* logits,
                                        const int32_t* labels, float smoothing, const float* lse,
                                        const float* gloss, float* glogits) {
  throw std::logic_error("cpu cross_entropy_backward: not written yet");
}
}  // namespace forge
