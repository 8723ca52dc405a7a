"""The Myelin side of every workload, from the release-built CLI's --json output."""
import json
import os

from runner import ROOT, BenchError, run_json, run_text

MYELIN = os.path.join(ROOT, "CLI", ".build", "release", "myelin")


def gemm(sizes, runs, clblast=True):
    """{n: row} from `myelin bench gemm --json` (Myelin CPU, Myelin OpenCL, OpenBLAS direct, CLBlast GFLOP/s)."""
    rows = run_json([MYELIN, "bench", "gemm", "--json", "--runs", str(runs),
                     "--sizes", ",".join(map(str, sizes)), "--shapes", ""] + ([] if clblast else ["--no-clblast"]))
    return {row["n"]: row for row in rows if row["m"] == row["n"] == row["k"]}


def mlp(device, data, capture=True):
    """Training and test-set inference samples/s of the Fashion-MNIST MLP on `device` (cpu or opencl), on the
    data and batch order that fashion_mnist.export wrote to the folder `data`; with `capture`, the training step is
    recorded once and replayed (what `fit` does by default), else every step runs eagerly."""
    return run_json([MYELIN, "bench", "peers", "--workload", "mlp", "--data", data, "--device", device]
                    + (["--capture"] if capture else []))[-1]


def fit_epoch(device):
    """Training samples/s of one epoch through `Sequential.fit`, from `myelin bench train --json` (a cross-check
    of `mlp`: the trainer's own data pipeline instead of the peers' batch order)."""
    proc = run_text([MYELIN, "bench", "train", "--json", "--devices", device, "--xor-steps", "1", "--xor-steps-opencl", "1"])
    rows = [r for r in json.loads(proc)["results"] if r["benchmark"] == "fashion-mnist-mlp-epoch"]
    return {"train_samples_per_s": rows[0]["samples_per_second"], "test_accuracy": None}


def xor(device="cpu", capture=True):
    """Steps/s of the XOR lab on `device`, captured (recorded once, replayed) or eager; the OpenCL device runs 2000
    steps (its steps are far slower than the CPU's)."""
    steps = ["--steps", "2000"] if device != "cpu" else []
    row = run_json([MYELIN, "bench", "peers", "--workload", "xor", "--device", device] + steps
                   + (["--capture"] if capture else []))[-1]
    if "steps_per_s" not in row:
        raise BenchError(f"myelin bench peers --workload xor printed no steps_per_s: {row}")
    return row["steps_per_s"]


def train_command(device):
    """The whole one-epoch trainer, as a user would start it: all 60000 training images (no validation split,
    like the PyTorch script), then the test set."""
    return [MYELIN, "train", "fashion-mnist", "--epochs", "1", "--validation", "0", "--quiet", "--device", device]
