// state_dict.h: a model's weights as other frameworks name them (what tools/export writes and
// reads back).
//
//   timm    the ViT only: timm's VisionTransformer (vit_tiny_patch16_224 and kin) state dict.
//           forge -> timm names and shapes:
//             patch_embed.weight [e, c, p, p]  -> patch_embed.proj.weight (same layout)
//             patch_embed.bias                 -> patch_embed.proj.bias
//             cls_token [e]                    -> cls_token [1, 1, e]
//             pos_embed [t, e]                 -> pos_embed [1, t, e]
//             blocks.i.mlp.0 / blocks.i.mlp.3  -> blocks.i.mlp.fc1 / blocks.i.mlp.fc2
//             the rest (blocks.i.norm1, .attn.qkv, .attn.proj, .norm2, norm, head) as they are;
//           linear weights are [out, in] in both, qkv's rows are q, k, v each split by head in
//           both. Ordered as timm's state_dict(): cls_token, pos_embed, patch_embed, blocks,
//           norm, head. The timm model is
//             timm.create_model("vit_tiny_patch16_224", img_size=<padded_size>,
//                               num_classes=<classes>)  (or the same with the architecture's
//                               patch, dim, depth, heads, mlp_dim)
//           fed images zero-padded, centred, from image_size to padded_size, as forge does.
//   forge   every model: forge's own parameter and buffer names (the training checkpoint's
//           "model." tensors without the prefix), which are the state_dict() keys of the
//           PyTorch twins in bench/pytorch_models.py, plus PyTorch's
//           <batch norm>.num_batches_tracked (I64): the optimizer steps taken, which is how many
//           training-mode forwards each batch norm saw. timm has no HRNet-W18-small-v1 or
//           baseline CNN with these layers, so this is the format for them.
#pragma once
#include <cstdint>
#include <string>

#include "engine/named_tensors.h"

namespace forge::train {

enum class StateDictFormat { timm, forge };

// "timm" / "forge", and back (std::invalid_argument listing the formats for another name).
const char* state_dict_format_name(StateDictFormat format);
StateDictFormat parse_state_dict_format(const std::string& name);

// `model` (forge's names: model_tensors()) in `format`. `family` is the architecture's
// ("vit", "hrnet", "cnn"); timm takes "vit" only (std::invalid_argument otherwise). `steps` is
// the num_batches_tracked value of the forge format.
NamedTensors export_state_dict(const NamedTensors& model, const std::string& family,
                               StateDictFormat format, int64_t steps);

// The inverse: a state dict in `format` under forge's names and shapes (num_batches_tracked
// dropped: forge keeps no such counter). Nothing is checked here: load_checkpoint checks the
// result against the model, naming what is missing, extra or of the wrong shape.
NamedTensors import_state_dict(const NamedTensors& state_dict, StateDictFormat format);

}  // namespace forge::train
