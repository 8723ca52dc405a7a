"""PyTorch's CPU convolutions (oneDNN underneath) on the layers of `myelin bench conv` (the cnn's and ResNet-8's,
batch 128): forward, backward-data and backward-weights milliseconds and GFLOP/s, median of --runs, one JSON line
per layer, to set beside `myelin bench conv --device cpu` in the same run.

    python3 Benchmarks/torch_conv_layers.py --runs 5
"""
import argparse
import json
import os
import time

import torch

# name, in channels, out channels, image side, kernel, stride, padding: CLI/Sources/MyelinCLI/ConvBench.swift's shapes.
SHAPES = [("cnn conv1 1->32 3x3 @28", 1, 32, 28, 3, 1, 1), ("cnn conv2 32->64 3x3 @14", 32, 64, 14, 3, 1, 1),
          ("resnet stem 1->16 3x3 @28", 1, 16, 28, 3, 1, 1), ("resnet 16->16 3x3 @28", 16, 16, 28, 3, 1, 1),
          ("resnet 16->32 3x3 s2 @28", 16, 32, 28, 3, 2, 1), ("resnet 32->32 3x3 @14", 32, 32, 14, 3, 1, 1),
          ("resnet 16->32 1x1 s2 @28", 16, 32, 28, 1, 2, 0), ("resnet 32->64 3x3 s2 @14", 32, 64, 14, 3, 2, 1),
          ("resnet 64->64 3x3 @7", 64, 64, 7, 3, 1, 1), ("resnet 32->64 1x1 s2 @14", 32, 64, 14, 1, 2, 0)]


def median_ms(fn, runs):
    fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2] * 1e3


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args()
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    conv = torch.nn.functional.conv2d
    for name, c, o, size, k, s, pad in SHAPES:
        x = torch.randn(args.batch, c, size, size)
        w = torch.randn(o, c, k, k)
        y = conv(x, w, stride=s, padding=pad)
        gy = torch.randn_like(y)
        out = y.shape[2]
        flops = 2.0 * args.batch * o * c * k * k * out * out
        xg, wg = x.clone().requires_grad_(True), w.clone().requires_grad_(True)
        row = {"shape": name}
        with torch.no_grad():
            row["forward_ms"] = median_ms(lambda: conv(x, w, stride=s, padding=pad), args.runs)
        # Each backward alone: only that input requires a gradient (the forward untimed), as myelin bench conv does.
        for key, inputs in (("backward_data_ms", (xg, w)), ("backward_weights_ms", (x, wg))):
            def backward():
                yy = conv(*inputs, stride=s, padding=pad)
                t0 = time.perf_counter()
                yy.backward(gy)
                return time.perf_counter() - t0
            backward()
            row[key] = sorted(backward() for _ in range(args.runs))[args.runs // 2] * 1e3
        for key in ("forward", "backward_data", "backward_weights"):
            row[key + "_gflops"] = round(flops / row[key + "_ms"] / 1e6, 1)
            row[key + "_ms"] = round(row[key + "_ms"], 2)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
