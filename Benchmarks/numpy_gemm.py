"""SGEMM GFLOP/s through numpy (its bundled OpenBLAS): median of --runs after warm-up, one JSON line per size."""
import argparse
import json
import time

import numpy as np

p = argparse.ArgumentParser()
p.add_argument("--sizes", default="256,512,1024,2048")
p.add_argument("--runs", type=int, default=7)
args = p.parse_args()

for n in map(int, args.sizes.split(",")):
    rng = np.random.default_rng(0)
    a = rng.uniform(-0.5, 0.5, (n, n)).astype(np.float32)
    b = rng.uniform(-0.5, 0.5, (n, n)).astype(np.float32)
    c = np.empty((n, n), dtype=np.float32)
    times = []
    for i in range(max(2, min(args.runs, 3)) + args.runs):
        t0 = time.perf_counter()
        np.matmul(a, b, out=c)
        times.append(time.perf_counter() - t0)
    times = sorted(times[-args.runs:])
    print(json.dumps({"n": n, "gflops": 2.0 * n ** 3 / times[len(times) // 2] / 1e9}), flush=True)
