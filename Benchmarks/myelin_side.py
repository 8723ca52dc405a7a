"""The Myelin side of every workload, from the release-built CLI's --json output."""
import os

from runner import ROOT, BenchError, run_json

MYELIN = os.path.join(ROOT, ".build", "release", "myelin")


def gemm(sizes, runs):
    """{n: row} from `myelin bench gemm --json` (Myelin CPU, Myelin OpenCL, OpenBLAS direct, CLBlast GFLOP/s)."""
    rows = run_json([MYELIN, "bench", "gemm", "--json", "--runs", str(runs),
                     "--sizes", ",".join(map(str, sizes)), "--shapes="])
    return {row["n"]: row for row in rows if row["m"] == row["n"] == row["k"]}


def mlp(device):
    """Training and test-set inference samples/s of the Fashion-MNIST MLP on `device` (cpu or opencl)."""
    rows = run_json([MYELIN, "bench", "train", "--json", "--device", device, "--workload", "mlp"])
    return rows[-1]


def xor():
    """Steps/s of the XOR lab on the CPU device."""
    rows = run_json([MYELIN, "bench", "train", "--json", "--device", "cpu", "--workload", "xor"])
    if "steps_per_s" not in rows[-1]:
        raise BenchError(f"myelin bench train --workload xor printed no steps_per_s: {rows[-1]}")
    return rows[-1]["steps_per_s"]


def train_command(device):
    """The whole one-epoch trainer, as a user would start it."""
    return [MYELIN, "train", "fashion-mnist", "--epochs", "1", "--device", device]
