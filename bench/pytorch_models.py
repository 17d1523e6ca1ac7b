"""forge's three image classifiers in PyTorch, layer for layer, for bench/pytorch_bench.py and
bench/pytorch_fixtures.py. state_dict() keys are forge's parameter and buffer names (plus
BatchNorm's num_batches_tracked), so weights move between the two by name, and load_forge()
loads forge's checkpoints as they are:

    model, info = pytorch_models.load_forge("runs/hrnet/last.safetensors")
    logits = model(images)  # [b, 3, info["image_size"], ...], normalised by info["mean"/"std"]

(a training checkpoint, or a file of `tools/export --format forge`; a `--format timm` export
loads into timm itself: docs/EXPORT.md).

Each class mirrors models/<name>.h/.cpp: the same layers in the same order, the same widths,
norms (BatchNorm eps 1e-5 momentum 0.1; LayerNorm eps 1e-6), activations (ReLU; exact erf GELU),
dropout rates and places, bias choices (convolutions without bias, linear layers with) and the same
initialisation (He-normal convolutions, Xavier-uniform linear layers and ViT patch embedding,
truncated normal std 0.02 for the class token and positions), so that the parameter counts match
forge's exactly (PARAMS below; build() asserts them for 2 classes at 120x120).

Where forge has a fused op, the closest stock PyTorch equivalent is used:
  patch_embed             conv 16x16/16 + flatten + class token + positions
  scaled_dot_product_attention  torch.nn.functional.scaled_dot_product_attention (fused on CPU too)
  multi_resolution_fusion ReLU(sum of nearest-resized inputs) (F.interpolate 'nearest':
                          source index floor(o * in / out), as in forge)
"""
import json
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

# forge's parameter counts for 2 classes at 120x120 (trainable parameters; BatchNorm running
# statistics are buffers in both).
PARAMS = {"vit": 5_499_458, "hrnet": 1_478_402, "cnn": 1_173_730}


def _xavier_uniform_(t, fan_in, fan_out):
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    with torch.no_grad():
        return t.uniform_(-bound, bound)


def _kaiming_normal_(t, fan_in):
    with torch.no_grad():
        return t.normal_(0.0, math.sqrt(2.0 / fan_in))


def linear(i, o):
    """forge nn::Linear: Xavier-uniform weight, zero bias."""
    layer = nn.Linear(i, o)
    _xavier_uniform_(layer.weight, i, o)
    nn.init.zeros_(layer.bias)
    return layer


def conv(i, o, k, stride):
    """forge nn::Conv2d as the models use it: padding k // 2, no bias, He-normal weight."""
    layer = nn.Conv2d(i, o, k, stride, k // 2, bias=False)
    _kaiming_normal_(layer.weight, i * k * k)
    return layer


def conv_bn(i, o, k, stride, relu):
    layers = [conv(i, o, k, stride), nn.BatchNorm2d(o, eps=1e-5, momentum=0.1)]
    if relu:
        layers.append(nn.ReLU(inplace=False))
    return nn.Sequential(*layers)


# ---- ViT-Ti/16 (models/vit.h) -------------------------------------------------------------------


class SelfAttention(nn.Module):
    def __init__(self, dim, heads, dropout):
        super().__init__()
        self.heads = heads
        self.qkv = linear(dim, 3 * dim)
        self.proj = linear(dim, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        b, t, dim = x.shape
        dh = dim // self.heads
        qkv = self.qkv(x).reshape(b, t, 3, self.heads, dh).permute(2, 0, 3, 1, 4)
        o = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], scale=1.0 / math.sqrt(dh))
        o = o.permute(0, 2, 1, 3).reshape(b, t, dim)
        return self.drop(self.proj(o))


class VitBlock(nn.Module):
    def __init__(self, dim, heads, mlp_dim, dropout):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = SelfAttention(dim, heads, dropout)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Sequential(linear(dim, mlp_dim), nn.GELU(), nn.Dropout(dropout),
                                 linear(mlp_dim, dim), nn.Dropout(dropout))

    def forward(self, x):
        h = x + self.attn(self.norm1(x))
        return h + self.mlp(self.norm2(h))


class VisionTransformer(nn.Module):
    def __init__(self, num_classes=2, image_size=120, patch=16, dim=192, depth=12, heads=3,
                 mlp_dim=768, dropout=0.1):
        super().__init__()
        self.patch, self.dim = patch, dim
        self.padded = (image_size + patch - 1) // patch * patch
        grid = self.padded // patch
        self.patch_embed = nn.Conv2d(3, dim, patch, patch)  # = forge's patch_embed weight + bias
        _xavier_uniform_(self.patch_embed.weight, 3 * patch * patch, dim)
        nn.init.zeros_(self.patch_embed.bias)
        self.cls_token = nn.Parameter(torch.empty(dim))
        self.pos_embed = nn.Parameter(torch.empty(1 + grid * grid, dim))
        nn.init.trunc_normal_(self.cls_token, std=0.02, a=-0.04, b=0.04)
        nn.init.trunc_normal_(self.pos_embed, std=0.02, a=-0.04, b=0.04)
        self.embed_drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(VitBlock(dim, heads, mlp_dim, dropout) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = linear(dim, num_classes)

    def forward(self, images):
        extra = self.padded - images.shape[-1]
        x = images
        if extra > 0:  # centred zero padding, 120 -> 128
            x = F.pad(x, (extra // 2, extra - extra // 2, extra // 2, extra - extra // 2))
        x = self.patch_embed(x).flatten(2).transpose(1, 2)  # [b, 64, dim]
        cls = self.cls_token.expand(x.shape[0], 1, self.dim)
        x = torch.cat([cls, x], dim=1) + self.pos_embed
        x = self.embed_drop(x)
        for block in self.blocks:
            x = block(x)
        x = self.norm(x)
        return self.head(x[:, 0])


# ---- HRNet-W18-small-v1 (models/hrnet.h) ----------------------------------------------------------


class BasicBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.body = nn.Sequential(conv_bn(c, c, 3, 1, True), conv_bn(c, c, 3, 1, False))

    def forward(self, x):
        return F.relu(x + self.body(x))


class Bottleneck(nn.Module):
    def __init__(self, i, planes):
        super().__init__()
        o = 4 * planes
        self.body = nn.Sequential(conv_bn(i, planes, 1, 1, True), conv_bn(planes, planes, 3, 1, True),
                                  conv_bn(planes, o, 1, 1, False))
        self.shortcut = conv_bn(i, o, 1, 1, False) if i != o else None

    def forward(self, x):
        return F.relu((self.shortcut(x) if self.shortcut is not None else x) + self.body(x))


def multi_resolution_fusion(parts, oh, ow):
    """forge's fused op: ReLU(sum_i nearest_resize(parts[i] -> (oh, ow)))."""
    total = None
    for p in parts:
        if p.shape[-2:] != (oh, ow):
            p = F.interpolate(p, size=(oh, ow), mode="nearest")
        total = p if total is None else total + p
    return F.relu(total)


class HrModule(nn.Module):
    def __init__(self, ch, blocks):
        super().__init__()
        n = len(ch)
        self.branches = nn.ModuleList(nn.Sequential(*[BasicBlock(ch[b]) for _ in range(blocks)])
                                      for b in range(n))
        self.fuse = nn.ModuleList()
        for i in range(n):
            row = nn.ModuleList()
            for j in range(n):
                if j == i:
                    row.append(nn.Identity())
                elif j > i:  # lower resolution: 1x1 conv + BN; the fusion upsamples
                    row.append(conv_bn(ch[j], ch[i], 1, 1, False))
                else:  # higher resolution: i - j stride-2 3x3 steps, the last to ch[i], no ReLU
                    steps = []
                    for s in range(i - j):
                        last = s == i - j - 1
                        steps.append(conv_bn(ch[j], ch[i] if last else ch[j], 3, 2, not last))
                    row.append(nn.Sequential(*steps))
            self.fuse.append(row)

    def forward(self, xs):
        ys = [branch(x) for branch, x in zip(self.branches, xs)]
        out = []
        for i, row in enumerate(self.fuse):
            parts = [ys[j] if j == i else row[j](ys[j]) for j in range(len(ys))]
            out.append(multi_resolution_fusion(parts, ys[i].shape[2], ys[i].shape[3]))
        return out


class HighResolutionNet(nn.Module):
    def __init__(self, num_classes=2, stem_channels=64, bottleneck_planes=32,
                 branch_channels=(16, 32, 64, 128), blocks_per_branch=2, dropout=0.2):
        super().__init__()
        ch = list(branch_channels)
        self.stem = nn.Sequential(conv_bn(3, stem_channels, 3, 2, True),
                                  conv_bn(stem_channels, stem_channels, 3, 2, True))
        self.stage1 = Bottleneck(stem_channels, bottleneck_planes)
        # Registered under forge's names (transition1.0, stage2, ...; models/hrnet.cpp), so that
        # state_dict() keys are forge's parameter names.
        self.transitions, self.stages = [], []
        for s in range(2, len(ch) + 1):
            t = nn.ModuleList([nn.Identity() for _ in range(s)])
            if s == 2:  # from the single stage-1 map: one conv per branch, the second strided
                c_in = 4 * bottleneck_planes
                t[0] = conv_bn(c_in, ch[0], 3, 1, True)
                t[1] = conv_bn(c_in, ch[1], 3, 2, True)
            else:  # existing branches pass through; the new one from the lowest resolution
                t[s - 1] = conv_bn(ch[s - 2], ch[s - 1], 3, 2, True)
            self.add_module(f"transition{s - 1}", t)
            self.add_module(f"stage{s}", HrModule(ch[:s], blocks_per_branch))
            self.transitions.append(t)
            self.stages.append(getattr(self, f"stage{s}"))
        self.drop = nn.Dropout(dropout)
        self.head = linear(sum(ch), num_classes)

    def forward(self, images):
        branches = [self.stage1(self.stem(images))]
        for t, stage in zip(self.transitions, self.stages):
            nxt = []
            for b, layer in enumerate(t):
                src = branches[b] if b < len(branches) else branches[-1]
                nxt.append(layer(src))
            branches = stage(nxt)
        oh, ow = branches[0].shape[2], branches[0].shape[3]
        resized = [b if b.shape[2] == oh else F.interpolate(b, size=(oh, ow), mode="nearest")
                   for b in branches]
        pooled = torch.cat(resized, dim=1).mean(dim=(2, 3))
        return self.head(self.drop(pooled))


# ---- baseline CNN (models/cnn.h) -----------------------------------------------------------------


class BaselineCnn(nn.Module):
    def __init__(self, num_classes=2, channels=(32, 64, 128, 256), dropout=0.5):
        super().__init__()
        stages, c_in = [], 3
        for c in channels:
            stages.append(nn.Sequential(conv_bn(c_in, c, 3, 1, True), conv_bn(c, c, 3, 1, True)))
            c_in = c
        self.stages = nn.ModuleList(stages)
        self.drop = nn.Dropout(dropout)
        self.head = linear(c_in, num_classes)

    def forward(self, images):
        x = images
        for stage in self.stages:
            x = F.max_pool2d(stage(x), 2, 2)
        return self.head(self.drop(x.mean(dim=(2, 3))))


# ---- registry --------------------------------------------------------------------------------------


def count_parameters(model):
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# models/registry.cpp's presets: the keyword arguments of each class (the -micro variants are
# the same code at toy widths, for tests: tests/fixtures/ via bench/pytorch_fixtures.py).
PRESETS = {
    "vit": (VisionTransformer, {}),
    "vit-micro": (VisionTransformer, dict(patch=8, dim=32, depth=2, heads=2, mlp_dim=64)),
    "hrnet": (HighResolutionNet, {}),
    "hrnet-micro": (HighResolutionNet, dict(stem_channels=8, bottleneck_planes=4,
                                            branch_channels=(4, 8, 12, 16), blocks_per_branch=1)),
    "cnn": (BaselineCnn, {}),
    "cnn-micro": (BaselineCnn, dict(channels=(8, 16))),
}


def build(name, num_classes=2, image_size=120, dropout=None):
    """The preset `name` (see PRESETS); dropout None keeps the preset's rate. Asserts forge's
    parameter count for the full presets at 2 classes, 120x120."""
    if name not in PRESETS:
        raise ValueError(f"unknown model '{name}' (known: {', '.join(PRESETS)})")
    cls, kwargs = PRESETS[name]
    kwargs = dict(kwargs, num_classes=num_classes)
    if cls is VisionTransformer:
        kwargs["image_size"] = image_size
    if dropout is not None:
        kwargs["dropout"] = dropout
    model = cls(**kwargs)
    if name in PARAMS and num_classes == 2 and image_size == 120:
        n = count_parameters(model)
        assert n == PARAMS[name], f"{name}: {n:,} parameters, forge has {PARAMS[name]:,}"
    return model


# The twin's fixed layer choices, which a checkpoint's architecture must match.
FIXED = {"vit": {"in_channels": 3, "norm": "layer_norm", "norm_eps": 1e-6, "activation": "gelu_erf"},
         "hrnet": {"in_channels": 3, "norm": "batch_norm", "norm_eps": 1e-5, "norm_momentum": 0.1,
                   "activation": "relu"}}
FIXED["cnn"] = FIXED["hrnet"]
# architecture key -> keyword argument, per family (the rest are derived or fixed).
ARGUMENTS = {
    "vit": ["num_classes", "image_size", "patch", "dim", "depth", "heads", "mlp_dim", "dropout"],
    "hrnet": ["num_classes", "stem_channels", "bottleneck_planes", "branch_channels",
              "blocks_per_branch", "dropout"],
    "cnn": ["num_classes", "channels", "dropout"],
}
CLASSES = {"vit": VisionTransformer, "hrnet": HighResolutionNet, "cnn": BaselineCnn}


def from_architecture(architecture):
    """The twin of a checkpoint's "architecture" metadata (models/model.h), or ValueError naming
    what this twin does not build."""
    family = architecture.get("family")
    if family not in CLASSES:
        raise ValueError(f"architecture family {family!r} has no twin (known: {', '.join(CLASSES)})")
    for key, value in FIXED[family].items():
        if architecture.get(key) != value:
            raise ValueError(f"{family}: {key} is {architecture.get(key)!r}, the twin has {value!r}")
    # Checkpoints from before --stem have no "stem": the patch embedding, the twin's only one.
    if architecture.get("stem", "patch") != "patch":
        raise ValueError(f"{family}: stem is {architecture['stem']!r}, the twin has the patch stem")
    return CLASSES[family](**{k: architecture[k] for k in ARGUMENTS[family]})


def load_forge(path):
    """A forge checkpoint or `tools/export --format forge` file as a twin in eval mode, with its
    weights loaded strictly (every key, no other), and a dict of what the input needs:
    class_names, image_size, mean, std, fit, epoch. Checkpoints from before the architecture was
    recorded are built from their preset's name."""
    from safetensors import safe_open
    with safe_open(path, framework="pt") as f:
        metadata = f.metadata() or {}
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    if "class_names" not in metadata:
        raise ValueError(f"{path}: no class_names metadata: not a forge checkpoint or export")
    exported = metadata.get("forge_export")
    if exported not in (None, "forge"):
        raise ValueError(f"{path}: a {exported} export; load it into {exported} (docs/EXPORT.md)")
    classes = json.loads(metadata["class_names"])
    if "architecture" in metadata:
        model = from_architecture(json.loads(metadata["architecture"]))
    else:
        dropout = float(metadata["dropout"])
        model = build(metadata["model"], num_classes=len(classes),
                      image_size=int(metadata["image_size"]),
                      dropout=dropout if dropout >= 0 else None)
    if exported is None:  # a training checkpoint: "model." tensors, optimizer state beside them
        state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
        steps = int(metadata["checkpoint.step"])
        for name in [k for k in state if k.endswith(".running_var")]:  # BatchNorm's counter
            state[name[:-len("running_var")] + "num_batches_tracked"] = torch.tensor(steps)
    else:
        state = tensors
    model.load_state_dict(state, strict=True)
    model.eval()
    norm = json.loads(metadata["normalization"])
    info = {"class_names": classes, "image_size": int(metadata["image_size"]),
            "mean": norm["mean"], "std": norm["std"], "fit": metadata.get("fit", "crop"),
            "epoch": int(metadata.get("checkpoint.epoch", metadata.get("epoch", 0)))}
    return model, info


if __name__ == "__main__":  # python3 bench/pytorch_models.py: the counts and an output shape each
    for name in PARAMS:
        m = build(name)
        y = m(torch.randn(2, 3, 120, 120))
        print(f"{name:6s} {count_parameters(m):>10,} parameters (forge {PARAMS[name]:,}), "
              f"output {tuple(y.shape)}")
