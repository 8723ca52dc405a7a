"""Fashion-MNIST from the IDX .gz files, as float32 pixels in [0, 1] and int64 labels.

    python3 Benchmarks/fashion_mnist.py export FOLDER [--limit N] [--order-only]
    python3 Benchmarks/fashion_mnist.py subset FOLDER --limit N [--test-limit M]

writes the raw Float32 export that `myelin bench peers` reads (see `export`). --limit N keeps the first N training
and test images (a small export for quick runs); --order-only writes only the batch order and meta.json.
Without NumPy (a GPU machine with a bare Python), `export` still writes the pixels and labels when FOLDER already
holds the batches.f32 and meta.json of a full export made elsewhere (scripts/gpu-bundle ships them).
`subset` writes IDX .gz files of the first N training and M test images (scripts/gpu-bundle ships such a subset).
"""
import gzip
import os

try:
    import numpy as np
except ImportError:  # only the pure-Python export below works then
    np = None

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


def export(folder, batch=128, seed=0, limit=0, order_only=False):
    """Writes the data and one epoch's batch order as raw little-endian Float32 files plus meta.json,
    for `myelin bench peers --workload mlp --data folder`: the same pixels in the same order as the peers.
    `limit` > 0 keeps the first `limit` training and test images (and shuffles those); `order_only` writes only
    batches.f32 and meta.json."""
    import json
    os.makedirs(folder, exist_ok=True)
    if np is None:
        return _export_without_numpy(folder, limit)
    (x_train, y_train), (x_test, y_test) = load("train"), load("t10k")
    if limit > 0:
        x_train, y_train, x_test, y_test = x_train[:limit], y_train[:limit], x_test[:limit], y_test[:limit]
    batches = np.stack(epoch_batches(len(x_train), batch, seed))
    arrays = [("batches", batches)] if order_only else [("train-x", x_train), ("train-y", y_train),
                                                         ("test-x", x_test), ("test-y", y_test), ("batches", batches)]
    for name, array in arrays:
        array.astype("<f4").tofile(os.path.join(folder, f"{name}.f32"))
    with open(os.path.join(folder, "meta.json"), "w") as f:
        json.dump({"batch": batch, "batches": len(batches), "train": len(x_train), "test": len(x_test)}, f)


def _export_without_numpy(folder, limit):
    """The pixels and labels of `export`, in pure Python, next to the batches.f32 and meta.json already in `folder`
    (the batch order needs NumPy's generator). Each pixel value k becomes the float32 nearest k/255, as NumPy's
    float32 division gives."""
    import json
    import struct
    import sys
    from array import array
    from fractions import Fraction
    meta_path = os.path.join(folder, "meta.json")
    if not (os.path.exists(meta_path) and os.path.exists(os.path.join(folder, "batches.f32"))):
        sys.exit(f"fashion_mnist.py: no NumPy, and {folder} lacks the batches.f32 and meta.json of an export made "
                 "with NumPy (fashion_mnist.py export FOLDER --order-only)")
    with open(meta_path) as f:
        meta = json.load(f)
    if limit > 0 and limit != meta["train"]:
        sys.exit(f"fashion_mnist.py: without NumPy the export keeps the {meta['train']} images of {meta_path}")

    def f32(x):
        return struct.unpack("<f", struct.pack("<f", x))[0]

    def nearest(k):  # the correctly rounded float32 of k/255 (a double round trip could round twice)
        x = f32(k / 255)
        ulp = abs(f32(x * (1 + 2 ** -23)) - x) or 2 ** -149
        return min((f32(x - ulp), x, f32(x + ulp)), key=lambda c: abs(Fraction(c) - Fraction(k, 255)))

    table = [nearest(k) for k in range(256)]
    for split, prefix, count in [("train", "train", meta["train"]), ("t10k", "test", meta["test"])]:
        with gzip.open(os.path.join(DATA_DIR, f"{split}-images-idx3-ubyte.gz"), "rb") as f:
            pixels = f.read()[16:16 + count * 784]
        with gzip.open(os.path.join(DATA_DIR, f"{split}-labels-idx1-ubyte.gz"), "rb") as f:
            labels = f.read()[8:8 + count]
        for name, values in [(f"{prefix}-x", map(table.__getitem__, pixels)), (f"{prefix}-y", map(float, labels))]:
            out = array("f", values)
            if sys.byteorder != "little":
                out.byteswap()
            with open(os.path.join(folder, f"{name}.f32"), "wb") as f:
                out.tofile(f)


def subset(folder, limit, test_limit):
    """IDX .gz files in `folder` with the first `limit` training and `test_limit` test images and labels (their
    headers give the new counts): a smaller data set that `load` and `export` read as the whole one."""
    import struct
    os.makedirs(folder, exist_ok=True)
    for split, count in [("train", limit), ("t10k", test_limit)]:
        for kind, offset, size in [("images-idx3", 16, 784), ("labels-idx1", 8, 1)]:
            name = f"{split}-{kind}-ubyte.gz"
            with gzip.open(os.path.join(DATA_DIR, name), "rb") as f:
                raw = f.read()
            n = min(count, struct.unpack(">I", raw[4:8])[0]) if count > 0 else struct.unpack(">I", raw[4:8])[0]
            body = raw[:4] + struct.pack(">I", n) + raw[8:offset] + raw[offset:offset + n * size]
            with gzip.open(os.path.join(folder, name), "wb", compresslevel=9) as f:
                f.write(body)


if __name__ == "__main__":
    import argparse
    p = argparse.ArgumentParser(usage="fashion_mnist.py export FOLDER [--limit N] [--order-only] | "
                                      "subset FOLDER --limit N [--test-limit M]")
    p.add_argument("command", choices=["export", "subset"])
    p.add_argument("folder")
    p.add_argument("--limit", type=int, default=0, help="keep the first N training (and test) images (0: all)")
    p.add_argument("--test-limit", type=int, default=0, help="subset: keep the first M test images (0: all)")
    p.add_argument("--order-only", action="store_true", help="export: write only batches.f32 and meta.json")
    args = p.parse_args()
    if args.command == "subset":
        subset(args.folder, args.limit, args.test_limit)
    else:
        export(args.folder, limit=args.limit, order_only=args.order_only)
