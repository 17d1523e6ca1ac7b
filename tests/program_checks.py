"""program_checks.py: what the subprocess tests of the real programs share (tests/tools/check_cli.py,
tests/train/check_run_folder.py): failing with a message, tiny PNG data sets written with zlib only,
and a byte snapshot of a folder to prove a refused command left it untouched."""
import os
import random
import struct
import subprocess
import sys
import zlib


def fail(message):
    print("FAIL: " + message)
    sys.exit(1)


def write_png(path, w, h, rgb):
    """An 8-bit RGB PNG of w x h pixels from a flat list of w * h * 3 values."""
    raw = b"".join(b"\0" + bytes(rgb[y * w * 3:(y + 1) * w * 3]) for y in range(h))

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data +
                struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" +
                chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) +
                chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def make_images(root, per_class=12):
    """Two classes a micro model tells apart: reddish and bluish noisy 20x20 squares. Returns root."""
    r = random.Random(11)
    for c, name in enumerate(["red", "blue"]):
        os.makedirs(os.path.join(root, name), exist_ok=True)
        for i in range(per_class):
            px = [(150 if p % 3 == (2 if c else 0) else 40) + r.randrange(80)
                  for p in range(20 * 20 * 3)]
            write_png(os.path.join(root, name, "im%d.png" % i), 20, 20, px)
    return root


def snapshot(folder):
    """Every file under `folder` with its bytes (None when the folder does not exist)."""
    if not os.path.exists(folder):
        return None
    files = {}
    for dirpath, _, names in os.walk(folder):
        for n in names:
            p = os.path.join(dirpath, n)
            with open(p, "rb") as f:
                files[os.path.relpath(p, folder)] = f.read()
    return files


def run_program(bin_dir, program, *args):
    """Runs bin_dir/program with args (made strings); returns (exit code, stdout, stderr)."""
    p = subprocess.run([os.path.join(bin_dir, program), *map(str, args)], capture_output=True,
                       text=True, timeout=600)
    return p.returncode, p.stdout, p.stderr


def expect_program(bin_dir, program, args, code, *needles):
    """Runs a program, fails unless it exits `code` with every needle in its output and no
    exception escaped; returns stdout + stderr."""
    rc, out, err = run_program(bin_dir, program, *args)
    text = out + err
    if rc != code:
        fail(f"{program} {' '.join(map(str, args))}: exit {rc}, expected {code}\n{text}")
    for n in needles:
        if n not in text:
            fail(f"{program} {' '.join(map(str, args))}: output lacks {n!r}\n{text}")
    if "terminate called" in text or "Aborted" in text:
        fail(f"{program}: an exception escaped\n{text}")
    return text
