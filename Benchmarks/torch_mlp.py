"""Fashion-MNIST MLP 784-512-256-10 (ReLU, Adam 1e-3, batch 128) in PyTorch eager on the CPU, or on a CUDA GPU
with --device cuda (data on the GPU, TF32 off, timings wait for the GPU; the line then names the device).

Prints one JSON line: training samples/s over one shuffled epoch (or its first --batches batches) after --warmup
steps, and test-set inference samples/s. The whole-process workload times this same script from outside with
/usr/bin/time -v.
"""
import argparse
import json
import os
import time

import torch
from fashion_mnist import epoch_batches, load
from torch_device import torch_device

p = argparse.ArgumentParser()
p.add_argument("--batch", type=int, default=128)
p.add_argument("--eval-batch", type=int, default=1000)
p.add_argument("--warmup", type=int, default=20, help="training steps before the timed epoch")
p.add_argument("--seed", type=int, default=0)
p.add_argument("--batches", type=int, default=0, help="timed training batches (0: the whole epoch)")
p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
args = p.parse_args()
torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
torch.manual_seed(args.seed)
dev, sync = torch_device(args.device, "torch_mlp.py")


x_train, y_train = (torch.from_numpy(a).to(dev) for a in load("train"))
x_test, y_test = (torch.from_numpy(a).to(dev) for a in load("t10k"))
model = torch.nn.Sequential(torch.nn.Linear(784, 512), torch.nn.ReLU(),
                            torch.nn.Linear(512, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10)).to(dev)
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
loss_fn = torch.nn.CrossEntropyLoss()


def step(idx):
    opt.zero_grad(set_to_none=True)
    loss = loss_fn(model(x_train[idx]), y_train[idx])
    loss.backward()
    opt.step()
    return loss


batches = [torch.from_numpy(b).to(dev) for b in epoch_batches(len(x_train), args.batch, args.seed)]
timed = batches[:args.batches] if args.batches > 0 else batches
for idx in batches[:args.warmup]:
    step(idx)
sync()
t0 = time.perf_counter()
for idx in timed:
    loss = step(idx)
loss = loss.item()
train_s = time.perf_counter() - t0

with torch.inference_mode():
    if dev.type == "cuda":  # one untimed chunk: CUDA's first inference launches load their kernels
        model(x_test[:args.eval_batch]).argmax(1)
        sync()
    t0 = time.perf_counter()
    correct = sum(int((model(x_test[i:i + args.eval_batch]).argmax(1) == y_test[i:i + args.eval_batch]).sum())
                  for i in range(0, len(x_test), args.eval_batch))
    test_s = time.perf_counter() - t0

row = {"train_samples_per_s": len(timed) * args.batch / train_s, "test_samples_per_s": len(x_test) / test_s,
       "final_loss": loss, "test_accuracy": correct / len(x_test)}
if dev.type == "cuda":
    row.update(device=torch.cuda.get_device_name(dev), batches=len(timed), tf32=False)
print(json.dumps(row), flush=True)
