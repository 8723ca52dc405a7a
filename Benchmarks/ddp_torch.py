"""PyTorch DistributedDataParallel (gloo) on this machine: the peer of `mpirun -np 2 myelin train fashion-mnist
--distributed` in BENCHMARKS.md's data-parallel rows (run by Benchmarks/ddp_overhead).

The same models as Myelin's Fashion-MNIST trainer (mlp 784-512-256-10 with Adam 1e-3; cnn ConvNets.fashionCNN with
AdamW 1e-3, weight decay 0.01), the same global batch split over the ranks, one thread per rank. Prints the
training step time over `--steps` steps after `--warmup` steps, the gradient bytes per step, and the time of one
allreduce of that many floats alone (gloo, the same process group).

    python3 Benchmarks/ddp_torch.py --model mlp --ranks 2 --batch 128 --steps 50
"""
import argparse
import os
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
import torch_convnet_models  # noqa: E402


def build(name):
    if name == "mlp":
        model = torch.nn.Sequential(torch.nn.Linear(784, 512), torch.nn.ReLU(), torch.nn.Linear(512, 256), torch.nn.ReLU(),
                                    torch.nn.Linear(256, 10))
        return model, lambda p: torch.optim.Adam(p, lr=1e-3)
    if name == "cnn":
        return torch_convnet_models.fashion_cnn(), lambda p: torch.optim.AdamW(p, lr=1e-3, weight_decay=0.01)
    raise SystemExit(f"unknown model {name}; choose mlp or cnn")


def worker(rank, args, port):
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(args.threads)
    dist.init_process_group("gloo", rank=rank, world_size=args.ranks)
    torch.manual_seed(1)
    model, make_optimizer = build(args.model)
    ddp = torch.nn.parallel.DistributedDataParallel(model, bucket_cap_mb=25) if args.ranks > 1 else model
    optimizer = make_optimizer(ddp.parameters())
    loss_fn = torch.nn.CrossEntropyLoss()
    share = args.batch // args.ranks + (1 if rank < args.batch % args.ranks else 0)
    g = torch.Generator().manual_seed(100 + rank)
    total = args.warmup + args.steps
    xs = torch.rand(total, share, 784, generator=g)
    ys = torch.randint(0, 10, (total, share), generator=g)

    def step(i):
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(ddp(xs[i]), ys[i])
        loss.backward()
        optimizer.step()

    for i in range(args.warmup):
        step(i)
    if args.ranks > 1:
        dist.barrier()
    start = time.perf_counter()
    for i in range(args.warmup, total):
        step(i)
    if args.ranks > 1:
        dist.barrier()
    seconds = time.perf_counter() - start
    values = sum(p.numel() for p in model.parameters())
    reduce_ms = float("nan")
    if args.ranks > 1:
        flat = torch.zeros(values)
        for _ in range(3):
            dist.all_reduce(flat)
        dist.barrier()
        t = time.perf_counter()
        for _ in range(20):
            dist.all_reduce(flat)
        reduce_ms = (time.perf_counter() - t) / 20 * 1000
    if rank == 0:
        ms = seconds / args.steps * 1000
        print(f"torch {torch.__version__} DDP gloo: model {args.model}, {args.ranks} ranks x {args.threads} thread(s), "
              f"global batch {args.batch}: {ms:.2f} ms/step ({1000 / ms:.1f} steps/s) over {args.steps} steps; "
              f"{4 * values / 1e6:.2f} MB of gradients per step; allreduce alone {reduce_ms:.2f} ms")
    dist.destroy_process_group()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mlp", choices=["mlp", "cnn"])
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per rank")
    parser.add_argument("--batch", type=int, default=128, help="global batch, split over the ranks")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--port", type=int, default=29531)
    args = parser.parse_args()
    mp.spawn(worker, args=(args, args.port), nprocs=args.ranks, join=True)


if __name__ == "__main__":
    main()
