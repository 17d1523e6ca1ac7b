#!/usr/bin/env python3
"""check_cli.py: the command-line programs run as a user runs them, checked for their exit codes
and messages (tools/program.h, train/options.h, train/resume.h).

    check_cli.py BIN_DIR WORK_DIR CASE

CASE is one of the functions named case_* below. Each makes what it needs under WORK_DIR (tiny
PNG class folders from tests/program_checks.py, tiny cnn-micro runs at 16x16) and exits non-zero with a
message on the first failed check.
"""
import json
import math
import os
import re
import shutil
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from program_checks import expect_program, fail, make_images, run_program, snapshot  # noqa: E402

BIN, WORK = sys.argv[1], sys.argv[2]
PROGRAMS = ["train", "eval", "predict", "compare", "bench", "bench_loader", "attention_playground"]


def run(program, *args):
    return run_program(BIN, program, *args)


def expect(program, args, code, *needles):
    return expect_program(BIN, program, args, code, *needles)


def fresh(name):
    path = os.path.join(WORK, name)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


def tiny_flags(data, run_dir):
    return ["--model", "cnn-micro", "--img-size", 16, "--data", data, "-b", 8, "--epochs", 2,
            "--lr", 3e-3, "-j", 2, "--report-examples", 2, "--output", run_dir]


def tiny_run(name, stop_after=None):
    """A tiny run folder, after its first epoch when stop_after is 1."""
    root = fresh(name)
    data = make_images(os.path.join(root, "data"))
    run_dir = os.path.join(root, "run")
    flags = tiny_flags(data, run_dir) + (["--stop-after", stop_after] if stop_after else [])
    expect("train", flags, 0)
    return root, data, run_dir


def read_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    n = struct.unpack("<Q", blob[:8])[0]
    return json.loads(blob[8:8 + n]), blob[8 + n:], n


def write_safetensors(path, header, data, length=None):
    text = json.dumps(header, separators=(",", ":")).encode()
    if length is not None:  # keep the header's length, as safetensors allows, by space padding
        if len(text) > length:
            fail("the edited header grew")
        text += b" " * (length - len(text))
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)


def float_flags():
    """Every FLOAT flag train's --help lists: the check covers options added later too."""
    _, out, _ = run("train", "--help")
    flags = re.findall(r"^\s+((?:-\w,)?--[\w-]+(?:,--[\w-]+)*) FLOAT", out, re.M)
    if len(flags) < 20:
        fail(f"train --help lists only {len(flags)} FLOAT flags:\n{out}")
    return [f.split(",")[-1] for f in flags]


# ------------------------------------------------------------------------------------- the cases

def case_float_flags():
    """NaN and infinities in every float flag: usage error (2) naming the flag, nothing made."""
    out_dir = os.path.join(fresh("float_flags"), "run")
    for flag in float_flags():
        for value in ["nan", "inf", "-inf", "1e50"]:
            text = expect("train", ["--data", "/nonexistent", "--output", out_dir, flag + "=" + value],
                          2)
            if "finite" not in text:
                fail(f"train {flag}={value}: the message does not say finite:\n{text}")
    if os.path.exists(out_dir):
        fail("a refused command made its run folder")


def case_ranges():
    """An inverted range and a negative seed: usage errors naming the values."""
    expect("train", ["--brightness-min", 5, "--brightness-max", 0.1], 2, "--brightness-min 5",
           "--brightness-max 0.1")
    expect("train", ["--crop-scale", 0.9, "--crop-scale-max", 0.5], 2, "--crop-scale 0.9")
    expect("train", ["--seed", -1], 2, "--seed", "negative")
    expect("train", ["--seed=-5"], 2, "--seed", "negative")
    expect("train", ["--epochs", 0], 2, "--epochs")
    expect("eval", ["--bogus"], 2)


def case_version():
    """--version on every program: exit 0 and one line "forge <version> (<commit>)"."""
    for program in PROGRAMS:
        if not os.path.exists(os.path.join(BIN, program)):
            fail(f"{program} is not built in {BIN}")
        text = expect(program, ["--version"], 0)
        if not re.fullmatch(r"forge \S+ \(\S+\)\n", text):
            fail(f"{program} --version printed {text!r}")
    # The playground's kernel choice is --kernel; --version N is no longer a kernel number.
    expect("attention_playground", ["--kernel", 9, "--check-only"], 1, "--kernel 9")


def case_resume_seed():
    """Resuming with a changed seed is refused naming it and both values; the folder unchanged."""
    root, data, run_dir = tiny_run("resume_seed", stop_after=1)
    before = snapshot(run_dir)
    text = expect("train", tiny_flags(data, run_dir) +
                  ["--resume", os.path.join(run_dir, "last.safetensors"), "--seed", 7], 2,
                  "--seed", "42", "7")
    if not re.search(r"--seed\D*42\D*7", text):
        fail(f"the refusal does not name --seed with 42 and 7:\n{text}")
    # Two options at once are both named.
    text = expect("train", tiny_flags(data, run_dir) +
                  ["--resume", os.path.join(run_dir, "last.safetensors"), "--lr", 0.1, "--hflip",
                   0], 2, "--lr", "--hflip")
    if snapshot(run_dir) != before:
        fail("a refused resume changed the run folder")
    # A split.csv edited behind the run's back is refused as well.
    with open(os.path.join(run_dir, "split.csv"), "a") as f:
        f.write("\n")
    expect("train", tiny_flags(data, run_dir) +
           ["--resume", os.path.join(run_dir, "last.safetensors")], 1, "split.csv has changed")


def case_resume_epochs():
    """A resume with more --epochs is accepted and recorded; split.csv is not rewritten."""
    root, data, run_dir = tiny_run("resume_epochs", stop_after=1)
    split_path = os.path.join(run_dir, "split.csv")
    split_before = open(split_path, "rb").read()
    os.utime(split_path, (1, 1))  # a rewrite of the same bytes shows in the time stamp
    flags = tiny_flags(data, run_dir)
    flags[flags.index("--epochs") + 1] = 3
    expect("train", flags + ["--resume", os.path.join(run_dir, "last.safetensors"), "-j", 1], 0)
    if open(split_path, "rb").read() != split_before or os.stat(split_path).st_mtime != 1:
        fail("resume rewrote split.csv")
    config = json.load(open(os.path.join(run_dir, "config.json")))
    if config["epochs"] != 3 or config["workers"] != 1:
        fail(f"config.json does not record the resume's --epochs 3 -j 1: {config}")
    header, _, _ = read_safetensors(os.path.join(run_dir, "last.safetensors"))
    recorded = json.loads(header["__metadata__"]["run_options"])
    if recorded["epochs"] != 3 or not recorded["split_digest"].startswith("fnv1a64:"):
        fail(f"the checkpoint does not record --epochs 3 and the split digest: {recorded}")
    rows = [json.loads(l) for l in open(os.path.join(run_dir, "metrics.jsonl")) if l.strip()]
    lines = [r for r in rows if r["type"] == "epoch"]
    if len(lines) != 3:
        fail(f"metrics.jsonl has {len(lines)} epochs, expected 3")
    # config.json lists every option of the table, augmentation included.
    for key in ["crop_scale_max", "crop_ratio_min", "crop_ratio_max", "blur_sigma_min", "fill"]:
        if key not in config["augment"]:
            fail(f"config.json lacks augment.{key}")


def case_nan_weight():
    """A checkpoint with a NaN weight is refused by eval, predict and --resume, naming it."""
    root, data, run_dir = tiny_run("nan_weight", stop_after=1)
    header, blob, length = read_safetensors(os.path.join(run_dir, "last.safetensors"))
    name = next(k for k, v in header.items()
                if k.startswith("model.") and isinstance(v, dict) and v["dtype"] == "F32")
    start = header[name]["data_offsets"][0]
    blob = blob[:start] + struct.pack("<f", math.nan) + blob[start + 4:]
    bad = os.path.join(root, "bad.safetensors")
    write_safetensors(bad, header, blob, length)
    tensor = name[len("model."):]
    expect("eval", ["--checkpoint", bad, "--data", data], 1, tensor, "non-finite")
    expect("predict", ["--checkpoint", bad, os.path.join(data, "red", "im0.png")], 1, tensor,
           "non-finite")
    before = snapshot(run_dir)
    expect("train", tiny_flags(data, run_dir) + ["--resume", bad], 1, tensor, "non-finite")
    if snapshot(run_dir) != before:
        fail("a refused resume changed the run folder")


def case_bad_metadata():
    """Malformed checkpoint metadata is a clear error (exit 1) in eval and predict, no abort."""
    root, data, run_dir = tiny_run("bad_metadata", stop_after=1)
    good = os.path.join(run_dir, "last.safetensors")
    image = os.path.join(data, "red", "im0.png")
    edits = {
        "image_size 0": ("image_size", "0", "image_size 0"),
        "missing class_names": ("class_names", None, "class_names"),
        "bad JSON": ("normalization", "{not json", "malformed"),
        "unknown model": ("model", "resnet", "resnet"),
    }
    for what, (key, value, needle) in edits.items():
        header, blob, length = read_safetensors(good)
        if value is None:
            del header["__metadata__"][key]
        else:
            header["__metadata__"][key] = value
        bad = os.path.join(root, "bad.safetensors")
        write_safetensors(bad, header, blob, length)
        expect("eval", ["--checkpoint", bad, "--data", data], 1, needle, "bad.safetensors")
        expect("predict", ["--checkpoint", bad, image], 1, needle, "bad.safetensors")


def case_predict_formats():
    """predict --format tsv|csv|json: a header, --topk, every class's probability, odd names."""
    import csv
    import io
    root, data, run_dir = tiny_run("predict_formats", stop_after=1)
    ckpt = os.path.join(run_dir, "last.safetensors")
    odd_dir = os.path.join(root, "odd")
    os.makedirs(odd_dir)
    odd = os.path.join(odd_dir, 'say "hi", bye\tnow.png')
    shutil.copy(os.path.join(data, "red", "im0.png"), odd)
    plain = os.path.join(data, "blue", "im1.png")

    text = expect("predict", ["--checkpoint", ckpt, plain], 0)
    if not re.fullmatch(re.escape(plain) + r"\t(red|blue)\t[01]\.\d{4}\n", text):
        fail(f"the default output changed: {text!r}")

    out = expect("predict", ["--checkpoint", ckpt, "--format", "csv", "--topk", 2, plain, odd], 0)
    rows = list(csv.reader(io.StringIO(out)))
    if rows[0] != ["file", "top1", "top1_probability", "top2", "top2_probability", "blue", "red"]:
        fail(f"csv header: {rows[0]}")
    if [r[0] for r in rows[1:]] != [plain, odd]:
        fail(f"csv file names did not survive: {[r[0] for r in rows[1:]]}")
    for r in rows[1:]:
        p = {"blue": float(r[5]), "red": float(r[6])}
        if abs(sum(p.values()) - 1) > 1e-4 or {r[1], r[3]} != {"blue", "red"}:
            fail(f"csv row: {r}")
        if float(r[2]) < float(r[4]) or abs(p[r[1]] - float(r[2])) > 1e-6:
            fail(f"csv top-k is not ordered or disagrees with the class columns: {r}")

    out = expect("predict", ["--checkpoint", ckpt, "--format", "tsv", odd], 0)
    lines = out.splitlines()
    if len(lines) != 2 or lines[0].split("\t") != ["file", "top1", "top1_probability", "blue",
                                                    "red"]:
        fail(f"tsv output: {out!r}")
    if lines[1].split("\t")[0] != odd.replace("\t", "\\t"):
        fail(f"tsv did not escape the tab in the file name: {lines[1]!r}")

    out = expect("predict", ["--checkpoint", ckpt, "--format", "json", "--topk", 2, odd, plain], 0)
    objs = [json.loads(line) for line in out.splitlines()]
    if [o["file"] for o in objs] != [odd, plain]:
        fail(f"json file names: {[o['file'] for o in objs]}")
    for o in objs:
        if set(o["probabilities"]) != {"red", "blue"} or len(o["top"]) != 2:
            fail(f"json object: {o}")
        if o["top"][0]["probability"] != o["probabilities"][o["top"][0]["class"]]:
            fail(f"json top disagrees with probabilities: {o}")
        if len(repr(o["top"][0]["probability"])) > 12:
            fail(f"json probability not written as a float's shortest decimal: {o}")
    expect("predict", ["--checkpoint", ckpt, "--topk", 3, plain], 2, "--topk", "2 classes")
    expect("predict", ["--checkpoint", ckpt, "--format", "xml", plain], 2, "--format")


def case_eval_json():
    """eval --json has scikit-learn's classification_report(output_dict=True) keys."""
    root, data, run_dir = tiny_run("eval_json", stop_after=1)
    rc, out, err = run("eval", "--checkpoint", os.path.join(run_dir, "last.safetensors"), "--data",
                       data, "--split", os.path.join(run_dir, "split.csv"), "--json")
    if rc != 0:
        fail(f"eval --json: exit {rc}\n{out}{err}")
    j = json.loads(out)  # stdout is the JSON alone (progress goes to stderr)
    if "evaluating" not in err or "decoding" not in err:
        fail(f"eval showed no decoding or evaluation progress on stderr: {err!r}")
    sklearn_keys = {"blue", "red", "accuracy", "macro avg", "weighted avg"}
    if set(j) != sklearn_keys | {"class_names", "confusion_matrix", "accuracy_interval_95", "loss",
                                 "checkpoint"}:
        fail(f"eval --json keys: {sorted(j)}")
    for key in ["blue", "red", "macro avg", "weighted avg"]:
        if set(j[key]) != {"precision", "recall", "f1-score", "support"}:
            fail(f"eval --json {key}: {j[key]}")
    total = sum(map(sum, j["confusion_matrix"]))
    if j["macro avg"]["support"] != total or j["blue"]["support"] + j["red"]["support"] != total:
        fail(f"supports disagree with the confusion matrix: {j}")
    right = j["confusion_matrix"][0][0] + j["confusion_matrix"][1][1]
    if abs(j["accuracy"] - right / total) > 1e-12:
        fail(f"accuracy {j['accuracy']} is not {right}/{total}")
    for method, (low, high) in j["accuracy_interval_95"].items():
        if not 0 <= low <= j["accuracy"] <= high <= 1:
            fail(f"accuracy {j['accuracy']} outside its {method} interval {low}-{high}")


def case_metrics_rows():
    """metrics.jsonl: step rows every 10 steps beside the epoch rows, clean numbers, and the step
    rows of finished epochs kept through a resume."""
    root = fresh("metrics_rows")
    data = make_images(os.path.join(root, "data"))
    run_dir = os.path.join(root, "run")
    flags = tiny_flags(data, run_dir) + ["-b", 1, "--lr", 5e-4, "--epochs", 3]
    expect("train", flags + ["--stop-after", 1], 0)
    first = [json.loads(l) for l in open(os.path.join(run_dir, "metrics.jsonl")) if l.strip()]
    expect("train", flags + ["--resume", os.path.join(run_dir, "last.safetensors")], 0)
    rows = [json.loads(l) for l in open(os.path.join(run_dir, "metrics.jsonl")) if l.strip()]
    epochs = [r for r in rows if r["type"] == "epoch"]
    steps = [r for r in rows if r["type"] == "step"]
    if [r["epoch"] for r in epochs] != [1, 2, 3]:
        fail(f"epoch rows: {epochs}")
    if not steps or [r["step"] for r in steps] != list(range(10, 10 * len(steps) + 1, 10)):
        fail(f"step rows are not every 10th step: {[r['step'] for r in steps]}")
    for r in steps:
        if set(r) != {"type", "step", "epoch", "loss", "lr", "images_per_second", "time"}:
            fail(f"step row keys: {r}")
        if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", r["time"]):
            fail(f"step row time: {r['time']}")
    order = [(r["type"], r["epoch"]) for r in rows]  # each epoch's step rows, then its row
    for (t0, e0), (t1, e1) in zip(order, order[1:]):
        if e1 < e0 or (t0 == "epoch" and e1 == e0):
            fail(f"rows out of order: {order}")
    first_steps = [r for r in first if r["type"] == "step"]
    if not first_steps or first_steps != [r for r in steps if r["epoch"] == 1]:
        fail("the resume changed the step rows of the finished epoch 1")
    # Values measured in float precision: at most 9 significant digits (a float's shortest
    # decimal), never the double expansion 0.0005000000237487257 of the float 0.0005.
    lines = open(os.path.join(run_dir, "metrics.jsonl")).read().splitlines()
    for line in lines:
        for key, number in re.findall(r'"(\w*(?:loss|lr|images_per_second|seconds))":([-\d.e+]+)',
                                      line):
            digits = number.split("e")[0].replace("-", "").replace(".", "").strip("0")
            if len(digits) > 9:
                fail(f"{key} written with float noise: {number} in {line}")
    if '"lr":0.0005,' not in "".join(lines):
        fail("the peak lr 5e-4 is not written as 0.0005")


def case_compare_runs():
    """compare: columns by class name, runs on other classes refused, image size, parameters
    and img/s shown, an unwritable --html an error."""
    root_a, data, run_a = tiny_run("compare_a", stop_after=None)
    root_b = fresh("compare_b")
    run_b = os.path.join(root_b, "run")
    shutil.copytree(run_a, run_b)
    report_b = json.load(open(os.path.join(run_b, "report.json")))
    report_b["class_names"] = list(reversed(report_b["class_names"]))  # another order
    report_b["red"] = {"precision": 0.125, "recall": 0.25, "f1-score": 0.375, "support": 4}
    json.dump(report_b, open(os.path.join(run_b, "report.json"), "w"))
    out = expect("compare", [run_a, run_b], 0, "image size", "parameters", "img/s")
    lines = [l for l in out.splitlines() if l.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    row_b = [c.strip() for c in lines[3].strip("|").split("|")]
    cols = dict(zip(header, row_b))
    if (cols["red precision"], cols["red recall"], cols["red F1"]) != ("0.1250", "0.2500",
                                                                      "0.3750"):
        fail(f"run b's red columns are not its red scores: {cols}")
    if cols["image size"] != "16" or not cols["parameters"].isdigit() or \
            float(cols["img/s"]) <= 0:
        fail(f"image size, parameters, img/s: {cols}")
    low, high = map(float, cols["95% interval (Wilson)"].split("-"))
    if not low <= float(cols["test accuracy"]) <= high:
        fail(f"test accuracy outside its interval: {cols}")
    report_b["class_names"] = ["blue", "green"]
    report_b["green"] = report_b.pop("red")
    json.dump(report_b, open(os.path.join(run_b, "report.json"), "w"))
    expect("compare", [run_a, run_b], 1, "classes", "blue, green", "blue, red")
    bad_html = os.path.join(root_b, "no such folder", "compare.html")
    expect("compare", [run_a, "--html", bad_html], 1, bad_html)
    good_html = os.path.join(root_b, "compare.html")
    expect("compare", [run_a, "--html", good_html], 0)
    if "<table>" not in open(good_html).read():
        fail("compare --html wrote no table")


if __name__ == "__main__":
    globals()["case_" + sys.argv[3]]()
    print("ok")
