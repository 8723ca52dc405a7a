"""The PyTorch device of a peer benchmark: `cpu`, or `cuda` with TF32 off (so that FP32 is FP32, as Myelin's),
and the call that waits for it (a no-op on the CPU). Used by torch_mlp.py, torch_convnets.py and torch_gpu.py."""
import torch


def torch_device(name, script):
    """(device, synchronize) for `--device name`; exits naming `script` when CUDA is asked for and absent."""
    dev = torch.device(name)
    if dev.type != "cuda":
        return dev, lambda: None
    if not torch.cuda.is_available():
        raise SystemExit(f"{script}: no CUDA device")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    return dev, torch.cuda.synchronize
