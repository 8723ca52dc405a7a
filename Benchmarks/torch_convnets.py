"""Fashion-MNIST `cnn` and ResNet-8 (`resnet`) training in PyTorch eager on the CPU (Adam 1e-3, batch 128, no
augmentation): the architectures of ConvNets.fashionCNN and ConvNets.resnet(depth: 1), copied from
scripts/torch_convnet_interop.py (which the checkpoint interoperability check proves identical to Myelin's;
copied rather than imported because that script needs safetensors, which the benchmark venv lacks).

Prints one JSON line: training samples/s over --batches batches (0: the whole shuffled epoch) after --warmup steps,
on the batch order of Benchmarks/fashion_mnist.py (the same as every other runtime's).
"""
import argparse
import json
import os
import time

import torch
from fashion_mnist import epoch_batches, load

nn = torch.nn


class BasicBlock(nn.Module):
    """torchvision.models.resnet.BasicBlock (as in scripts/torch_convnet_interop.py)."""

    def __init__(self, inplanes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


def fashion_cnn():
    """ConvNets.fashionCNN."""
    return nn.Sequential(nn.Unflatten(1, (1, 28, 28)),
                         nn.Conv2d(1, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10))


def resnet(depth, classes=10):
    """ConvNets.resnet(depth:) for 1x28x28 images."""
    def stage(inplanes, planes, stride):
        return nn.Sequential(BasicBlock(inplanes, planes, stride), *[BasicBlock(planes, planes) for _ in range(depth - 1)])
    return nn.Sequential(nn.Unflatten(1, (1, 28, 28)),
                         nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
                         stage(16, 16, 1), stage(16, 32, 2), stage(32, 64, 2),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, classes))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", choices=["cnn", "resnet"], required=True, help="cnn, or resnet (ResNet-8)")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--warmup", type=int, default=10, help="training steps before the timed ones")
    p.add_argument("--batches", type=int, default=0, help="timed training batches (0: the whole epoch)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    torch.manual_seed(args.seed)

    x_train, y_train = (torch.from_numpy(a) for a in load("train"))
    model = fashion_cnn() if args.model == "cnn" else resnet(1)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step(idx):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x_train[idx]), y_train[idx])
        loss.backward()
        opt.step()
        return loss

    batches = [torch.from_numpy(b) for b in epoch_batches(len(x_train), args.batch, args.seed)]
    timed = batches[:args.batches] if args.batches > 0 else batches
    for idx in batches[:args.warmup]:
        step(idx)
    t0 = time.perf_counter()
    for idx in timed:
        loss = step(idx)
    loss = loss.item()
    train_s = time.perf_counter() - t0
    print(json.dumps({"model": args.model, "batches": len(timed),
                      "train_samples_per_s": len(timed) * args.batch / train_s, "final_loss": loss}), flush=True)


if __name__ == "__main__":
    main()
