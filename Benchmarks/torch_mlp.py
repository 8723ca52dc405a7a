"""Fashion-MNIST MLP 784-512-256-10 (ReLU, Adam 1e-3, batch 128) in PyTorch eager on the CPU.

Prints one JSON line: training samples/s over one shuffled epoch (after --warmup steps) and
test-set inference samples/s. The whole-process workload times this same script from outside with /usr/bin/time -v.
"""
import argparse
import json
import os
import time

import torch
from fashion_mnist import epoch_batches, load

p = argparse.ArgumentParser()
p.add_argument("--batch", type=int, default=128)
p.add_argument("--eval-batch", type=int, default=1000)
p.add_argument("--warmup", type=int, default=20, help="training steps before the timed epoch")
p.add_argument("--seed", type=int, default=0)
args = p.parse_args()
torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
torch.manual_seed(args.seed)

x_train, y_train = (torch.from_numpy(a) for a in load("train"))
x_test, y_test = (torch.from_numpy(a) for a in load("t10k"))
model = torch.nn.Sequential(torch.nn.Linear(784, 512), torch.nn.ReLU(),
                            torch.nn.Linear(512, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
loss_fn = torch.nn.CrossEntropyLoss()


def step(idx):
    opt.zero_grad(set_to_none=True)
    loss = loss_fn(model(x_train[idx]), y_train[idx])
    loss.backward()
    opt.step()
    return loss


batches = [torch.from_numpy(b) for b in epoch_batches(len(x_train), args.batch, args.seed)]
for idx in batches[:args.warmup]:
    step(idx)
t0 = time.perf_counter()
for idx in batches:
    loss = step(idx)
loss = loss.item()
train_s = time.perf_counter() - t0

with torch.inference_mode():
    t0 = time.perf_counter()
    correct = sum(int((model(x_test[i:i + args.eval_batch]).argmax(1) == y_test[i:i + args.eval_batch]).sum())
                  for i in range(0, len(x_test), args.eval_batch))
    test_s = time.perf_counter() - t0

print(json.dumps({"train_samples_per_s": len(batches) * args.batch / train_s,
                  "test_samples_per_s": len(x_test) / test_s, "final_loss": loss,
                  "test_accuracy": correct / len(x_test)}), flush=True)
