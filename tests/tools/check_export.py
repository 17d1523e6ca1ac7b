#!/usr/bin/env python3
"""check_export.py: tools/export as a user runs it, on tiny runs of the micro presets at 20x20
(the size of tests/program_checks.py's images, so that the input pipeline is only x / 255,
normalised, and a PyTorch side can repeat it exactly).

    check_export.py BIN_DIR WORK_DIR CASE

  roundtrip  export (timm for the ViT, forge for all, f32 and bf16) and --import back: predict
             gives the same probabilities (bit for bit for f32, within bf16's rounding)
  errors     what export refuses, naming the file, and leaving no output behind
  conv_stem  a ViT with --stem conv through predict, eval, export (forge names; timm refused) and
             --import; the cnn and hrnet presets refuse --stem conv
  twins      bench/pytorch_models.py's twins load train's checkpoints and forge-format exports as
             they are (load_forge) and compute predict's probabilities
  timm       timm's VisionTransformer loads the timm export strictly and computes them too
twins and timm need a python with torch (and timm): FORGE_TORCH_PYTHON, or the .venv-bench of
bench/setup_pytorch.sh; without one they are skipped (exit 77), saying so.
"""
import json
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(HERE, ".."))
from program_checks import expect_program, fail, make_images  # noqa: E402

BIN, WORK, CASE = sys.argv[1], sys.argv[2], sys.argv[3]
PRESETS = ["vit-micro", "cnn-micro", "hrnet-micro"]
SKIP = 77


def expect(program, args, code, *needles):
    return expect_program(BIN, program, args, code, *needles)


def setup(presets, extra=()):
    """A fresh work folder with the tiny data set and one 1-epoch run per preset (train's `extra`
    flags added)."""
    shutil.rmtree(WORK, ignore_errors=True)
    data = make_images(os.path.join(WORK, "data"))
    checkpoints = {}
    for preset in presets:
        run_dir = os.path.join(WORK, "run-" + preset)
        expect("train", ["--model", preset, "--img-size", 20, "--data", data, "-b", 8,
                         "--epochs", 1, "-j", 2, "--report-examples", 2, "--output", run_dir, *extra], 0)
        checkpoints[preset] = os.path.join(run_dir, "last.safetensors")
    images = [os.path.join(data, c, f"im{i}.png") for c in ("red", "blue") for i in (0, 5)]
    return checkpoints, images


def probabilities(checkpoint, images):
    """predict's probabilities, [image][class in the checkpoint's order]."""
    out = expect("predict", ["--checkpoint", checkpoint, "--format", "json", *images], 0)
    rows = [json.loads(line) for line in out.splitlines()]
    return [list(r["probabilities"].values()) for r in rows]


def close(a, b, tol):
    return all(abs(x - y) <= tol for ra, rb in zip(a, b) for x, y in zip(ra, rb))


def case_roundtrip():
    checkpoints, images = setup(PRESETS)
    for preset, ckpt in checkpoints.items():
        want = probabilities(ckpt, images)
        formats = (["timm"] if preset == "vit-micro" else []) + ["forge"]
        for fmt in formats:
            for dtype, tol in (("f32", 0.0), ("bf16", 0.02)):
                exported = os.path.join(WORK, f"{preset}-{fmt}-{dtype}.safetensors")
                back = os.path.join(WORK, f"{preset}-{fmt}-{dtype}-back.safetensors")
                expect("export", [ckpt, exported, "--format", fmt, "--dtype", dtype], 0,
                       f"{fmt} names")
                expect("export", ["--import", exported, back], 0, "checkpoint " + back)
                got = probabilities(back, images)
                if (got != want) if tol == 0 else not close(got, want, tol):
                    fail(f"{preset} via {fmt} {dtype}: predict gives {got}, originally {want}")
                expect("eval", ["--checkpoint", back, "--data", os.path.join(WORK, "data")], 0)
    # Without --format: timm for the ViT, forge for the others.
    expect("export", [checkpoints["vit-micro"], os.path.join(WORK, "v.safetensors")], 0,
           "timm names")
    expect("export", [checkpoints["cnn-micro"], os.path.join(WORK, "c.safetensors")], 0,
           "forge names")
    print("export round trips: identical predictions for f32, within bf16 rounding for bf16")


def case_conv_stem():
    """A ViT with --stem conv: predict and eval rebuild it from the checkpoint; export writes
    forge's names by default and refuses timm's (timm's ViT has no conv stem); --import gives the
    same predictions back. The convolutional presets refuse the option."""
    checkpoints, images = setup(["vit-micro"], ["--stem", "conv"])
    ckpt = checkpoints["vit-micro"]
    want = probabilities(ckpt, images)
    expect("eval", ["--checkpoint", ckpt, "--data", os.path.join(WORK, "data")], 0)
    exported = os.path.join(WORK, "conv-stem.safetensors")
    expect("export", [ckpt, exported, "--format", "timm"], 1, ckpt, "no timm twin",
           "--format forge")
    if os.path.exists(exported):
        fail("a refused export left " + exported)
    expect("export", [ckpt, exported], 0, "forge names")
    back = os.path.join(WORK, "conv-stem-back.safetensors")
    expect("export", ["--import", exported, back], 0, "checkpoint " + back)
    got = probabilities(back, images)
    if got != want:
        fail(f"conv stem via forge names: predict gives {got}, originally {want}")
    for preset in ("cnn-micro", "hrnet-micro"):
        expect("train", ["--model", preset, "--stem", "conv", "--data", os.path.join(WORK, "data"),
                         "--output", os.path.join(WORK, "refused-" + preset)], 2,
               "--stem conv with --model " + preset, "only the vit presets")
    print("conv stem: predict, eval and the forge export rebuild it; timm export and the "
          "convolutional presets refuse it")


def case_errors():
    checkpoints, _ = setup(["cnn-micro"])
    ckpt = checkpoints["cnn-micro"]
    out = os.path.join(WORK, "out.safetensors")
    missing = os.path.join(WORK, "missing.safetensors")
    expect("export", [missing, out], 2, missing)
    expect("export", [ckpt, out, "--format", "timm"], 1, "--format forge")
    expect("export", [ckpt, out, "--dtype", "f64"], 2, "--dtype")
    expect("export", ["--import", ckpt, out], 1, ckpt, "not written by export")
    expect("export", [ckpt, ckpt, "--force"], 1, "the input itself")
    if os.path.exists(out):
        fail("a refused export left " + out)
    expect("export", [ckpt, out], 0)
    expect("export", [ckpt, out], 1, out, "--force")
    expect("export", [ckpt, out, "--force"], 0)

    # An export with one tensor dropped: the import names the file and leaves nothing behind.
    from safetensors.numpy import load_file, save_file  # scripts/setup.sh installs it
    from safetensors import safe_open
    with safe_open(out, framework="np") as f:
        metadata = f.metadata()
    tensors = load_file(out)
    del tensors["head.weight"]
    broken = os.path.join(WORK, "broken.safetensors")
    save_file(tensors, broken, metadata=metadata)
    back = os.path.join(WORK, "back.safetensors")
    expect("export", ["--import", broken, back], 1, "cannot import " + broken, "head.weight")
    left = [n for n in os.listdir(WORK) if n.startswith("back.safetensors")]
    if left:
        fail(f"a failed import left {left}")
    print("export refuses bad input with the file named and writes nothing")


def torch_python(module):
    """A python that imports `module` (e.g. "torch, PIL, safetensors"), or exit 77 saying why not."""
    python = os.environ.get("FORGE_TORCH_PYTHON", os.path.join(ROOT, ".venv-bench", "bin", "python"))
    if not os.path.exists(python) or subprocess.run(
            [python, "-c", f"import {module}"], capture_output=True).returncode != 0:
        print(f"SKIPPED: no python with {module} (set FORGE_TORCH_PYTHON, or run "
              f"bench/setup_pytorch.sh, with TIMM=1 for timm)")
        sys.exit(SKIP)
    return python


# Run by the torch python: the probabilities of each (loader, file) on the images, as JSON.
TORCH_SIDE = r"""
import json, sys
import numpy as np, torch
from PIL import Image
sys.path.insert(0, sys.argv[1])
import pytorch_models
jobs = json.loads(sys.argv[2])
results = []
for job in jobs:
    from safetensors import safe_open
    with safe_open(job["file"], framework="pt") as f:
        meta = f.metadata()
    norm = json.loads(meta["normalization"])
    if job["loader"] == "twin":
        model, info = pytorch_models.load_forge(job["file"])
        pad = 0
    else:  # timm, built from the architecture the export carries
        import timm, safetensors.torch
        a = json.loads(meta["architecture"])
        model = timm.models.vision_transformer.VisionTransformer(
            img_size=a["padded_size"], patch_size=a["patch"], embed_dim=a["dim"], depth=a["depth"],
            num_heads=a["heads"], mlp_ratio=a["mlp_dim"] / a["dim"], num_classes=a["num_classes"])
        model.load_state_dict(safetensors.torch.load_file(job["file"]), strict=True)
        model.eval()
        pad = a["padded_size"] - a["image_size"]
    mean = torch.tensor(norm["mean"])[:, None, None]
    std = torch.tensor(norm["std"])[:, None, None]
    x = torch.stack([(torch.tensor(np.asarray(Image.open(p).convert("RGB"), dtype=np.float32)
                      / 255).permute(2, 0, 1) - mean) / std for p in job["images"]])
    x = torch.nn.functional.pad(x, (pad // 2, pad - pad // 2, pad // 2, pad - pad // 2))
    with torch.no_grad():
        results.append(model(x).softmax(-1).tolist())
print(json.dumps(results))
"""


def torch_probabilities(python, jobs):
    p = subprocess.run([python, "-c", TORCH_SIDE, os.path.join(ROOT, "bench"), json.dumps(jobs)],
                       capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        fail("the PyTorch side failed:\n" + p.stdout + p.stderr)
    return json.loads(p.stdout)


def compare(python, jobs, want):
    for job, got in zip(jobs, torch_probabilities(python, jobs)):
        if not close(got, want[job["preset"]], 1e-5):
            fail(f"{job['loader']} on {job['file']}: {got}, forge's predict {want[job['preset']]}")


def case_twins():
    python = torch_python("torch, numpy, PIL, safetensors")  # TORCH_SIDE's imports
    checkpoints, images = setup(PRESETS)
    want, jobs = {}, []
    for preset, ckpt in checkpoints.items():
        want[preset] = probabilities(ckpt, images)
        exported = os.path.join(WORK, preset + "-forge.safetensors")
        expect("export", [ckpt, exported, "--format", "forge"], 0)
        for f in (ckpt, exported):
            jobs.append({"loader": "twin", "file": f, "images": images, "preset": preset})
    compare(python, jobs, want)
    print(f"the PyTorch twins load {len(jobs)} checkpoints and exports as they are, "
          "and agree with predict within 1e-5")


def case_timm():
    python = torch_python("timm")
    checkpoints, images = setup(["vit-micro"])
    want = {"vit-micro": probabilities(checkpoints["vit-micro"], images)}
    exported = os.path.join(WORK, "vit-timm.safetensors")
    expect("export", [checkpoints["vit-micro"], exported, "--format", "timm"], 0)
    compare(python, [{"loader": "timm", "file": exported, "images": images,
                      "preset": "vit-micro"}], want)
    print("timm's VisionTransformer loads the timm export strictly and agrees with predict")


if __name__ == "__main__":
    globals()["case_" + CASE]()
