#!/usr/bin/env python3
"""Smoke check of build/bin/bench: runs it, then checks its JSON's keys and values.

Usage: check_bench.py ops|model|inference JSON BENCH ARGS...
Runs `BENCH ARGS... --json JSON`; fails unless it exits 0 and the JSON has the expected keys with
positive finite timings (model: exactly the keys the PyTorch comparison reads, every number
positive and finite; launches_per_step 0 on cpu; model and inference: the stem --stem asked for). inference (`bench model --inference`): exactly
the keys docs/BENCHMARKS.md lists, batch 1 first, and bench/make_table.py turns the JSON, given as
both forge's and PyTorch's, into an inference table whose ratios are 1.00. No speed is asserted.
"""
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile

MODEL_KEYS = {"model", "stem", "device", "batch", "image_size", "threads", "steps", "step_ms_median",
              "step_ms_min", "step_ms_max", "images_per_second", "train_gflop_per_step",
              "achieved_gflops", "peak_rss_mb", "launches_per_step", "precision", "cuda_graph"}
INFERENCE_KEYS = {"model", "stem", "device", "precision", "mode", "image_size", "threads", "inference",
                  "peak_rss_mb"}
INFERENCE_PASS_KEYS = {"batch", "passes", "ms_median", "ms_min", "ms_max", "images_per_second"}
MAKE_TABLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench",
                          "make_table.py")
PASS_KEYS = {"flops", "bytes", "ms_median", "ms_min", "ms_max", "gflops", "gbytes_per_second"}


def fail(message):
    print("check_bench: " + message, file=sys.stderr)
    sys.exit(1)


def finite(value, what, positive):
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        fail(f"{what} = {value!r} is not a finite number")
    if positive and value <= 0:
        fail(f"{what} = {value!r} is not positive")
    if value < 0:
        fail(f"{what} = {value!r} is negative")


def check_stem(j, command):
    """The stem the command asked for (--stem; patch without it)."""
    want = command[command.index("--stem") + 1] if "--stem" in command else "patch"
    if j["stem"] != want:
        fail(f"stem = {j['stem']!r}, the command asked for {want!r}")


def check_model(j):
    if set(j) != MODEL_KEYS:
        fail(f"model keys {sorted(j)} differ from {sorted(MODEL_KEYS)}")
    for key in MODEL_KEYS - {"model", "stem", "device", "launches_per_step", "precision",
                             "cuda_graph"}:
        finite(j[key], key, positive=True)
    if j["cuda_graph"] is not False:  # the smoke runs do not pass --cuda-graph
        fail(f"cuda_graph = {j['cuda_graph']!r} without --cuda-graph")
    launches = j["launches_per_step"]
    finite(launches, "launches_per_step", positive=j["device"] != "cpu")
    if j["device"] == "cpu" and launches != 0:
        fail(f"launches_per_step = {launches} on cpu, which launches no kernels")


def check_inference(j, path):
    if set(j) != INFERENCE_KEYS:
        fail(f"inference keys {sorted(j)} differ from {sorted(INFERENCE_KEYS)}")
    if j["mode"] != "inference":
        fail(f"mode = {j['mode']!r}, expected 'inference'")
    passes = j["inference"]
    if not passes or passes[0].get("batch") != 1:
        fail(f"the inference passes {passes!r} do not start at batch 1")
    for p in passes:
        if set(p) != INFERENCE_PASS_KEYS:
            fail(f"inference pass keys {sorted(p)} differ from {sorted(INFERENCE_PASS_KEYS)}")
        for key in INFERENCE_PASS_KEYS:
            finite(p[key], f"inference batch {p['batch']} {key}", positive=True)
    finite(j["peak_rss_mb"], "peak_rss_mb", positive=True)
    # The comparison's table: the same JSON on both sides gives ratio 1.00 at every batch.
    with tempfile.TemporaryDirectory() as d:
        for side in ("forge", "pytorch"):
            shutil.copy(path, os.path.join(d, f"{side}-inference-{j['model']}.json"))
        table = subprocess.run([sys.executable, MAKE_TABLE, "--dir", d, "--models", j["model"]],
                               capture_output=True, text=True)
        if table.returncode != 0:
            fail(f"make_table.py failed: {table.stderr}")
        rows = [line for line in table.stdout.splitlines() if line.startswith(f"| {j['model']} |")]
        expected = "| " + j["model"] + " |" + "".join(
            f" {p['images_per_second']:.1f} | {p['images_per_second']:.1f} | 1.00 |"
            for p in passes)
        if expected not in rows:
            fail(f"make_table.py's inference rows {rows!r} lack {expected!r}")


def check_ops(j):
    if not j.get("ops"):
        fail("no ops in the JSON")
    for op in j["ops"]:
        for direction in ("forward", "backward"):
            p = op[direction]
            if set(p) != PASS_KEYS:
                fail(f"{op['name']} {direction} keys {sorted(p)} differ from {sorted(PASS_KEYS)}")
            for key in ("ms_median", "ms_min", "ms_max"):
                finite(p[key], f"{op['name']} {direction} {key}", positive=True)
            # a copy has no flops; the flops and rates may be 0, never negative or non-finite
            for key in ("flops", "bytes", "gflops", "gbytes_per_second"):
                finite(p[key], f"{op['name']} {direction} {key}", positive=False)
        finite(op["forward"]["bytes"], f"{op['name']} forward bytes", positive=True)


def main():
    kind, path, command = sys.argv[1], sys.argv[2], sys.argv[3:]
    result = subprocess.run(command + ["--json", path])
    if result.returncode != 0:
        fail(f"{' '.join(command)} exited with {result.returncode}")
    with open(path) as f:
        j = json.load(f)
    if kind in ("model", "inference"):
        check_stem(j, command)
    if kind == "inference":
        check_inference(j, path)
    else:
        {"ops": check_ops, "model": check_model}[kind](j)
    print(f"check_bench: {kind} JSON OK ({path})")


if __name__ == "__main__":
    main()
