"""Writes the timm fixtures that tests/train/test_state_dict.cpp checks tools/export against, so
that the test needs neither torch nor timm:

  tests/fixtures/timm_vit_tiny_keys.json
      timm's own state dict of the "vit" preset's twin, timm.create_model("vit_tiny_patch16_224",
      img_size=128, num_classes=2) (forge's 120 px padded to 128): every key in order with its
      shape and dtype, plus the timm and torch versions.
  tests/fixtures/timm_vit_micro.safetensors
      a timm VisionTransformer of the "vit-micro" preset's shape (patch 8, width 32, depth 2,
      2 heads, MLP 64, 3 classes, img_size 32 for forge's 30 px padded to 32), written by
      safetensors.torch.save_file with timm's keys:
        <timm key>      its weights: timm's initialisation, then every tensor plus normal noise
                        (std 0.05) so that no bias is zero and no norm is the identity
        input.images    [4, 3, 30, 30] normal noise (before the padding)
        out.logits      [4, 3] timm's forward, in float64, of the zero-padded images (1 pixel
                        on every side, as forge pads), stored as F32

  .venv-bench/bin/python bench/timm_fixtures.py [--out tests/fixtures]

Needs torch and timm: `TIMM=1 bash bench/setup_pytorch.sh`.
"""
import argparse
import json
import os

import safetensors.torch
import timm
import torch
import torch.nn.functional as F


def tiny_keys(out):
    model = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=128,
                              num_classes=2)
    keys = [{"name": k, "shape": list(v.shape), "dtype": str(v.dtype).replace("torch.", "")}
            for k, v in model.state_dict().items()]
    path = os.path.join(out, "timm_vit_tiny_keys.json")
    head = {"model": "vit_tiny_patch16_224", "img_size": 128, "num_classes": 2,
            "timm": timm.__version__, "torch": torch.__version__.split("+")[0]}
    with open(path, "w") as f:  # one key a line, so that a diff shows what changed
        f.write(json.dumps(head)[:-1] + ', "keys": [\n')
        f.write(",\n".join(json.dumps(k) for k in keys) + "\n]}\n")
    print(f"{path}: {len(keys)} keys")


def micro(out):
    torch.manual_seed(0)
    model = timm.models.vision_transformer.VisionTransformer(
        img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2, mlp_ratio=2.0,
        num_classes=3).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    images = torch.randn(4, 3, 30, 30)
    with torch.no_grad():
        logits = model.double()(F.pad(images.double(), (1, 1, 1, 1))).float()
    tensors = {k: v.float().contiguous() for k, v in model.state_dict().items()}
    tensors["input.images"] = images
    tensors["out.logits"] = logits
    path = os.path.join(out, "timm_vit_micro.safetensors")
    safetensors.torch.save_file(tensors, path, metadata={
        "timm": timm.__version__, "torch": torch.__version__.split("+")[0],
        "written_by": "bench/timm_fixtures.py"})
    print(f"{path}: {len(tensors)} tensors, logits {logits.tolist()[0]} ...")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    parser.add_argument("--out", default=os.path.join(here, "..", "tests", "fixtures"))
    args = parser.parse_args()
    tiny_keys(args.out)
    micro(args.out)


if __name__ == "__main__":
    main()
