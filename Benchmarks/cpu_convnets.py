"""Myelin's CPU convolution paths against PyTorch on the convnets, in one run (issue 23): training samples/s and
whole-process peak RSS of `cnn`, `resnet` (ResNet-8) and `resnet14` (ResNet-14, the trainer's default) for Myelin
CPU with MYELIN_CPU_CONV=im2col (the chunked im2col + GEMM), Myelin CPU on its default path (oneDNN) with the
training images as Float32 (--float-images) and as bytes (the default), and PyTorch CPU (also with OMP_WAIT_POLICY=passive), alternated over --rounds rounds so a
busy machine slows each alike. The batches are bench-peers's (--warmup untimed steps, then --batches timed ones).

    .venv-bench/bin/python Benchmarks/cpu_convnets.py --batches 40 --rounds 2
    .venv-bench/bin/python Benchmarks/cpu_convnets.py --models resnet --before /tmp/old/myelin \
        --runtimes "Myelin before,Myelin CPU oneDNN"

Needs the release `myelin` (swift build -c release --package-path CLI) and torch; 2 threads for every runtime.
"""
import argparse
import json
import os
import shutil
import sys
import tempfile

import fashion_mnist
import myelin_side
from runner import BenchError, run_json_measured

BENCH = os.path.dirname(os.path.abspath(__file__))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--models", default="cnn,resnet,resnet14")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--batches", type=int, default=40)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--runtimes", default="", help="comma-separated names of the rows to run (default: all)")
    p.add_argument("--before", default="", help="another release `myelin` (an older build) to run as the row "
                   "'Myelin before' (its default path and images), for before/after figures in one alternating run")
    args = p.parse_args()
    for k in ("MYELIN_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "BENCH_THREADS"):
        os.environ.setdefault(k, "2")
    steps = ["--warmup", str(args.warmup), "--batches", str(args.batches)]
    data = tempfile.mkdtemp(prefix="fashion-mnist-")
    try:
        fashion_mnist.export(data)
        for model in args.models.split(","):
            myelin = [myelin_side.MYELIN, "bench", "peers", "--workload", model, "--data", data, "--device", "cpu",
                      "--capture"] + steps
            runs = {"Myelin CPU im2col": lambda: run_json_measured(myelin, env={"MYELIN_CPU_CONV": "im2col"}),
                    # The images as the export's Float32 tensor (what the bench did before), then as bytes (the
                    # same values; what `myelin train` does): the difference is 135 MiB of the training set.
                    "Myelin CPU oneDNN (float images)": lambda: run_json_measured(myelin + ["--float-images"],
                                                                                 env={"MYELIN_CPU_CONV": "onednn"}),
                    "Myelin CPU oneDNN": lambda: run_json_measured(myelin, env={"MYELIN_CPU_CONV": "onednn"}),
                    "PyTorch CPU": lambda: run_json_measured([sys.executable, f"{BENCH}/torch_convnets.py", "--model", model]
                                                             + steps),
                    # PyTorch's OpenMP workers spin between parallel regions by default, which costs it dearly on a
                    # busy machine; Myelin's oneDNN runs with OMP_WAIT_POLICY=passive unless told otherwise.
                    "PyTorch CPU (OMP passive)": lambda: run_json_measured(
                        [sys.executable, f"{BENCH}/torch_convnets.py", "--model", model] + steps,
                        env={"OMP_WAIT_POLICY": "passive"})}
            if args.before:
                before = [args.before] + myelin[1:]
                runs["Myelin before"] = lambda: run_json_measured(before)
            if args.runtimes:
                wanted = set(args.runtimes.split(",")) | {"PyTorch CPU"}   # the ratios' reference
                runs = {name: run for name, run in runs.items() if name in wanted}
            for r in range(args.rounds):
                row = {}
                for name, run in runs.items():
                    try:
                        row[name] = run()
                    except BenchError as error:   # e.g. an older --before build without this workload
                        print(json.dumps({"model": model, "round": r + 1, "runtime": name,
                                          "error": str(error).splitlines()[0][:200]}), flush=True)
                torch = row["PyTorch CPU"]
                for name, x in row.items():
                    print(json.dumps({"model": model, "round": r + 1, "runtime": name,
                                      "samples_per_s": round(x["train_samples_per_s"], 1),
                                      "peak_rss_mib": round(x["peak_rss_mib"], 1),
                                      "speed_vs_torch": round(x["train_samples_per_s"] / torch["train_samples_per_s"], 3),
                                      "memory_vs_torch": round(x["peak_rss_mib"] / torch["peak_rss_mib"], 3)}), flush=True)
    finally:
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
