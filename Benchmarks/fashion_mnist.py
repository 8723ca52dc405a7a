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
