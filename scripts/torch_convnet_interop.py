#!/usr/bin/env python3
"""PyTorch side of the convnet checkpoint interoperability check (Tests/MyelinTests/IO/ConvNetInteropTests.swift).

ConvNets.fashionCNN and ConvNets.resnet write PyTorch state dicts of the modules below: no renaming, no
transposing. Modes (one Python start for all models, as importing torch takes seconds):

  torch_convnet_interop.py [check] DIR
      for every DIR/NAME.safetensors written by Myelin with DIR/NAME-inputs.json and DIR/NAME-logits.json beside
      it (NAME: MODEL or MODEL-anything, e.g. cnn-opencl): build MODEL, load the file with
      load_state_dict(strict=True), run it in eval mode on the inputs and compare with Myelin's logits. Prints
      "NAME: strict load OK, 32/32 classes equal, max |logit diff| ..." per file and exits 1 when a class differs
      or a logit differs by more than 1e-4. By hand: MYELIN_INTEROP_DIR=/tmp/interop swift test --skip-build
      --filter ConvNetInteropTests leaves the files in /tmp/interop, then run this script on /tmp/interop.
  torch_convnet_interop.py save DIR MODEL...
      for each MODEL: build it with torch.manual_seed(0) (PyTorch's own initialization), run three train-mode
      batches on DIR/inputs.json (so batch norm has running statistics and num_batches_tracked = 3), save its
      state_dict with safetensors.torch.save_file to DIR/MODEL-torch.safetensors and its eval-mode logits to
      DIR/MODEL-torch-logits.json

MODEL: "cnn" = ConvNets.fashionCNN, "resnet1" / "resnet2" / "resnet3" = ConvNets.resnet(depth: 1 / 2 / 3), both
       for inputs [N, 784] (Fashion-MNIST rows scaled to [0, 1]). JSON tensors are {"shape": [...], "values": [...]}.
"""
import os
import sys

import torch
from safetensors.torch import load_file, save_file

# The JSON tensor format of the MLP interop script beside this one (its folder is on sys.path when run).
from torch_interop import read_tensor, write_tensor
# The modules themselves (beside this script).
from torch_convnet_models import fashion_cnn, resnet

TOLERANCE = 1e-4


def build(kind):
    if kind == "cnn":
        return fashion_cnn()
    if kind.startswith("resnet") and kind[6:].isdigit():
        return resnet(int(kind[6:]))
    raise SystemExit(f"unknown model {kind!r} (cnn, resnet1, resnet2, resnet3)")


def check(name, path, inputs, myelin_logits):
    torch.manual_seed(0)
    model = build(name.split("-")[0])
    try:
        model.load_state_dict(load_file(path), strict=True)
    except RuntimeError as error:
        print(f"{name}: strict load FAILED: {error}")
        return 1
    model.eval()
    with torch.no_grad():
        logits = model(read_tensor(inputs))
    theirs = read_tensor(myelin_logits)
    if theirs.shape != logits.shape:
        print(f"{name}: strict load OK, but Myelin's logits are {list(theirs.shape)} and PyTorch's {list(logits.shape)} FAILED")
        return 1
    same = int((logits.argmax(1) == theirs.argmax(1)).sum())
    diff = float((logits - theirs).abs().max())
    ok = same == logits.shape[0] and diff <= TOLERANCE
    print(f"{name}: strict load OK, {same}/{logits.shape[0]} classes equal, max |logit diff| {diff:.2e}"
          f" (tolerance {TOLERANCE:g}){'' if ok else ' FAILED'}")
    return 0 if ok else 1


def check_folder(folder):
    status, found = 0, 0
    for entry in sorted(os.listdir(folder)):
        name = entry[:-len(".safetensors")]
        files = [os.path.join(folder, name + suffix) for suffix in [".safetensors", "-inputs.json", "-logits.json"]]
        if entry.endswith(".safetensors") and all(os.path.exists(f) for f in files):
            found += 1
            status |= check(name, *files)
    if found == 0:
        print(f"no NAME.safetensors with NAME-inputs.json and NAME-logits.json in {folder}")
        return 1
    return status


def save(folder, kind):
    torch.manual_seed(0)
    model = build(kind)
    x = read_tensor(os.path.join(folder, "inputs.json"))
    model.train()
    with torch.no_grad():
        for i in range(3):
            model(x * (1 + i) - 0.5 * i)
    save_file(model.state_dict(), os.path.join(folder, f"{kind}-torch.safetensors"),
              metadata={"written_by": "torch_convnet_interop.py"})
    model.eval()
    with torch.no_grad():
        logits = model(x)
    write_tensor(logits, os.path.join(folder, f"{kind}-torch-logits.json"))
    print(f"{kind}: PyTorch's initialization saved ({len(model.state_dict())} tensors), logits of {x.shape[0]} inputs written")
    return 0


def main():
    args = sys.argv[1:]
    if len(args) == 1 and os.path.isdir(args[0]):
        return check_folder(args[0])
    if len(args) == 2 and args[0] == "check":
        return check_folder(args[1])
    if len(args) >= 3 and args[0] == "save":
        return max(save(args[1], kind) for kind in args[2:])
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
