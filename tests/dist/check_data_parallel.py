"""check_data_parallel.py: data-parallel training through the real programs, with a real mpirun on
loopback (docs/DISTRIBUTED.md). Each case is one CTest test:

  equal_vit   2 ranks with global batch 16 end 2 epochs of vit-micro (dropout 0) with the weights
              1 rank reaches with batch 16, within TOLERANCE; the last batch of each epoch is odd
              (15 images: shares of 8 and 7), so the shares' weights in the all-reduce count. The
              same with dropout 0.1 (each rank's rows of the global batch's mask). The default
              25 MiB makes one bucket; --bucket-mb 0.01 cuts the gradients into several, which
              the run must report, and still ends within TOLERANCE of 1 rank.
  equal_cnn   the same for cnn-micro with --sync-bn on both sides; and without --sync-bn the two
              differ by more than TOLERANCE (per-rank batch-norm statistics), which shows the check
              can tell them apart.
  writer      only rank 0 writes: the run folder holds what one run writes, metrics.jsonl one line
              per epoch, and the epoch lines are printed once.
  resume      1 rank resumed from a 2-rank run's epoch-1 checkpoint ends where an uninterrupted
              1-rank run does (within TOLERANCE), with one metrics line per epoch.
  kill        rank 1 killed (SIGKILL) mid-epoch: mpirun, and rank 0 with it, ends non-zero within 30
              seconds, and last.safetensors of the finished epoch is still there.

Usage: check_data_parallel.py TRAIN MPIEXEC CASE; MPIEXEC "none" (a build without MPI) skips
(exit 77, CTest's SKIP_RETURN_CODE). SGD, not AdamW: Adam's update hardly depends on the gradient's
scale, so a wrong share weight would go unseen.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from program_checks import fail, make_images  # noqa: E402

SKIP = 77
# The two sides differ only in the all-reduce's sum order (and the share each GEMM sums over):
# ~3e-8 measured on weights of magnitude up to 1 after 4 steps.
TOLERANCE = 1e-5
KILL_SECONDS = 30


def check(condition, message):
    if not condition:
        fail(message)


class Runs:
    def __init__(self, train, mpiexec, data):
        self.train, self.mpiexec, self.data = train, mpiexec, data
        self.env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
                        OMP_NUM_THREADS="1", OMPI_MCA_rmaps_base_oversubscribe="1")

    def args(self, model, output, *extra, epochs=2, batch=16, img_size=16):
        drop = [] if "--drop" in extra else ["--drop", "0"]
        return [self.train, "--model", model, "--data", self.data, "--img-size", str(img_size),
                "--epochs",
                str(epochs), "-b", str(batch), "--opt", "sgd", "--lr", "0.05", "--warmup-epochs",
                "0.5", "-j", "1", "--output", output] + drop + list(extra)

    def launcher(self, ranks):
        return [self.mpiexec, "--oversubscribe", "-np", str(ranks)] if ranks > 1 else []

    def run(self, ranks, model, output, *extra, epochs=2):
        r = subprocess.run(self.launcher(ranks) + self.args(model, output, *extra, epochs=epochs),
                           capture_output=True, text=True, env=self.env, timeout=300)
        if r.returncode != 0:
            fail("%d rank(s) of %s exited %d:\n%s\n%s" % (ranks, model, r.returncode, r.stdout[-3000:],
                                                         r.stderr[-3000:]))
        if ranks > 1:
            check("data parallel: %d ranks" % ranks in r.stdout,
                  "the run did not say it trained on %d ranks:\n%s" % (ranks, r.stdout[-2000:]))
        return r


def weights(path):
    from safetensors.numpy import load_file
    return {k: v for k, v in load_file(path).items() if k.startswith("model.")}


def max_difference(a_path, b_path):
    import numpy as np
    a, b = weights(a_path), weights(b_path)
    check(a.keys() == b.keys() and a, "the checkpoints hold different tensors")
    return max(float(np.max(np.abs(a[k] - b[k]))) for k in a)


def epoch_rows(folder):
    with open(os.path.join(folder, "metrics.jsonl")) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return [r for r in rows if r.get("type", "epoch") == "epoch"]


def expect_equal(runs, work, model, *extra, two_extra=()):
    """1 rank with `extra`, 2 ranks with `extra` and `two_extra`: the same weights. Returns the
    two folders and the 2-rank run's stdout."""
    tag = "".join(extra)
    one, two = os.path.join(work, "one" + tag), os.path.join(work, "two" + tag + "".join(two_extra))
    if not os.path.exists(one):
        runs.run(1, model, one, *extra)
    r = runs.run(2, model, two, *(extra + tuple(two_extra)))
    check("; 31 train /" in r.stdout, "not the 31 training images the shares of 8 and 7 need:\n" +
          r.stdout[:600])
    d = max_difference(os.path.join(one, "last.safetensors"), os.path.join(two, "last.safetensors"))
    print("%s %s: max |w1 - w2| = %.3g (tolerance %g)" % (model, " ".join(extra + tuple(two_extra)),
                                                         d, TOLERANCE))
    check(d <= TOLERANCE, "%s: 2 ranks end %.3g from 1 rank, above %g" % (model, d, TOLERANCE))
    return one, two, r.stdout


def bucket_count(stdout):
    """The bucket count in the run's all-reduce lines ("... a step in 9 buckets, ...")."""
    counts = set(re.findall(r"MB a step in (\d+) buckets?", stdout))
    check(len(counts) == 1, "no single bucket count in the all-reduce lines: %s\n%s" %
          (sorted(counts), stdout[-2000:]))
    return int(counts.pop())


def case_equal_vit(runs, work):
    _, _, default = expect_equal(runs, work, "vit-micro")
    check(bucket_count(default) == 1, "vit-micro's 0.09 MB of gradients in %d buckets of 25 MiB" %
          bucket_count(default))
    _, _, small = expect_equal(runs, work, "vit-micro", two_extra=("--bucket-mb", "0.01"))
    print("vit-micro: %d buckets of 0.01 MiB" % bucket_count(small))
    check(bucket_count(small) > 1, "--bucket-mb 0.01 left vit-micro's gradients in one bucket")
    # With dropout too: each rank draws its rows of the global batch's mask.
    expect_equal(runs, work, "vit-micro", "--drop", "0.1")


def case_equal_cnn(runs, work):
    expect_equal(runs, work, "cnn-micro", "--sync-bn")
    per_rank = os.path.join(work, "per-rank")
    runs.run(2, "cnn-micro", per_rank)
    d = max_difference(os.path.join(work, "one--sync-bn", "last.safetensors"),
                       os.path.join(per_rank, "last.safetensors"))
    print("cnn-micro, per-rank batch norm: max |w1 - w2| = %.3g" % d)
    check(d > TOLERANCE, "without --sync-bn 2 ranks still match 1 rank (%.3g): the check cannot "
          "tell per-rank statistics from global ones" % d)


def case_writer(runs, work):
    out = os.path.join(work, "run")
    r = runs.run(2, "vit-micro", out)
    check(sorted(os.listdir(work)) == ["data", "run"], "files beside the run folder: %s" %
          sorted(os.listdir(work)))
    expected = {"best.safetensors", "config.json", "last.safetensors", "metrics.jsonl",
                "report.html", "report.json", "report.txt", "split.csv", "train.lock"}
    names = set(os.listdir(out))
    check(names == expected, "the run folder holds %s, expected %s" % (sorted(names),
                                                                       sorted(expected)))
    rows = epoch_rows(out)
    check([r_["epoch"] for r_ in rows] == [1, 2], "metrics.jsonl epochs: %s" %
          [r_["epoch"] for r_ in rows])
    printed = [line for line in r.stdout.splitlines() if "train loss" in line]
    check(len(printed) == 2, "%d epoch lines printed (one per epoch from rank 0 only):\n%s" %
          (len(printed), "\n".join(printed)))


def case_resume(runs, work):
    one, two = os.path.join(work, "one"), os.path.join(work, "two")
    runs.run(1, "vit-micro", one)
    runs.run(2, "vit-micro", two, "--stop-after", "1")
    check([r["epoch"] for r in epoch_rows(two)] == [1], "the 2-rank run did not stop after epoch 1")
    r = runs.run(1, "vit-micro", two, "--resume", os.path.join(two, "last.safetensors"))
    check("resumed from" in r.stdout, "the 1-rank run did not resume:\n" + r.stdout[-2000:])
    check([r_["epoch"] for r_ in epoch_rows(two)] == [1, 2], "metrics.jsonl after the resume: %s" %
          [r_["epoch"] for r_ in epoch_rows(two)])
    d = max_difference(os.path.join(one, "last.safetensors"), os.path.join(two, "last.safetensors"))
    print("resumed on 1 rank from a 2-rank checkpoint: max |w - w_uninterrupted| = %.3g" % d)
    check(d <= TOLERANCE, "the resumed run ends %.3g from the uninterrupted one" % d)


def rank_pid(marker, rank):
    """The pid of the rank `rank` whose environment holds `marker` (this test's launch)."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/environ" % pid, "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        if marker.encode() in env and ("OMPI_COMM_WORLD_RANK=%d" % rank).encode() in env:
            return int(pid)
    return None


def case_kill(runs, work):
    out = os.path.join(work, "run")
    marker = "FORGE_DIST_TEST=%d" % os.getpid()
    env = dict(runs.env, FORGE_DIST_TEST=str(os.getpid()))
    # Batch 2: 42 steps an epoch, a progress line every 20: "epoch 2/... 20/42" is mid-epoch 2.
    # The ranks are found before that line, so that the kill follows it at once: at 16 px the
    # 22 steps left in the epoch took less time than the search of /proc on a quiet machine, and
    # epoch 2 had ended (and been logged) before the kill. At 32 px a step is several times
    # slower, for more margin.
    cmd = runs.launcher(2) + runs.args("vit-micro", out, epochs=100000, batch=2, img_size=32)
    job = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           env=env)
    seen = []
    victim = survivor = None
    try:
        for line in job.stdout:
            seen.append(line)
            if line.startswith("epoch 1/") and victim is None:
                victim, survivor = rank_pid(marker, 1), rank_pid(marker, 0)
            if line.startswith("epoch 2/") and "train loss" not in line:
                break
        else:
            fail("the run ended before epoch 2:\n" + "".join(seen[-30:]))
        check(victim and survivor, "ranks 0 and 1 not found in /proc")
        os.kill(victim, signal.SIGKILL)
        killed_at = time.monotonic()
        try:
            rest, _ = job.communicate(timeout=KILL_SECONDS)
        except subprocess.TimeoutExpired:
            fail("mpirun still running %d s after rank 1 was killed" % KILL_SECONDS)
        took = time.monotonic() - killed_at
    finally:
        if job.poll() is None:
            job.kill()
            job.wait()
    print("rank 1 killed mid-epoch 2: mpirun exited %d after %.1f s" % (job.returncode, took))
    check(job.returncode != 0, "mpirun exited 0 after a rank was killed")
    check(not os.path.exists("/proc/%d" % survivor) or
          open("/proc/%d/stat" % survivor).read().split()[2] == "Z",
          "rank 0 (pid %d) still runs after mpirun ended" % survivor)
    check("rank 1" in rest or "signal 9" in rest or "Killed" in rest,
          "no message names the dead rank:\n" + rest[-2000:])
    check(os.path.exists(os.path.join(out, "last.safetensors")),
          "last.safetensors of epoch 1 is gone")
    check([r["epoch"] for r in epoch_rows(out)] == [1], "metrics.jsonl: %s" %
          [r["epoch"] for r in epoch_rows(out)])


def main():
    if len(sys.argv) != 4:
        print(__doc__)
        return 2
    train, mpiexec, case = sys.argv[1:]
    if mpiexec == "none":
        print("SKIP: built without MPI (FORGE_MPI=OFF or Open MPI not found): no multi-rank runs")
        return SKIP
    with tempfile.TemporaryDirectory(prefix="forge-dist-") as work:
        data = os.path.join(work, "data")
        make_images(data, per_class=60 if case == "kill" else 24)
        # One image more in a class: 31 training images, batches of 16 and 15 (shares 8 and 7).
        if case != "kill":
            shutil.copy(os.path.join(data, "red", "im0.png"),
                        os.path.join(data, "red", "extra.png"))
        globals()["case_" + case](Runs(train, mpiexec, data), work)
    print("OK: " + case)
    return 0


if __name__ == "__main__":
    sys.exit(main())
