#!/usr/bin/env python3
"""`myelin train text`'s default recipe in PyTorch, for the learning-curve comparison (Benchmarks/gpt_curves.md).

  torch_gpt_train.py [--data FILE] [--steps 2000] [--seed 1] [--eval-interval 250] [--eval-iters 20] [--threads N]

The same text (the fortunes of /usr/share/games/fortunes read as TrainText.fortunes reads them, or --data), the same
character vocabulary and 90/10 split, the same batches (Myelin's SeededGenerator re-implemented: the same windows at
every step for the same --seed), the same evaluation batches, and the same recipe: nanoGPT's GPT with 4 layers,
4 heads, 128 dims, block 64, batch 12, no dropout; AdamW lr 1e-3, betas (0.9, 0.99), weight decay 0.1 on the linear
weights only; 100 warm-up steps then a cosine to 1e-4 at the last step; gradients clipped to global norm 1. Only the
initial weights differ: PyTorch draws them (nanoGPT's distributions, torch.manual_seed(seed)). Prints the line
`step N/S: train loss A, val loss B` at each evaluation, as myelin does, and the time taken.
"""
import argparse
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_gpt_check import GPT  # noqa: E402
from torch_gpt_recipe import (SplitMix64, fortunes_text, get_batch, init_weights, learning_rate,  # noqa: E402
                              make_optimizer, split, train_batch_seed)


def evaluate(model, parts, seed, batch, block, iters):
    """TrainText.evaluate: the mean loss of `iters` batches of each part (seeds seed+1000 and seed+1001)."""
    model.eval()
    means = []
    with torch.no_grad():
        for part, tokens in enumerate(parts):
            generator = SplitMix64(seed + 1000 + part)
            total = 0.0
            for _ in range(iters):
                x, y = get_batch(tokens, batch, block, generator)
                logits = model(x)
                total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), ignore_index=-1).item()
            means.append(total / iters)
    model.train()
    return means


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="a UTF-8 text file (default: the fortunes)")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--eval-interval", type=int, default=250)
    parser.add_argument("--eval-iters", type=int, default=20)
    parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: PyTorch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    text = open(args.data, encoding="utf-8", newline="").read() if args.data else fortunes_text()
    vocabulary = sorted(set(text))
    index = {c: i for i, c in enumerate(vocabulary)}
    tokens = [index[c] for c in text]
    train, validation = split(tokens)
    batch, lr, steps = 12, 1e-3, args.steps
    config = {"vocab_size": len(vocabulary), "block_size": 64, "n_layer": 4, "n_head": 4, "n_embd": 128}
    block = config["block_size"]
    torch.manual_seed(args.seed)
    model = GPT(config)
    init_weights(model, config["n_layer"])
    optimizer = make_optimizer(model, lr, (0.9, 0.99), 1e-8, 0.1)
    count = sum(p.numel() for p in model.parameters())
    print(f"Text: {args.data or 'fortunes'}: {len(tokens)} characters, vocabulary {len(vocabulary)}; "
          f"{len(train)} train, {len(validation)} validation")
    print(f"GPT (PyTorch {torch.__version__}, {torch.get_num_threads()} threads): {count} parameters; batch {batch}, {steps} steps")
    start = time.time()
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, lr, 100, steps, 1e-4)
        x, y = get_batch(train, batch, block, SplitMix64(train_batch_seed(args.seed, step)))
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), ignore_index=-1)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        done = step + 1
        if done % args.eval_interval == 0 or done == steps:
            train_loss, val_loss = evaluate(model, [train, validation], args.seed, batch, block, args.eval_iters)
            print(f"step {done}/{steps}: train loss {train_loss:.4f}, val loss {val_loss:.4f}  ({time.time() - start:.0f} s)",
                  flush=True)
    seconds = time.time() - start
    print(f"{steps} steps in {seconds:.1f} s ({steps * batch * block / seconds:.0f} tokens/s)")


if __name__ == "__main__":
    main()
