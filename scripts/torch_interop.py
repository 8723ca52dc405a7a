#!/usr/bin/env python3
"""PyTorch side of Myelin's checkpoint interoperability test (Tests/MyelinTests/IO/TorchInteropTests.swift).

Myelin's files are PyTorch state dicts of the equivalent torch.nn.Sequential: no renaming, no transposing.

  torch_interop.py load MODEL FILE INPUTS.json OUTPUTS.json
      build MODEL, load FILE (written by Myelin) with load_state_dict(strict=True), run it in eval mode on the
      inputs and write the outputs
  torch_interop.py save MODEL FILE INPUTS.json OUTPUTS.json
      build MODEL with torch.manual_seed(0), run three train-mode batches (so batch norm has running statistics
      and num_batches_tracked = 3), save its state_dict with safetensors.torch.save_file, then write its eval-mode
      outputs on the inputs
  torch_interop.py labels FILE
      write integer data: "x" uint8 [5, 3] (values 3·i + j) and "y" int64 [5] (values 4 - i)

MODEL: "mlp" = Sequential(Linear(4, 8), ReLU(), Linear(8, 8), Tanh(), Linear(8, 3)), input [N, 4];
       "conv" = Sequential(Conv2d(1, 3, 3, padding=1), BatchNorm2d(3), ReLU(), Conv2d(3, 2, 3, stride=2), ReLU(),
                Flatten(), Linear(8, 4)), input [N, 1, 5, 5].
JSON tensors are {"shape": [...], "values": [...]} (row-major). Exit status 0 on success.
"""
import json
import sys

import torch
from safetensors.torch import load_file, save_file


def build(kind):
    nn = torch.nn
    if kind == "mlp":
        return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 3))
    if kind == "conv":
        return nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(),
                             nn.Conv2d(3, 2, 3, stride=2), nn.ReLU(), nn.Flatten(), nn.Linear(8, 4))
    raise SystemExit(f"unknown model {kind!r}")


def read_tensor(path):
    spec = json.load(open(path))
    return torch.tensor(spec["values"], dtype=torch.float32).reshape(spec["shape"])


def write_tensor(t, path):
    json.dump({"shape": list(t.shape), "values": t.reshape(-1).tolist()}, open(path, "w"))


def main():
    mode = sys.argv[1]
    if mode == "labels":
        x = torch.arange(15, dtype=torch.uint8).reshape(5, 3)
        y = torch.tensor([4, 3, 2, 1, 0], dtype=torch.int64)
        save_file({"x": x, "y": y}, sys.argv[2])
        return 0
    kind, path, inputs, outputs = sys.argv[2:6]
    torch.manual_seed(0)
    model = build(kind)
    if mode == "load":
        model.load_state_dict(load_file(path), strict=True)
    elif mode == "save":
        model.train()
        with torch.no_grad():
            for i in range(3):
                model(read_tensor(inputs) * (1 + i) - 0.5 * i)
        save_file(model.state_dict(), path, metadata={"written_by": "torch_interop.py"})
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    model.eval()
    with torch.no_grad():
        write_tensor(model(read_tensor(inputs)), outputs)
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
