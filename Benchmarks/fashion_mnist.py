"""Fashion-MNIST from the IDX .gz files, as float32 pixels in [0, 1] and int64 labels."""
import gzip
import os

import numpy as np

DATA_DIR = os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")


def _idx(name, offset):
    with gzip.open(os.path.join(DATA_DIR, name), "rb") as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=offset)


def load(split):
    """(images [N, 784] float32, labels [N] int64) for split 'train' or 't10k'."""
    images = _idx(f"{split}-images-idx3-ubyte.gz", 16).reshape(-1, 784).astype(np.float32) / 255.0
    labels = _idx(f"{split}-labels-idx1-ubyte.gz", 8).astype(np.int64)
    return images, labels


def epoch_batches(n, batch, seed):
    """Index arrays of one shuffled epoch, full batches only (every peer sees the same shapes)."""
    order = np.random.default_rng(seed).permutation(n)
    return [order[i:i + batch] for i in range(0, n - batch + 1, batch)]


def export(folder, batch=128, seed=0):
    """Writes the data and one epoch's batch order as raw little-endian Float32 files plus meta.json,
    for `myelin bench peers --workload mlp --data folder`: the same pixels in the same order as the peers."""
    import json
    os.makedirs(folder, exist_ok=True)
    (x_train, y_train), (x_test, y_test) = load("train"), load("t10k")
    batches = np.stack(epoch_batches(len(x_train), batch, seed))
    for name, array in [("train-x", x_train), ("train-y", y_train), ("test-x", x_test), ("test-y", y_test),
                        ("batches", batches)]:
        array.astype("<f4").tofile(os.path.join(folder, f"{name}.f32"))
    with open(os.path.join(folder, "meta.json"), "w") as f:
        json.dump({"batch": batch, "batches": len(batches), "train": len(x_train), "test": len(x_test)}, f)


if __name__ == "__main__":
    import sys
    if len(sys.argv) != 3 or sys.argv[1] != "export":
        sys.exit("usage: fashion_mnist.py export FOLDER")
    export(sys.argv[2])
