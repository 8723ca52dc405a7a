#!/usr/bin/env python3
"""PyTorch side of the GPT training parity check (Tests/MyelinTests/IO/GPTStepsParityTests.swift).

  torch_gpt_steps_check.py DIR

DIR holds what Myelin wrote:
  initial.safetensors  a GPT checkpoint (weights with nanoGPT's names; gpt_config and vocabulary in the metadata);
  batches.json         {"inputs": tensor [S, B, T], "targets": tensor [S, B, T]}: the batch of each step;
  recipe.json          {"lr", "betas", "eps", "weight_decay", "warmup", "min_lr", "grad_clip"}: `myelin train
                       text`'s recipe (AdamW with GPT.parameterGroups, WarmupCosine over the S steps, clipping by
                       global norm; grad_clip 0: none);
  losses.json          Myelin's loss at each step, tensor [S];
  final.safetensors    Myelin's weights after the S steps.
This script builds nanoGPT's GPT (torch_gpt_check.GPT), loads initial.safetensors with load_state_dict(strict=True),
runs the same S steps in float64 with torch.optim.AdamW (the groups, schedule and clipping of torch_gpt_recipe.py)
and prints the largest absolute difference of every parameter and of the losses. The same run in float32 is shown
beside it: it tells how far float32 rounding alone carries two implementations apart. Exits 1 when a parameter of
Myelin's differs from the float64 run by more than 1e-4.
"""
import json
import os
import sys

import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_gpt_check import GPT  # noqa: E402  (nanoGPT's GPT, Myelin's state-dict names)
from torch_gpt_recipe import learning_rate, make_optimizer  # noqa: E402

TOLERANCE = 1e-4


def tensor(spec, dtype):
    return torch.tensor(spec["values"], dtype=dtype).reshape(spec["shape"])


def train(config, state, batches, recipe, dtype):
    """The S steps from `state` in `dtype`: (model, losses)."""
    torch.manual_seed(0)
    model = GPT(config).to(dtype)
    model.load_state_dict({k: v.to(dtype) for k, v in state.items()}, strict=True)
    optimizer = make_optimizer(model, recipe["lr"], tuple(recipe["betas"]), recipe["eps"], recipe["weight_decay"])
    inputs, targets = tensor(batches["inputs"], torch.float64).long(), tensor(batches["targets"], torch.float64).long()
    steps = inputs.shape[0]
    losses = []
    for step in range(steps):
        lr = learning_rate(step, recipe["lr"], recipe["warmup"], steps, recipe["min_lr"])
        for group in optimizer.param_groups:
            group["lr"] = lr
        optimizer.zero_grad(set_to_none=True)
        logits = model(inputs[step])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets[step].reshape(-1), ignore_index=-1)
        loss.backward()
        if recipe["grad_clip"] > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), recipe["grad_clip"], foreach=False)
        optimizer.step()
        losses.append(loss.item())
    return model, losses


def main():
    if len(sys.argv) != 2:
        raise SystemExit("usage: torch_gpt_steps_check.py DIR")
    # One thread: the model is tiny, and PyTorch's threads wait for each other badly on loaded cores (the test runs
    # one check per device at the same time).
    torch.set_num_threads(1)
    folder = sys.argv[1]
    path = lambda name: os.path.join(folder, name)
    with safe_open(path("initial.safetensors"), "pt") as f:
        config = json.loads(f.metadata()["gpt_config"])
    if not config.get("bias", True) or config.get("dropout", 0) != 0:
        raise SystemExit("this check builds nanoGPT's GPT with bias=True and no dropout")
    state = {k: v for k, v in load_file(path("initial.safetensors")).items() if not k.startswith("optimizer.")}
    batches = json.load(open(path("batches.json")))
    recipe = json.load(open(path("recipe.json")))
    try:
        model64, losses64 = train(config, state, batches, recipe, torch.float64)
    except RuntimeError as error:
        print(f"gpt: strict load FAILED: {error}")
        return 1
    model32, losses32 = train(config, state, batches, recipe, torch.float32)
    print(f"gpt: strict load OK; {len(losses64)} AdamW steps in float64 and float32")
    final = load_file(path("final.safetensors"))
    ours = json.load(open(path("losses.json")))["values"]
    loss_diff = max(abs(a - b) for a, b in zip(ours, losses64))
    loss_diff32 = max(abs(a - b) for a, b in zip(losses32, losses64))
    print(f"losses: first {losses64[0]:.6f}, last {losses64[-1]:.6f} (PyTorch float64); Myelin's last {ours[-1]:.6f}; "
          f"max |diff| {loss_diff:.2e} (PyTorch float32: {loss_diff32:.2e})")
    worst, worst32, failures = 0.0, 0.0, 0
    params32 = dict(model32.named_parameters())
    for name, p in model64.named_parameters():
        mine = final[name].double()
        diff = (p.detach() - mine).abs().max().item()
        diff32 = (p.detach() - params32[name].detach().double()).abs().max().item()
        moved = (p.detach() - state[name].double()).abs().max().item()
        failed = diff > TOLERANCE
        failures += failed
        worst, worst32 = max(worst, diff), max(worst32, diff32)
        print(f"{name}: moved {moved:.2e}, max |diff| {diff:.2e} (PyTorch float32: {diff32:.2e}){' FAILED' if failed else ''}")
    print(f"parameters after {len(losses64)} steps: max |diff| {worst:.2e} (PyTorch float32 against float64: {worst32:.2e}), "
          f"tolerance {TOLERANCE:g}{' FAILED' if failures else ''}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
