#!/usr/bin/env python3
"""Interoperability of forge's safetensors files with the reference Python implementation.

Usage: read_safetensors.py <safetensors_interop binary> <scratch directory>

1. The C++ program writes a file; `safetensors.numpy.load_file` must read exactly EXPECTED
   (compared bit for bit, so NaN payloads and -0.0 count) and `safe_open` the same metadata.
2. Python writes EXPECTED with `safetensors.numpy.save_file`; the C++ program must read it back
   exactly (`safetensors_interop check` exits non-zero otherwise).
A missing python package is an error, not a skip: the test exists to prove the files are
readable outside this project.
"""
import os
import subprocess
import sys

try:
    import numpy as np
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file
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
}
METADATA = {"preset": "vit_tiny", "classes": '["anime","selfie"]'}


def same(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and \
        np.array_equal(a.view(np.uint32), b.view(np.uint32))


def main():
    binary, scratch = sys.argv[1], sys.argv[2]
    os.makedirs(scratch, exist_ok=True)
    failures = []

    cpp_file = os.path.join(scratch, "from_cpp.safetensors")
    subprocess.run([binary, "write", cpp_file], check=True)
    loaded = load_file(cpp_file)
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
    if subprocess.run([binary, "check", py_file]).returncode != 0:
        failures.append("the C++ reader did not read the Python-written file exactly")

    for failure in failures:
        print("FAIL:", failure, file=sys.stderr)
    if failures:
        sys.exit(1)
    print("safetensors interop: C++ -> Python and Python -> C++ bit-exact")


if __name__ == "__main__":
    main()
