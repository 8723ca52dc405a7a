#!/usr/bin/env python3
"""PyTorch side of the transformer-block parity check (Tests/MyelinTests/IO/TransformerParityTests.swift).

  torch_transformer_check.py DIR

DIR holds what Myelin wrote for one TransformerBlock (its state dict in block.safetensors, its sizes in
config.json) run on x.json: the output y.json, the gradients of sum(y * w) (w.json) for the input (gx.json) and
for every parameter (grads.json: {name: tensor}), and the cross-entropy of y read as logits [B, T, C] at labels.json
with ignore_index=-1 (ce.json). This script builds nanoGPT's Block (the same module names), loads the file with
load_state_dict(strict=True), runs the same computation in float64 and prints one line per quantity with its largest
absolute difference; it exits 1 when one differs by more than 1e-4. JSON tensors are {"shape": [...],
"values": [...]}.
"""
import json
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file

TOLERANCE = 1e-4


def read_tensor(path):
    spec = json.load(open(path))
    return torch.tensor(spec["values"], dtype=torch.float64).reshape(spec["shape"])


class CausalSelfAttention(nn.Module):
    """nanoGPT's attention (its manual path): c_attn, the causal mask, softmax, c_proj."""

    def __init__(self, n_embd, n_head, causal):
        super().__init__()
        self.c_attn = nn.Linear(n_embd, 3 * n_embd)
        self.c_proj = nn.Linear(n_embd, n_embd)
        self.n_head, self.n_embd, self.causal = n_head, n_embd, causal

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        if self.causal:
            mask = torch.tril(torch.ones(T, T, dtype=torch.bool))
            att = att.masked_fill(~mask, float("-inf"))
        att = F.softmax(att, dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
        return self.c_proj(y)


class MLP(nn.Module):
    def __init__(self, n_embd, approximate):
        super().__init__()
        self.c_fc = nn.Linear(n_embd, 4 * n_embd)
        self.gelu = nn.GELU(approximate="tanh" if approximate else "none")
        self.c_proj = nn.Linear(4 * n_embd, n_embd)

    def forward(self, x):
        return self.c_proj(self.gelu(self.c_fc(x)))


class Block(nn.Module):
    """nanoGPT's Block: x + attn(ln_1(x)), then + mlp(ln_2(x))."""

    def __init__(self, n_embd, n_head, causal, approximate):
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd)
        self.attn = CausalSelfAttention(n_embd, n_head, causal)
        self.ln_2 = nn.LayerNorm(n_embd)
        self.mlp = MLP(n_embd, approximate)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


def report(name, ours, theirs):
    if ours.shape != theirs.shape:
        print(f"{name}: shapes {list(ours.shape)} (PyTorch) and {list(theirs.shape)} (Myelin) FAILED")
        return 1
    diff = (ours - theirs).abs().max().item() if ours.numel() else 0.0
    print(f"{name}: max |diff| {diff:.2e}{' FAILED' if diff > TOLERANCE else ''}")
    return 1 if diff > TOLERANCE else 0


def main():
    if len(sys.argv) != 2:
        raise SystemExit("usage: torch_transformer_check.py DIR")
    folder = sys.argv[1]
    path = lambda name: os.path.join(folder, name)
    config = json.load(open(path("config.json")))
    block = Block(config["embed"], config["heads"], config["causal"], config["approximate"]).double()
    try:
        block.load_state_dict({k: v.double() for k, v in load_file(path("block.safetensors")).items()}, strict=True)
    except RuntimeError as error:
        print(f"block: strict load FAILED: {error}")
        return 1
    print("block: strict load OK")
    x = read_tensor(path("x.json")).requires_grad_(True)
    y = block(x)
    (y * read_tensor(path("w.json"))).sum().backward()
    failures = report("output", y.detach(), read_tensor(path("y.json")))
    failures += report("input gradient", x.grad, read_tensor(path("gx.json")))
    grads = json.load(open(path("grads.json")))
    for name, p in block.named_parameters():
        spec = grads[name]
        theirs = torch.tensor(spec["values"], dtype=torch.float64).reshape(spec["shape"])
        failures += report(f"gradient of {name}", p.grad, theirs)
    labels = read_tensor(path("labels.json")).long()
    ce = F.cross_entropy(y.detach().reshape(-1, y.shape[-1]), labels.reshape(-1), ignore_index=-1)
    failures += report("cross-entropy, ignore_index=-1", ce.reshape(1), read_tensor(path("ce.json")).reshape(1))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
