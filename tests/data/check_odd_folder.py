#!/usr/bin/env python3
"""train and predict on a data folder as people have them: a FIFO named like an image, a symlink
loop and a link to a device beside real images. Both programs must finish (a FIFO opened for
reading blocks for good; one symlink loop used to abort the run), skip each odd entry with a
warning naming it, and use every real image.

Usage: check_odd_folder.py TRAIN PREDICT WORKDIR
"""
import os
import shutil
import subprocess
import sys

LIMIT_S = 240  # far above what the tiny run takes; a hang is what it catches


def fail(message):
    print("check_odd_folder: " + message, file=sys.stderr)
    sys.exit(1)


def ppm(path, colour, k):
    """A 16x16 binary PPM (stb_image reads PNM): the class colour with a per-image stripe."""
    pixels = bytearray()
    for y in range(16):
        for x in range(16):
            pixels += bytes(colour) if (x + k) % 5 else bytes([255, 255, 255])
    with open(path, "wb") as f:
        f.write(b"P6\n16 16\n255\n" + pixels)


def run(what, args):
    try:
        p = subprocess.run(args, capture_output=True, text=True, timeout=LIMIT_S)
    except subprocess.TimeoutExpired:
        fail(f"{what} did not finish within {LIMIT_S} s (blocked on the FIFO?): {' '.join(args)}")
    if p.returncode != 0:
        fail(f"{what} exited {p.returncode}:\n{p.stderr}")
    return p


def check_warned(what, stderr, entries):
    for name, reason in entries:
        if not any(name in line and "skipping" in line and reason in line
                   for line in stderr.splitlines()):
            fail(f"{what} did not warn about {name} ({reason}):\n{stderr}")


def main():
    if len(sys.argv) != 4:
        fail(__doc__)
    train, predict, work = sys.argv[1:]
    shutil.rmtree(work, ignore_errors=True)
    data = os.path.join(work, "data")
    for cls, colour in (("a", (200, 30, 30)), ("b", (30, 30, 200))):
        os.makedirs(os.path.join(data, cls))
        for k in range(6):
            ppm(os.path.join(data, cls, f"{cls}{k}.ppm"), colour, k)
    os.mkfifo(os.path.join(data, "a", "pipe.jpg"))
    os.symlink("loop.jpg", os.path.join(data, "b", "loop.jpg"))
    os.symlink("/dev/zero", os.path.join(data, "b", "zero.jpg"))
    odd = [("a/pipe.jpg", "FIFO"), ("b/loop.jpg", "symbolic links"), ("b/zero.jpg", "device")]

    run_dir = os.path.join(work, "run")
    t = run("train", [train, "--model", "cnn-micro", "--data", data, "--epochs", "1",
                      "--img-size", "16", "-b", "4", "-j", "1", "--output", run_dir])
    check_warned("train", t.stderr, odd)
    checkpoint = os.path.join(run_dir, "last.safetensors")
    if not os.path.isfile(checkpoint):
        fail(f"train wrote no {checkpoint}")

    # The folder, and the FIFO named directly: predict must refuse to open it, not block on it.
    p = run("predict", [predict, "--checkpoint", checkpoint, data, os.path.join(data, "a", "pipe.jpg")])
    check_warned("predict", p.stderr, odd)
    if "pipe.jpg: cannot open: a FIFO" not in p.stderr:
        fail(f"predict did not refuse the FIFO named on its command line:\n{p.stderr}")
    lines = p.stdout.splitlines()
    if len(lines) != 12 or any(len(line.split("\t")) != 3 for line in lines):
        fail(f"predict printed {len(lines)} lines, expected one per real image (12):\n{p.stdout}")
    print("check_odd_folder: train and predict finished, skipping and naming the 3 odd entries")


if __name__ == "__main__":
    main()
