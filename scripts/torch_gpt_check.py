#!/usr/bin/env python3
"""PyTorch side of the GPT parity check (Tests/MyelinTests/IO/GPTParityTests.swift).

  torch_gpt_check.py CHECKPOINT TOKENS_JSON LOGITS_JSON [OUT_DIR]

CHECKPOINT is a Myelin GPT checkpoint (myelin train text --save, or TrainingCheckpoint.save with GPT.metadata): its
metadata holds the sizes (gpt_config, nanoGPT's names) and the vocabulary. This script builds nanoGPT's GPT (the
module names of nanoGPT's model.py, lm_head tied to transformer.wte), loads the checkpoint's model tensors with
load_state_dict(strict=True) (a training checkpoint's optimizer.* state left aside), runs the tokens of TOKENS_JSON
([B, T]) in float64 and compares the logits with LOGITS_JSON (what Myelin computed): it prints the largest absolute
difference and exits 1 when it is over 1e-4.

With OUT_DIR, the other way round too: a GPT of the same sizes initialized by PyTorch (seed 0, weights perturbed so
that no tensor is at its default) is saved as OUT_DIR/torch_gpt.safetensors with the same metadata, and its float64
logits for the same tokens as OUT_DIR/torch_logits.json, for Myelin to load and compare. JSON tensors are
{"shape": [...], "values": [...]}.
"""
import json
import os
import sys

import torch
import torch.nn as nn
from safetensors import safe_open
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_transformer_check import Block, read_tensor  # noqa: E402  (nanoGPT's Block, same state-dict names)

TOLERANCE = 1e-4


class GPT(nn.Module):
    """nanoGPT's GPT (bias=True): wte + wpe, the blocks, ln_f, lm_head tied to wte."""

    def __init__(self, config):
        super().__init__()
        c = config["n_embd"]
        self.block_size = config["block_size"]
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config["vocab_size"], c),
            wpe=nn.Embedding(config["block_size"], c),
            h=nn.ModuleList([Block(c, config["n_head"], True, False) for _ in range(config["n_layer"])]),
            ln_f=nn.LayerNorm(c),
        ))
        self.lm_head = nn.Linear(c, config["vocab_size"], bias=False)
        self.transformer.wte.weight = self.lm_head.weight

    def forward(self, idx):
        t = idx.size(1)
        pos = torch.arange(0, t, dtype=torch.long)
        x = self.transformer.wte(idx) + self.transformer.wpe(pos)
        for block in self.transformer.h:
            x = block(x)
        return self.lm_head(self.transformer.ln_f(x))


def write_tensor(t, path):
    json.dump({"shape": list(t.shape), "values": t.flatten().tolist()}, open(path, "w"))


def main():
    if len(sys.argv) not in (4, 5):
        raise SystemExit("usage: torch_gpt_check.py CHECKPOINT TOKENS_JSON LOGITS_JSON [OUT_DIR]")
    checkpoint, tokens_path, logits_path = sys.argv[1:4]
    with safe_open(checkpoint, "pt") as f:
        metadata = f.metadata()
    config = json.loads(metadata["gpt_config"])
    if not config.get("bias", True):
        raise SystemExit("this check builds nanoGPT's GPT with bias=True; the checkpoint has bias=false")
    model = GPT(config).double()
    state = {k: v.double() for k, v in load_file(checkpoint).items() if not k.startswith("optimizer.")}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        print(f"gpt: strict load FAILED: {error}")
        return 1
    tied = model.lm_head.weight is model.transformer.wte.weight
    print(f"gpt: strict load OK ({len(state)} tensors, lm_head tied: {tied})")
    idx = read_tensor(tokens_path).long()
    with torch.no_grad():
        logits = model(idx)
    theirs = read_tensor(logits_path)
    if logits.shape != theirs.shape:
        print(f"logits: shapes {list(logits.shape)} (PyTorch) and {list(theirs.shape)} (Myelin) FAILED")
        return 1
    diff = (logits - theirs).abs().max().item()
    print(f"logits (Myelin -> PyTorch): max |diff| {diff:.2e}{' FAILED' if diff > TOLERANCE else ''}")
    if len(sys.argv) == 5:
        out = sys.argv[4]
        torch.manual_seed(0)
        other = GPT(config).double()
        with torch.no_grad():
            for p in other.parameters():
                p.add_(0.05 * torch.randn_like(p))
            other_logits = other(idx)
        # safetensors refuses tensors that share memory: the tied pair is written as two copies, as Myelin does.
        tensors = {k: v.float().clone().contiguous() for k, v in other.state_dict().items()}
        save_file(tensors, os.path.join(out, "torch_gpt.safetensors"),
                  metadata={"gpt_config": metadata["gpt_config"], "vocabulary": metadata["vocabulary"]})
        write_tensor(other_logits, os.path.join(out, "torch_logits.json"))
        print(f"wrote {out}/torch_gpt.safetensors and torch_logits.json (PyTorch -> Myelin)")
    return 1 if diff > TOLERANCE else 0


if __name__ == "__main__":
    sys.exit(main())
