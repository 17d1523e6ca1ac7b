#!/usr/bin/env python3
"""check_run_folder.py: the real train and eval programs on run folders, as subprocesses.

  check_run_folder.py TRAIN EVAL CASE

CASE is one of:
  concurrent  a second train on a folder in use is refused at once, naming the folder and the pid
  refuse      a fresh run over a finished folder is refused and leaves it byte-identical; runs
              that fail before their first epoch leave their folder as they found it
  unique      without --output, runs go to runs/<model>-<seed>, then runs/<model>-<seed>-2
  kill        many kill -9s (at random moments, right after an epoch's summary line, right after
              last.safetensors is replaced) and resumes: every epoch once in metrics.jsonl, no
              temporary left, the same figures as an uninterrupted run
  fulldisk    a full disk (a small tmpfs; needs root, else skipped) stops the run, naming the file
              and the last good checkpoint, which still loads; a fresh run on it leaves nothing
  evalwarn    eval without --split warns when given the checkpoint's training images

Tiny data: two classes of noisy 20x20 PNGs (tests/program_checks.py), cnn-micro at 16 pixels.
"""
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from program_checks import fail, make_images, snapshot  # noqa: E402

SKIP = 77  # CTest's SKIP_RETURN_CODE for this test
TMP_NAME = re.compile(r"\.tmp(\.\d+)?$")  # AtomicFile's temporaries (engine/io/atomic_file.h)


def check(condition, message):
    if not condition:
        fail(message)


class Programs:
    def __init__(self, train, evaluate, data):
        self.train_bin, self.eval_bin, self.data = train, evaluate, data

    def train_args(self, *extra, epochs=2):
        return [self.train_bin, "--model", "cnn-micro", "--data", self.data, "--img-size", "16",
                "--epochs", str(epochs), "-b", "8", "--lr", "3e-3", "--warmup-epochs", "0.5",
                "-j", "1"] + list(extra)

    def train(self, *extra, epochs=2, cwd=None):
        return subprocess.run(self.train_args(*extra, epochs=epochs), cwd=cwd,
                              capture_output=True, text=True)


def temporaries(folder):
    return [n for n in os.listdir(folder) if TMP_NAME.search(n)]


def epochs_in(metrics):
    """The epoch rows of metrics.jsonl (step rows, "type": "step", sit between them)."""
    import json
    with open(metrics) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return [r for r in rows if r.get("type", "epoch") == "epoch"]


# ---- cases ----------------------------------------------------------------------------------


def case_concurrent(p, work):
    run = os.path.join(work, "run")
    first = subprocess.Popen(p.train_args("--output", run, epochs=100000), stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
    try:
        for line in first.stdout:  # epoch 2 ran, so epoch 1 is committed: the run holds its folder
            if line.startswith("epoch 2/") and "train loss" in line:
                break
        check(first.poll() is None, "the first run ended early")
        for extra in (["--output", run], ["--output", run, "--overwrite"],
                      ["--resume", os.path.join(run, "last.safetensors")]):
            second = p.train(*extra)
            print("second run", extra, "->", second.returncode, second.stderr.strip())
            check(second.returncode != 0, "a second run on a folder in use was not refused")
            check(run in second.stderr, "the refusal does not name the folder")
            check("process %d" % first.pid in second.stderr,
                  "the refusal does not name the holding process %d" % first.pid)
    finally:
        first.kill()
        first.wait()
    # The kernel dropped the lock with the process: the run can be resumed.
    again = p.train("--resume", os.path.join(run, "last.safetensors"), "--stop-after", "1",
                    epochs=100000)
    check(again.returncode == 0, "resuming after the holder died failed: " + again.stderr)


def case_refuse(p, work):
    run = os.path.join(work, "run")
    done = p.train("--output", run)
    check(done.returncode == 0, "the first run failed: " + done.stderr)
    before = snapshot(run)
    check("report.json" in before and "last.safetensors" in before, "the run is not finished")

    fresh = p.train("--output", run)
    print("fresh run over a finished folder ->", fresh.returncode, fresh.stderr.strip())
    check(fresh.returncode != 0, "a fresh run over a finished folder was not refused")
    check(run in fresh.stderr and "--resume" in fresh.stderr and "--overwrite" in fresh.stderr,
          "the refusal does not name the folder and the ways out")
    check(snapshot(run) == before, "the refused run changed the folder")

    # Runs that fail before their first epoch leave the folder as they found it.
    missing = os.path.join(work, "no_such_data")
    for extra, what in (
        (["--output", run, "--overwrite", "--data", missing], "--overwrite with bad data"),
        (["--output", run, "--resume", os.path.join(work, "nothing.safetensors")],
         "--resume of a missing checkpoint"),
        (["--output", run, "--resume", os.path.join(run, "last.safetensors"), "--data", missing],
         "--resume with bad data"),
    ):
        r = p.train(*extra)
        check(r.returncode != 0, what + " did not fail")
        check(snapshot(run) == before, what + " changed the finished folder")
    new = os.path.join(work, "made", "here")
    r = p.train("--output", new, "--data", missing)
    check(r.returncode != 0, "a run on missing data did not fail")
    check(not os.path.exists(os.path.join(work, "made")),
          "a run that failed before its first epoch left the folders it created")

    # --overwrite replaces the run, and leaves no report of the old model behind on the way.
    over = p.train("--output", run, "--overwrite", "--stop-after", "1", epochs=3)
    check(over.returncode == 0, "--overwrite failed: " + over.stderr)
    check(not os.path.exists(os.path.join(run, "report.json")),
          "--overwrite kept the old run's report")
    check([e["epoch"] for e in epochs_in(os.path.join(run, "metrics.jsonl"))] == [1],
          "--overwrite kept the old run's epochs")


def case_unique(p, work):
    made = []
    for expected in ("runs/cnn-micro-42", "runs/cnn-micro-42-2", "runs/cnn-micro-42-3"):
        r = p.train(cwd=work, epochs=1)
        check(r.returncode == 0, "a run without --output failed: " + r.stderr)
        check("run folder: %s\n" % expected in r.stdout,
              "expected the run in %s, it said: %s" % (expected, r.stdout.splitlines()[0]))
        check(os.path.exists(os.path.join(work, expected, "last.safetensors")),
              expected + " has no checkpoint")
        made.append(expected)
    check(sorted(os.listdir(os.path.join(work, "runs"))) == sorted(os.path.basename(m) for m in made),
          "unexpected folders in runs/")


def case_kill(p, work):
    epochs = 40  # long enough that about 40 kills land before the run is done
    straight = os.path.join(work, "straight")
    began = time.monotonic()
    r = p.train("--output", straight, epochs=epochs)
    check(r.returncode == 0, "the uninterrupted run failed: " + r.stderr)
    # Random kills land within the first twentieth of a whole run's time, so that on a fast or an
    # idle machine a resumed run does not finish before its kill (then fewer kills would land).
    random_span = min(1.0, (time.monotonic() - began) / 20)
    run = os.path.join(work, "run")
    last = os.path.join(run, "last.safetensors")
    rng = random.Random(2026)
    kills, finished, starts = 0, False, 0
    modes = ["random", "summary", "checkpoint"]
    while not finished:
        starts += 1
        check(starts < 200, "the run never finished")
        if os.path.exists(last):
            args = p.train_args("--resume", last, "--split", os.path.join(run, "split.csv"),
                                epochs=epochs)
        else:  # killed before its first checkpoint: start again, over what it left
            args = p.train_args("--output", run, "--overwrite", epochs=epochs)
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        if kills >= 40:  # enough: let it finish
            out, _ = proc.communicate()
            check(proc.returncode == 0, "the final resume failed:\n" + out)
            finished = True
            continue
        mode = modes[kills % 3]
        if mode == "random":
            time.sleep(rng.uniform(0.0, random_span))
        elif mode == "summary":  # right after an epoch's summary line is printed
            for line in proc.stdout:
                if line.startswith("epoch ") and "train loss" in line:
                    break
        else:  # right after last.safetensors is replaced (between it and metrics.jsonl)
            inode = os.stat(last).st_ino if os.path.exists(last) else None
            while proc.poll() is None:
                if os.path.exists(last) and os.stat(last).st_ino != inode:
                    break
                time.sleep(0.001)
        killed = proc.poll() is None
        if killed:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.communicate()
        check(killed or proc.returncode == 0, "a resume failed (exit %d)" % proc.returncode)
        finished = not killed
    print("%d kills, %d starts" % (kills, starts))
    check(kills >= 20, "only %d kills landed" % kills)
    got = epochs_in(os.path.join(run, "metrics.jsonl"))
    check([e["epoch"] for e in got] == list(range(1, epochs + 1)),
          "metrics.jsonl epochs after the kills: %s" % [e["epoch"] for e in got])
    want = epochs_in(os.path.join(straight, "metrics.jsonl"))
    for a, b in zip(want, got):
        for key in ("train_loss", "val_loss", "test_loss", "val_accuracy", "lr"):
            check(a[key] == b[key], "epoch %d %s: %r uninterrupted, %r after kills" %
                  (a["epoch"], key, a[key], b[key]))
    check(temporaries(run) == [], "temporaries left: %s" % temporaries(run))
    check(os.path.exists(os.path.join(run, "report.json")), "no report after the last resume")


def fill_disk(path):
    """Writes `path` until the file system is full (unbuffered: every write reaches it)."""
    with open(path, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass


def case_fulldisk(p, work):
    if os.geteuid() != 0:
        print("SKIPPED: the full-disk test mounts a small tmpfs, which needs root")
        return SKIP
    mnt = os.path.join(work, "mnt")
    os.makedirs(mnt)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", mnt]).returncode != 0:
        print("SKIPPED: cannot mount a tmpfs here (no CAP_SYS_ADMIN in this container?)")
        return SKIP
    try:
        run = os.path.join(mnt, "run")
        r = p.train("--output", run, "--stop-after", "1", epochs=3)
        check(r.returncode == 0, "the first epoch failed: " + r.stderr)
        good = snapshot(run)["last.safetensors"]

        # Fill the disk, then free two pages: small files fit, a checkpoint does not.
        filler = os.path.join(mnt, "filler")
        fill_disk(filler)
        with open(filler, "r+b") as f:
            f.truncate(os.path.getsize(filler) - 8192)

        r = p.train("--resume", os.path.join(run, "last.safetensors"), "--split",
                    os.path.join(run, "split.csv"), epochs=3)
        print("resume on a full disk ->", r.returncode, r.stderr.strip().splitlines()[-1])
        check(r.returncode != 0, "train exited 0 on a full disk")
        check("No space left on device" in r.stderr, "the error does not say the disk is full")
        check(re.search(re.escape(run) + r"/\S+", r.stderr) is not None,
              "the error does not name the file")
        check("last good checkpoint is %s/last.safetensors (epoch 1)" % run in r.stderr,
              "the error does not name the last good checkpoint")
        check(temporaries(run) == [], "temporaries left: %s" % temporaries(run))
        for name, data in snapshot(run).items():
            check(len(data) > 0 or name == "train.lock", name + " is empty")
        os.remove(filler)
        check(snapshot(run)["last.safetensors"] == good, "last.safetensors changed")
        e = subprocess.run([p.eval_bin, "--checkpoint", os.path.join(run, "last.safetensors"),
                            "--data", p.data, "--split", os.path.join(run, "split.csv")],
                           capture_output=True, text=True)
        check(e.returncode == 0, "last.safetensors does not load after the full disk: " + e.stderr)

        # A fresh run on a disk with no room at all: an error naming split.csv, nothing left.
        fill_disk(filler)
        fresh = os.path.join(mnt, "fresh")
        r = p.train("--output", fresh, epochs=1)
        print("fresh run on a full disk ->", r.returncode, r.stderr.strip().splitlines()[-1])
        check(r.returncode != 0, "a fresh run on a full disk exited 0")
        check(os.path.join(fresh, "split.csv") in r.stderr, "the error does not name split.csv")
        check("no checkpoint was written" in r.stderr, "the error does not say no checkpoint exists")
        check(not os.path.exists(fresh), "the failed fresh run left its folder")
    finally:
        subprocess.run(["umount", mnt])
    return 0


def case_evalwarn(p, work):
    run = os.path.join(work, "run")
    r = p.train("--output", run, epochs=1)
    check(r.returncode == 0, "the run failed: " + r.stderr)
    ckpt = os.path.join(run, "last.safetensors")
    whole = subprocess.run([p.eval_bin, "--checkpoint", ckpt, "--data", p.data],
                           capture_output=True, text=True)
    check(whole.returncode == 0, "eval failed: " + whole.stderr)
    check("warning: 14 of the 24 images" in whole.stderr and "training images" in whole.stderr,
          "eval on the training folder did not warn: " + whole.stderr)
    test_only = subprocess.run([p.eval_bin, "--checkpoint", ckpt, "--data", p.data, "--split",
                                os.path.join(run, "split.csv")], capture_output=True, text=True)
    check(test_only.returncode == 0, "eval --split failed: " + test_only.stderr)
    check("warning" not in test_only.stderr, "eval --split warned: " + test_only.stderr)


def main():
    if len(sys.argv) != 4:
        print(__doc__)
        return 2
    train, evaluate, case = sys.argv[1:]
    with tempfile.TemporaryDirectory(prefix="forge-run-folder-") as work:
        data = os.path.join(work, "data")
        make_images(data)
        programs = Programs(train, evaluate, data)
        rc = globals()["case_" + case](programs, work) or 0
    if rc == 0:
        print("OK: " + case)
    return rc


if __name__ == "__main__":
    sys.exit(main())
