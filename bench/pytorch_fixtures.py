"""Writes the PyTorch fixtures that tests/models/test_pytorch_fixtures.cpp checks forge against.

For each preset, one safetensors file tests/fixtures/<preset>.safetensors holding what PyTorch
computes for forge's model (the twin in bench/pytorch_models.py, same layers and parameter names):

  input.images    [batch, 3, size, size]  normal noise
  input.labels    [batch]                 the class indices, as floats (the files are F32 only)
  init.<name>     every parameter and batch-norm buffer before training (forge loads these, so
                  the initialisation schemes need not agree)
  out.logits      [batch, classes]        forward in training mode (batch statistics), dropout off
  out.loss        [1]                     cross-entropy with label smoothing 0.1
  grad.<name>     d loss / d parameter, from that one backward (before clipping)
  train.losses    [steps]                 the loss before each of `steps` training steps
  final.<name>    every parameter and buffer after those steps

A training step is train/train_step.cpp's: forward, label-smoothed cross-entropy, backward,
clipping to global norm 1, AdamW (lr 1e-3, betas 0.9/0.999, eps 1e-8, weight decay 0.05).
PyTorch computes in float64 from the float32 initial values, so each fixture is the exact answer
to within float64 rounding, and what the test measures is forge's float32 error alone.

The micro presets at batch 4 are committed (~1 MB in all); the full presets are too big to
commit (ViT-Ti alone is 22 MB per copy of its weights, and a fixture holds three), but
`--presets vit,hrnet,cnn --out DIR` writes them (sizes in FULL below) for a local check
(FORGE_FULL_FIXTURES=DIR build/bin/test_pytorch_fixtures), which compares only the first forward
and backward of the full CNN and HRNet: over 10 steps they are so sensitive that PyTorch's own
float32 losses leave its float64 ones by 1e-3 to 5e-2 (measured), far above float32 rounding.

  .venv-bench/bin/python bench/pytorch_fixtures.py [--out tests/fixtures] [--presets ...]

PyTorch (bench/setup_pytorch.sh) is needed here only; the test reads the committed files.
"""
import argparse
import json
import os
import struct
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pytorch_models  # noqa: E402

# preset -> (batch, image size). Sizes that are no multiple of a patch or of a power of two, so
# that the padding (ViT: 30 -> 32) and the nearest resampling between odd HRNet branch sizes
# (36 -> 9, 5, 3, 2) are exercised.
MICRO = {"vit-micro": (4, 30), "hrnet-micro": (4, 36), "cnn-micro": (4, 36)}
# The full presets (not committed): HRNet at 64x64 and batch 4, so that its lowest branch (2x2)
# normalises over 16 values; at 32x32 and batch 2 (1x1, 2 values) PyTorch's own float32 forward
# is 1e-3 away from its float64 one.
FULL = {"vit": (2, 32), "hrnet": (4, 64), "cnn": (2, 32)}
NUM_CLASSES = 3
STEPS = 10
LR, WEIGHT_DECAY, LABEL_SMOOTHING, CLIP = 1e-3, 0.05, 0.1, 1.0


def save_safetensors(path, tensors, metadata):
    """The safetensors layout (engine/io/safetensors.h), float32 only, 8-byte aligned data."""
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        data = t.detach().to(torch.float32).contiguous().numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def state(model):
    """Parameters and buffers by forge's names (PyTorch's num_batches_tracked has no twin)."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()
            if not k.endswith("num_batches_tracked")}


def fixture(preset, batch, size, seed):
    torch.manual_seed(seed)
    model = pytorch_models.build(preset, NUM_CLASSES, size, dropout=0.0)
    images = torch.randn(batch, 3, size, size)
    labels = torch.randint(0, NUM_CLASSES, (batch,))
    out = {"input.images": images, "input.labels": labels.float()}
    out.update({"init." + k: v for k, v in state(model).items()})  # float32 values

    model = model.double().train()
    x = images.double()
    params = dict(model.named_parameters())
    logits = model(x)
    loss = F.cross_entropy(logits, labels, label_smoothing=LABEL_SMOOTHING)
    loss.backward()
    out["out.logits"], out["out.loss"] = logits, loss.reshape(1)
    out.update({"grad." + k: p.grad for k, p in params.items()})

    # Training from the same start: the forward above moved the batch-norm running statistics,
    # so the model is rebuilt from the initial values.
    init = {k[len("init."):]: v.double() for k, v in out.items() if k.startswith("init.")}
    model.load_state_dict(init, strict=False)  # strict: num_batches_tracked is not in `init`
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.num_batches_tracked.zero_()
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, betas=(0.9, 0.999), eps=1e-8,
                                  weight_decay=WEIGHT_DECAY)
    losses = []
    for _ in range(STEPS):
        loss = F.cross_entropy(model(x), labels, label_smoothing=LABEL_SMOOTHING)
        losses.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        optimizer.step()
    out["train.losses"] = torch.tensor(losses)
    out.update({"final." + k: v for k, v in state(model).items()})
    meta = {"preset": preset, "batch": str(batch), "image_size": str(size),
            "num_classes": str(NUM_CLASSES), "steps": str(STEPS), "lr": str(LR),
            "weight_decay": str(WEIGHT_DECAY), "label_smoothing": str(LABEL_SMOOTHING),
            "clip_grad": str(CLIP), "seed": str(seed),
            "torch": torch.__version__, "written_by": "bench/pytorch_fixtures.py"}
    return out, meta


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(root, "tests", "fixtures"))
    ap.add_argument("--presets", default=",".join(MICRO),
                    help=f"comma-separated, from {', '.join({**MICRO, **FULL})}")
    args = ap.parse_args()
    sizes = {**MICRO, **FULL}
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    for preset in (p for p in args.presets.split(",") if p):
        if preset not in sizes:
            ap.error(f"unknown preset '{preset}' (known: {', '.join(sizes)})")
        batch, size = sizes[preset]
        tensors, meta = fixture(preset, batch, size, seed=1000 + list(sizes).index(preset))
        path = os.path.join(args.out, preset + ".safetensors")
        save_safetensors(path, tensors, meta)
        print(f"{path}: batch {batch}, {size}x{size}, loss {tensors['out.loss'].item():.6f}, "
              f"losses {tensors['train.losses'][0]:.4f} -> {tensors['train.losses'][-1]:.4f}, "
              f"{os.path.getsize(path) / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
