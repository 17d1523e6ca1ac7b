#!/usr/bin/env python3
"""gpu_check_summary.py: the summary of a scripts/gpu_check.sh run, from the files it left.

Usage: gpu_check_summary.py OUT_DIR
Reads OUT_DIR/steps.tsv (name, status, seconds, cap per step), gpu.txt, sanitizer.txt, the
bench_model_*.json and bench_ops.json files and the playground logs; writes OUT_DIR/steps.json and
OUT_DIR/summary.md (Markdown, ready to paste into docs/BENCHMARKS.md). Exits 1 when a step failed
or timed out (one not run, for want of compute-sanitizer, is not a failure), so the caller's status
says so too.
"""
import json
import pathlib
import sys


def read(path):
    return path.read_text(errors="replace").strip() if path.exists() else ""


def main():
    out = pathlib.Path(sys.argv[1])
    steps = []
    for line in read(out / "steps.tsv").splitlines():
        name, status, seconds, cap = line.split("\t")
        steps.append({"step": name, "status": status, "seconds": int(seconds), "cap": int(cap)})
    (out / "steps.json").write_text(json.dumps(steps, indent=2) + "\n")

    md = ["# gpu_check", "", "GPU: " + (read(out / "gpu.txt") or "(unknown)"), ""]
    md += ["| step | status | seconds (cap) |", "| --- | --- | --- |"]
    md += [f"| {s['step']} | {s['status']} | {s['seconds']} ({s['cap']}) |" for s in steps]
    md += ["", read(out / "sanitizer.txt") or "compute-sanitizer: not reached", ""]

    models = sorted(out.glob("bench_model_*.json"))
    if models:
        md += ["## bench model", "",
               "| model | precision | batch | px | step ms (median) | images/s | GFLOP/s "
               "| launches/step |",
               "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for path in models:
            j = json.loads(path.read_text())
            graph = " + CUDA graph" if j.get("cuda_graph") else ""
            md.append(f"| {j['model']} | {j.get('precision', 'fp32')}{graph} | {j['batch']} "
                      f"| {j['image_size']} "
                      f"| {j['step_ms_median']:.2f} | {j['images_per_second']:.0f} "
                      f"| {j['achieved_gflops']:.0f} | {j.get('launches_per_step', 0):.0f} |")
        md.append("")
    ops = out / "bench_ops.json"
    if ops.exists():
        md += ["## bench ops (ms, median)", "", "| op | forward | backward |", "| --- | --- | --- |"]
        for op in json.loads(ops.read_text()).get("ops", []):
            md.append(f"| {op['name']} | {op['forward']['ms_median']:.3f} "
                      f"| {op['backward']['ms_median']:.3f} |")
        md.append("")
    for name in ("playground_check", "playground_models", "playground_long", "playground_bf16"):
        text = read(out / f"{name}.log")
        if text:
            md += [f"## {name}", "", "```", text[-6000:], "```", ""]
    (out / "summary.md").write_text("\n".join(md))
    # A step not run (no compute-sanitizer) is shown as such, and is not a failure.
    ok = all(s["status"] == "passed" or s["status"].startswith("not run") for s in steps)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
