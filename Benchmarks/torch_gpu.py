"""PyTorch on a CUDA GPU: the vendor-BLAS reference for `myelin bench gemm` and `myelin bench mlp` on the same GPU.

Prints one JSON line per measurement:
- gemm: FP32 SGEMM through torch.matmul (cuBLAS) with TF32 off, GFLOP/s at each square size (median of --runs);
- mlp: the Fashion-MNIST MLP 784-512-256-10 (ReLU, Adam 1e-3, batch 128) training step on random data, ms/step.
Used by scripts/gpu-check; needs only torch with CUDA. --device cpu runs the same on the CPU (for
`scripts/gpu-check --dry-run`, with tiny sizes: its figures mean nothing).
"""
import argparse
import json
import statistics
import time

import torch
from torch_device import torch_device

p = argparse.ArgumentParser()
p.add_argument("--sizes", default="256,512,1024,2048,4096")
p.add_argument("--runs", type=int, default=10)
p.add_argument("--mlp-steps", type=int, default=200)
p.add_argument("--mlp-warmup", type=int, default=20, help="untimed MLP steps first")
p.add_argument("--device", default="cuda", help="cuda (default) or cpu")
args = p.parse_args()
dev, synchronize = torch_device(args.device, "torch_gpu.py")
name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"

for n in (int(s) for s in args.sizes.split(",")):
    a = torch.randn(n, n, device=dev)
    b = torch.randn(n, n, device=dev)
    for _ in range(3):
        torch.matmul(a, b)
    synchronize()
    times = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        torch.matmul(a, b)
        synchronize()
        times.append(time.perf_counter() - t0)
    t = statistics.median(times)
    print(json.dumps({"what": "gemm", "gpu": name, "n": n, "ms": t * 1e3, "gflops": 2 * n ** 3 / t / 1e9,
                      "tf32": False}), flush=True)

torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(784, 512), torch.nn.ReLU(), torch.nn.Linear(512, 256), torch.nn.ReLU(),
                            torch.nn.Linear(256, 10)).to(dev)
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
loss_fn = torch.nn.CrossEntropyLoss()
x = torch.rand(128, 784, device=dev)
y = torch.randint(0, 10, (128,), device=dev)


def step():
    opt.zero_grad(set_to_none=True)
    loss = loss_fn(model(x), y)
    loss.backward()
    opt.step()


for _ in range(args.mlp_warmup):
    step()
synchronize()
t0 = time.perf_counter()
for _ in range(args.mlp_steps):
    step()
synchronize()
ms = (time.perf_counter() - t0) / args.mlp_steps * 1e3
print(json.dumps({"what": "mlp", "gpu": name, "ms_per_step": ms, "batch": 128}), flush=True)
