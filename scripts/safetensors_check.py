#!/usr/bin/env python3
"""Checks Myelin's safetensors files against Python's `safetensors` library (with numpy).

  safetensors_check.py read FILE EXPECTED.json   load FILE with safetensors.numpy and compare every tensor and the
                                                 metadata with EXPECTED.json ({"tensors": {name: {"shape": [...],
                                                 "values": [...]}}, "metadata": {...}}); prints "ok"
  safetensors_check.py write FILE                write the reference tensors (see reference()) with safetensors
  safetensors_check.py write-same FILE EXPECTED.json
                                                 write the tensors of EXPECTED.json with safetensors, so the caller
                                                 can compare bytes with its own file
Exit status 0 on success, 1 with a message on a mismatch.
"""
import json
import sys

import numpy as np
from safetensors.numpy import load_file, save_file


def reference():
    return {
        "0.weight": (np.arange(6, dtype=np.float32).reshape(2, 3) - 2.5) / 4,
        "0.bias": np.array([1.5, -2.25, 3.0], dtype=np.float32),
        "2.running_mean": np.linspace(-1, 1, 7, dtype=np.float32),
        "scalar": np.array(0.125, dtype=np.float32),
    }


def main():
    mode, path = sys.argv[1], sys.argv[2]
    if mode == "write":
        save_file(reference(), path, metadata={"written_by": "python safetensors"})
        return 0
    expected = json.load(open(sys.argv[3]))
    if mode == "write-same":
        tensors = {k: np.array(v["values"], dtype=np.float32).reshape(v["shape"]) for k, v in expected["tensors"].items()}
        save_file(tensors, path, metadata=expected.get("metadata") or None)
        return 0
    loaded = load_file(path)
    if sorted(loaded) != sorted(expected["tensors"]):
        print(f"names differ: {sorted(loaded)} vs {sorted(expected['tensors'])}")
        return 1
    for name, want in expected["tensors"].items():
        got = loaded[name]
        if got.dtype != np.float32 or list(got.shape) != want["shape"]:
            print(f"{name}: got {got.dtype} {list(got.shape)}, expected float32 {want['shape']}")
            return 1
        if not np.array_equal(got.reshape(-1), np.array(want["values"], dtype=np.float32)):
            print(f"{name}: values differ")
            return 1
    from safetensors import safe_open
    with safe_open(path, framework="numpy") as f:
        meta = f.metadata() or {}
    if meta != expected.get("metadata", {}):
        print(f"metadata differs: {meta} vs {expected.get('metadata')}")
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
