#!/usr/bin/env python3
"""Runs a model exported by `myelin export-onnx` under ONNX Runtime on the Fashion-MNIST test images and prints its
accuracy, to compare with the "Test accuracy" that `myelin train fashion-mnist` printed for the same model.

    onnx_fashion_accuracy.py MODEL.onnx [DATA_DIR]     (DATA_DIR default /usr/share/datasets/fashion-mnist)
"""
import gzip
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def main():
    model_path = sys.argv[1]
    folder = sys.argv[2] if len(sys.argv) > 2 else "/usr/share/datasets/fashion-mnist"
    onnx.checker.check_model(onnx.load(model_path), full_check=True)
    images = read_idx(os.path.join(folder, "t10k-images-idx3-ubyte.gz")).reshape(-1, 784).astype(np.float32) / 255
    labels = read_idx(os.path.join(folder, "t10k-labels-idx1-ubyte.gz"))
    session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    logits = np.concatenate([session.run(None, {"input": images[i:i + 1000]})[0] for i in range(0, len(images), 1000)])
    accuracy = float((logits.argmax(axis=1) == labels).mean())
    print(f"onnx.checker: ok; onnxruntime {ort.__version__}: test accuracy {100 * accuracy:.2f}% ({len(labels)} images)")


if __name__ == "__main__":
    main()
