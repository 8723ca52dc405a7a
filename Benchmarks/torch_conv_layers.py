"""PyTorch's CPU convolutions (oneDNN underneath) on the layers of `myelin bench conv` (the cnn's, ResNet-8's and
ResNet-14's, batch 128): forward, backward-data and backward-weights milliseconds and GFLOP/s, median (or with
--best the fastest) of --runs, one JSON line per layer. `myelin bench conv --torch` runs it once per layer (with
--only) beside its own figures; alone:

    .venv-bench/bin/python Benchmarks/torch_conv_layers.py --runs 5

Threads: BENCH_THREADS, else MYELIN_THREADS, else 2 (myelin bench conv --torch also sets OMP_WAIT_POLICY=passive, as
the CPU device runs oneDNN, unless it is set). When torch cannot be imported it prints one JSON line
{"skipped": "<why>"} and exits 0.
"""
import argparse
import json
import os
import time

# name, in channels, out channels, image side, kernel, stride, padding: CLI/Sources/MyelinCLI/ConvBench.swift's shapes.
SHAPES = [("cnn conv1 1->32 3x3 @28", 1, 32, 28, 3, 1, 1), ("cnn conv2 32->64 3x3 @14", 32, 64, 14, 3, 1, 1),
          ("resnet stem 1->16 3x3 @28", 1, 16, 28, 3, 1, 1), ("resnet 16->16 3x3 @28", 16, 16, 28, 3, 1, 1),
          ("resnet 16->32 3x3 s2 @28", 16, 32, 28, 3, 2, 1), ("resnet 32->32 3x3 @14", 32, 32, 14, 3, 1, 1),
          ("resnet 16->32 1x1 s2 @28", 16, 32, 28, 1, 2, 0), ("resnet 32->64 3x3 s2 @14", 32, 64, 14, 3, 2, 1),
          ("resnet 64->64 3x3 @7", 64, 64, 7, 3, 1, 1), ("resnet 32->64 1x1 s2 @14", 32, 64, 14, 1, 2, 0)]


def pick(times, best):
    times = sorted(times)
    return times[0] if best else times[len(times) // 2]


def measure(torch, shape, batch, runs, best, clock):
    """One layer's row: ms and GFLOP/s of the forward (no grad) and of each backward alone (only that input
    requires a gradient, the forward untimed), as myelin bench conv times them, on `clock` (seconds)."""
    name, c, o, size, k, s, pad = shape
    conv = torch.nn.functional.conv2d
    x = torch.randn(batch, c, size, size)
    w = torch.randn(o, c, k, k)
    y = conv(x, w, stride=s, padding=pad)
    gy = torch.randn_like(y)
    out = y.shape[2]
    flops = 2.0 * batch * o * c * k * k * out * out
    xg, wg = x.clone().requires_grad_(True), w.clone().requires_grad_(True)
    row = {"shape": name, "threads": torch.get_num_threads()}

    def forward():
        with torch.no_grad():
            t0 = clock()
            conv(x, w, stride=s, padding=pad)
            return clock() - t0

    forward()
    row["forward_ms"] = pick([forward() for _ in range(runs)], best) * 1e3
    for key, inputs in (("backward_data_ms", (xg, w)), ("backward_weights_ms", (x, wg))):
        def backward():
            yy = conv(*inputs, stride=s, padding=pad)
            t0 = clock()
            yy.backward(gy)
            return clock() - t0
        backward()
        row[key] = pick([backward() for _ in range(runs)], best) * 1e3
    for key in ("forward", "backward_data", "backward_weights"):
        row[key + "_gflops"] = round(flops / row[key + "_ms"] / 1e6, 1)
        row[key + "_ms"] = round(row[key + "_ms"], 3)
    return row


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--best", action="store_true", help="the fastest run instead of the median")
    p.add_argument("--only", help="only the layer of exactly this name")
    p.add_argument("--cpu-time", action="store_true",
                   help="the process's CPU time (all threads) instead of the wall clock, as myelin bench conv --cpu-time")
    args = p.parse_args()
    try:
        import torch
    except ImportError as e:
        print(json.dumps({"skipped": f"torch cannot be imported: {e}"}), flush=True)
        return
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", os.environ.get("MYELIN_THREADS", "2"))))
    shapes = [s for s in SHAPES if args.only is None or s[0] == args.only]
    if not shapes:
        raise SystemExit(f"torch_conv_layers.py: no layer named {args.only!r}")
    for shape in shapes:
        print(json.dumps(measure(torch, shape, args.batch, args.runs, args.best,
                                  time.process_time if args.cpu_time else time.perf_counter)), flush=True)


if __name__ == "__main__":
    main()
