"""The XOR lab in PyTorch eager: 2-3-1 sigmoid network without biases, loss 1/2·Σ(y - t)², plain SGD lr 0.1,
--steps full-batch steps on the 4 XOR rows. Prints one JSON line with steps/s (after --warmup steps)."""
import argparse
import json
import os
import time

import torch

p = argparse.ArgumentParser()
p.add_argument("--steps", type=int, default=20000)
p.add_argument("--warmup", type=int, default=200)
args = p.parse_args()
torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
torch.manual_seed(0)

x = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
t = torch.tensor([[0.0], [1.0], [1.0], [0.0]])
model = torch.nn.Sequential(torch.nn.Linear(2, 3, bias=False), torch.nn.Sigmoid(),
                            torch.nn.Linear(3, 1, bias=False), torch.nn.Sigmoid())
opt = torch.optim.SGD(model.parameters(), lr=0.1)


def step():
    opt.zero_grad(set_to_none=True)
    loss = 0.5 * ((model(x) - t) ** 2).sum()
    loss.backward()
    opt.step()
    return loss


for _ in range(args.warmup):
    step()
t0 = time.perf_counter()
for _ in range(args.steps):
    loss = step()
loss = loss.item()
seconds = time.perf_counter() - t0
print(json.dumps({"steps_per_s": args.steps / seconds, "final_loss": loss}), flush=True)
