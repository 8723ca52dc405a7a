"""Fashion-MNIST `cnn`, ResNet-8 (`resnet`) and ResNet-14 (`resnet14`) training in PyTorch eager on the CPU, or on a CUDA GPU with
--device cuda (Adam 1e-3, batch 128, no augmentation): the architectures of ConvNets.fashionCNN and ConvNets.resnet(depth: 1), from scripts/torch_convnet_models.py
(which the checkpoint interoperability check proves identical to Myelin's).

Prints one JSON line: training samples/s over --batches batches (0: the whole shuffled epoch) after --warmup steps,
on the batch order of Benchmarks/fashion_mnist.py (the same as every other runtime's). With --device cuda the data
set lives on the GPU, TF32 is off (FP32 like Myelin), the timing waits for the GPU, and the line names the device.
"""
import argparse
import json
import os
import sys
import time

import torch
from fashion_mnist import epoch_batches, load
from torch_device import torch_device

# The modules of scripts/torch_convnet_models.py, which the checkpoint interoperability check proves equal to
# Myelin's (that module needs only torch).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
from torch_convnet_models import fashion_cnn, resnet  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", choices=["cnn", "resnet", "resnet14"], required=True,
                   help="cnn, resnet (ResNet-8) or resnet14 (ResNet-14, the trainer's default)")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--warmup", type=int, default=10, help="training steps before the timed ones")
    p.add_argument("--batches", type=int, default=0, help="timed training batches (0: the whole epoch)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    args = p.parse_args()
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    torch.manual_seed(args.seed)
    dev, sync = torch_device(args.device, "torch_convnets.py")

    x_train, y_train = (torch.from_numpy(a).to(dev) for a in load("train"))
    model = {"cnn": fashion_cnn, "resnet": lambda: resnet(1), "resnet14": lambda: resnet(2)}[args.model]().to(dev)
    model.train()
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
    row = {"model": args.model, "batches": len(timed), "train_samples_per_s": len(timed) * args.batch / train_s,
           "final_loss": loss}
    if dev.type == "cuda":
        row.update(device=torch.cuda.get_device_name(dev), tf32=False)
    print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
