// saliency.h: pictures of what a model looks at, for report.html: attention rollout for the ViT,
// Grad-CAM for the CNN and HRNet. Inference only, a few images at a time.
//
// Attention rollout (Abnar & Zuidema 2020): each layer's attention averaged over heads, A, gets
// the residual path added and its rows renormalised, Â = (A + I) / 2; the layers compose as
// R = Â_L ... Â_1, and R's class-token row (its patch entries) says how much each patch flows
// into the class token, the head's input.
//
// Grad-CAM (Selvaraju et al. 2017): for the class score y_c and the last feature map A [k, h, w],
// the channel weights alpha_k = mean over (i, j) of dy_c / dA_k(i, j) (through autograd), and the
// map ReLU(sum_k alpha_k A_k).
//
// Both maps are resampled to the image's pixels (bilinear over cell centres; the ViT's patch grid
// covers the padded square, cropped back to the image) and scaled to [0, 1], smallest to largest
// (a nearly uniform map would otherwise show as one colour).
#pragma once
#include <string>
#include <vector>

#include "models/model.h"

namespace forge::train {

struct ExamplePrediction;

// width x height values in [0, 1], row-major: the smallest 0, the largest 1 (all 0 when flat).
struct SaliencyMap {
  int width = 0, height = 0;
  std::vector<float> values;
  std::string method;  // "attention rollout" or "Grad-CAM (class <name>)"
};

// The rolled-out class-token row of image `index`: one value per token (class token first),
// non-negative, summing to 1.
std::vector<double> rollout_class_row(const models::TokenAttention& attention, int index);
// The rollout of image `index` as a map over an image of image_size pixels a side.
SaliencyMap rollout_map(const models::TokenAttention& attention, int index, int image_size);

// Grad-CAM maps of images [b, 3, s, s] for the classes `classes` (one per image), in eval mode
// (the model's mode is restored). The model's parameters get no gradient from it.
std::vector<SaliencyMap> grad_cam(models::ImageClassifier& model, const Tensor& images,
                                  const std::vector<int>& classes);

// The model's own kind of map for each image: rollout or Grad-CAM (of `classes`, the predicted
// ones); `class_names` name them in the method.
std::vector<SaliencyMap> saliency_maps(models::ImageClassifier& model, const Tensor& images,
                                       const std::vector<int>& classes,
                                       const std::vector<std::string>& class_names);

// Sets the saliency of the first `count` examples (their inputs in one batch on `device`).
void add_saliency(models::ImageClassifier& model, std::vector<ExamplePrediction>& examples,
                  int count, const std::vector<std::string>& class_names, Device device);

// A grid of values (row-major, grid_w x grid_h, cell centres spread evenly over the image)
// resampled bilinearly to width x height and scaled to [0, 1].
SaliencyMap resample_to_image(const std::vector<float>& grid, int grid_w, int grid_h, int width,
                              int height);

}  // namespace forge::train
