#!/usr/bin/env python3
"""Interoperability of forge's safetensors files with the reference Python implementation.

Usage: read_safetensors.py <safetensors_interop binary> <scratch directory>

1. The C++ program writes a file; `safe_open(framework="np")` must read exactly EXPECTED
   (compared bit for bit, so NaN payloads and -0.0 count, with float16 and int64 dtypes for
   "half" and "count") and `safe_open` the same metadata. numpy has no bfloat16, so "brain" is
   checked from the file's own bytes: dtype BF16, the upper halves of the float32 values.
2. Python writes EXPECTED with `safetensors.numpy.save_file` ("brain" as raw BF16 bytes spliced
   into the file, with its header entry); the C++ program must read it back exactly
   (`safetensors_interop check` exits non-zero otherwise).
A missing python package is an error, not a skip: the test exists to prove the files are
readable outside this project.
"""
import json
import os
import struct
import subprocess
import sys

try:
    import numpy as np
    from safetensors import safe_open
    from safetensors.numpy import save_file
except ImportError as e:
    sys.exit(f"read_safetensors.py: {e}; run scripts/setup.sh to install safetensors and numpy")

# Must match reference_tensors() in safetensors_interop.cpp.
SPECIAL_BITS = [0x00000000, 0x80000000, 0x7FC00001, 0xFFC12345, 0x7F800000, 0xFF800000,
                0x00000001, 0x807FFFFF, 0x7F7FFFFF]
EXPECTED = {
    "special": np.array(SPECIAL_BITS, dtype=np.uint32).view(np.float32),
    "scalar": np.array(3.5, dtype=np.float32),
    "ramp": (0.25 * np.arange(12, dtype=np.float32) - 1.5).astype(np.float32).reshape(2, 3, 1, 2),
    "empty": np.zeros((0, 3), dtype=np.float32),
    "half": np.array([[1, -0.0, 65504], [2 ** -24, -np.inf, 0.333251953125]], dtype=np.float16),
    "count": np.array([0, -7, 16777216], dtype=np.int64),
}
# Stored as BF16 (numpy cannot hold it): these float32 values, each exact in bfloat16.
BRAIN = np.array([1, -5, 2.0 ** 100, 3.140625], dtype=np.float32)
METADATA = {"preset": "vit_tiny", "classes": '["anime","selfie"]'}


def same(a, b):
    bits = {4: np.uint32, 2: np.uint16, 8: np.uint64}[a.itemsize]
    return a.dtype == b.dtype and a.shape == b.shape and \
        np.array_equal(a.view(bits), b.view(bits))


def header_of(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    with open(path, "rb") as f:
        return header, 8 + n, f.read()


def check_brain(path, failures):
    """The BF16 tensor by hand: its header entry and bytes."""
    header, start, blob = header_of(path)
    entry = header.get("brain")
    if not entry or entry["dtype"] != "BF16" or entry["shape"] != [4]:
        failures.append(f"C++ file: brain is described by {entry}, expected BF16 [4]")
        return
    b, e = entry["data_offsets"]
    got = np.frombuffer(blob[start + b:start + e], dtype="<u2")
    want = (BRAIN.view(np.uint32) >> 16).astype(np.uint16)
    if not np.array_equal(got, want):
        failures.append(f"C++ file: brain bytes {got}, expected {want}")


def with_brain(path):
    """Appends "brain" (BF16) to a file Python wrote: a header entry and its bytes at the end."""
    header, start, blob = header_of(path)
    data = blob[start:]
    bf16 = (BRAIN.view(np.uint32) >> 16).astype("<u2").tobytes()
    header["brain"] = {"dtype": "BF16", "shape": [4], "data_offsets": [len(data), len(data) + 8]}
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data + bf16)


def main():
    binary, scratch = sys.argv[1], sys.argv[2]
    os.makedirs(scratch, exist_ok=True)
    failures = []

    cpp_file = os.path.join(scratch, "from_cpp.safetensors")
    subprocess.run([binary, "write", cpp_file], check=True)
    with safe_open(cpp_file, framework="np") as f:  # numpy has no bfloat16: "brain" by hand
        loaded = {k: f.get_tensor(k) for k in f.keys() if k != "brain"}
    check_brain(cpp_file, failures)
    if sorted(loaded) != sorted(EXPECTED):
        failures.append(f"C++ file holds {sorted(loaded)}, expected {sorted(EXPECTED)}")
    for name, want in EXPECTED.items():
        if name in loaded and not same(loaded[name], want):
            failures.append(f"C++ file: {name} = {loaded[name]!r} ({loaded[name].shape}), "
                            f"expected {want!r} ({want.shape})")
    with safe_open(cpp_file, framework="np") as f:
        if f.metadata() != METADATA:
            failures.append(f"C++ file metadata {f.metadata()}, expected {METADATA}")

    py_file = os.path.join(scratch, "from_python.safetensors")
    save_file(EXPECTED, py_file, metadata=METADATA)
    with_brain(py_file)
    if subprocess.run([binary, "check", py_file]).returncode != 0:
        failures.append("the C++ reader did not read the Python-written file exactly")

    for failure in failures:
        print("FAIL:", failure, file=sys.stderr)
    if failures:
        sys.exit(1)
    print("safetensors interop: C++ -> Python and Python -> C++ bit-exact")


if __name__ == "__main__":
    main()
