"""Merges forge's and PyTorch's training-step JSONs into the Markdown table of compare_pytorch.sh.

  python3 bench/make_table.py --dir DIR [--models vit hrnet cnn]

reads DIR/forge-<model>.json (build/bin/bench model --json) and DIR/pytorch-<model>.json
(bench/pytorch_bench.py --json) and prints Markdown: the machine, the settings, one row per model.
When DIR holds forge-inference-<model>.json and pytorch-inference-<model>.json (the --inference
runs), a second table gives forward-pass images per second at each batch size and their ratio.
A missing or unreadable JSON leaves its cells as "failed". Standard library only.
"""
import argparse
import datetime
import json
import os
import platform
import subprocess


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def machine():
    model, cores, flags = platform.processor() or "unknown", os.cpu_count(), set()
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        info = {}
        for line in out.splitlines():
            key, _, value = line.partition(":")
            info[key.strip()] = value.strip()
        model = info.get("Model name", model)
        cores = info.get("CPU(s)", cores)
        flags = set(info.get("Flags", "").split())
    except (OSError, subprocess.CalledProcessError):
        pass
    simd = [f for f in ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16",
                        "amx_tile") if f in flags]
    return f"{model}, {cores} CPUs, flags: {' '.join(simd) or 'no avx2/avx512'}"


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def num(d, key, fmt="{:.1f}"):
    if d is None or d.get(key) is None:
        return "failed"
    return fmt.format(d[key])


def inference_rate(d, batch):
    """images_per_second of the pass at `batch` in an --inference JSON, or None."""
    for p in (d or {}).get("inference", []):
        if p.get("batch") == batch:
            return p.get("images_per_second")
    return None


def inference_table(directory, models):
    """The Markdown lines of the inference table, or [] when no inference JSON is there."""
    runs = {m: (load(os.path.join(directory, f"forge-inference-{m}.json")),
                load(os.path.join(directory, f"pytorch-inference-{m}.json"))) for m in models}
    if not any(f or p for f, p in runs.values()):
        return []
    batches = sorted({run["batch"] for pair in runs.values() for d in pair if d
                      for run in d.get("inference", []) if "batch" in run})
    header, rule = "| model |", "| --- |"
    for b in batches:
        header += f" forge img/s b{b} | PyTorch img/s b{b} | ratio b{b} |"
        rule += " ---: | ---: | ---: |"
    lines = ["", "Inference: eval-mode forward passes, no autograd (forge `bench model --inference`; "
             "PyTorch under torch.inference_mode()), images per second (median pass) at batch b", "",
             header, rule]
    for m in models:
        f, p = runs[m]
        row = f"| {m} |"
        for b in batches:
            fr, pr = inference_rate(f, b), inference_rate(p, b)
            ratio = f"{fr / pr:.2f}" if fr and pr else "-"
            row += (f" {'failed' if fr is None else f'{fr:.1f}'} |"
                    f" {'failed' if pr is None else f'{pr:.1f}'} | {ratio} |")
        lines.append(row)
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", required=True)
    ap.add_argument("--models", nargs="+", default=["vit", "hrnet", "cnn"])
    args = ap.parse_args()

    rows, torch_version, settings = [], None, None
    for m in args.models:
        f = load(os.path.join(args.dir, f"forge-{m}.json"))
        p = load(os.path.join(args.dir, f"pytorch-{m}.json"))
        if p:
            torch_version = p.get("torch_version", torch_version)
        ref = f or p
        if ref and settings is None:
            settings = (f"batch {ref.get('batch')}, {ref.get('image_size')}x{ref.get('image_size')}, "
                        f"{ref.get('threads')} threads, {ref.get('steps')} timed steps (median)")
        ratio = "-"
        if f and p and f.get("images_per_second") and p.get("images_per_second"):
            ratio = f"{f['images_per_second'] / p['images_per_second']:.2f}"
        rows.append(f"| {m} | {num(f, 'images_per_second')} | {num(p, 'images_per_second')} | "
                    f"{ratio} | {num(f, 'peak_rss_mb', '{:.0f}')} | {num(p, 'peak_rss_mb', '{:.0f}')} | "
                    f"{num(f, 'achieved_gflops')} |")

    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(f"Training step, forge against PyTorch ({now})\n")
    print(f"- machine: {machine()}")
    print(f"- PyTorch: {torch_version or 'unknown'} (CPU); forge: build/bin/bench model --device cpu")
    print(f"- OMP_WAIT_POLICY: {os.environ.get('OMP_WAIT_POLICY', 'unset (libgomp spins)')}; "
          f"load average (1, 5, 15 min) at the start {os.environ.get('COMPARE_LOAD_START', '?')}, "
          f"at the end {loadavg()}")
    print(f"- settings: {settings or 'unknown'}; one step = forward, label-smoothed cross-entropy, "
          f"backward, clip to norm 1, AdamW")
    print("- ratio = forge img/s / PyTorch img/s (above 1: forge is faster)\n")
    print("| model | forge img/s | PyTorch img/s | ratio | forge peak RSS MB | "
          "PyTorch peak RSS MB | forge achieved GFLOP/s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(r)
    for line in inference_table(args.dir, args.models):
        print(line)


if __name__ == "__main__":
    main()
