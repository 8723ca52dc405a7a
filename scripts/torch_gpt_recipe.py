"""The training recipe of `myelin train text`, in PyTorch (shared by torch_gpt_steps_check.py and torch_gpt_train.py).

Each function mirrors one piece of the Swift side; the comment names it:
  - SplitMix64 and get_batch: SeededGenerator and TextCorpus.batch (the same windows for the same seed);
  - learning_rate: WarmupCosine as TrainText sets it (nanoGPT's get_lr: (it+1)/(warmup+1) warm-up, then a cosine
    from lr to min_lr at the last step);
  - make_optimizer: GPT.parameterGroups + AdamW(groups:) (decay on the linear weights only, none on biases, layer
    norms and the embeddings, hence not on the tied lm_head);
  - init_weights: GPT.init's distributions (nanoGPT's: N(0, 0.02), c_proj N(0, 0.02/sqrt(2 n_layer)), biases 0);
  - fortunes_text and split: TrainText.fortunes and TextCorpus.split.
"""
import math
import os

import torch

MASK64 = (1 << 64) - 1


class SplitMix64:
    """Myelin's SeededGenerator (SplitMix64): the same 64-bit sequence for the same seed."""

    def __init__(self, seed):
        self.state = seed & MASK64

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        return z ^ (z >> 31)


def get_batch(tokens, batch_size, block_size, generator):
    """TextCorpus.batch: batch_size windows at generator's places; (inputs, targets) as int64 [B, T]."""
    starts = [generator.next() % (len(tokens) - block_size) for _ in range(batch_size)]
    x = torch.tensor([tokens[s:s + block_size] for s in starts], dtype=torch.long)
    y = torch.tensor([tokens[s + 1:s + 1 + block_size] for s in starts], dtype=torch.long)
    return x, y


def train_batch_seed(seed, step):
    """The seed of step `step`'s training batch in TrainText (seed · 0x9E3779B97F4A7C15 + step, wrapping)."""
    return (seed * 0x9E3779B97F4A7C15 + step) & MASK64


def learning_rate(step, base, warmup, total, min_lr):
    """WarmupCosine(warmupEpochs: min(warmup, total - 1), totalEpochs: total, etaMin: min(min_lr, base),
    warmupStartFactor: 1 / (warmup + 1)) at progress `step` (0-based), as TrainText applies it."""
    warm = min(warmup, total - 1)
    eta_min = min(min_lr, base)
    if step < warm:
        f = 1.0 / (warmup + 1)
        return base * (f + (1 - f) * step / warm)
    t = min(1.0, (step - warm) / (total - warm))
    return eta_min + (base - eta_min) * (1 + math.cos(math.pi * t)) / 2


def make_optimizer(model, lr, betas, eps, weight_decay):
    """GPT.parameterGroups(weightDecay:) and AdamW(groups:): decay on parameters of rank >= 2 except the
    embeddings; no decay on the rest."""
    embeddings = {id(model.transformer.wte.weight), id(model.transformer.wpe.weight)}
    params = list(model.parameters())  # the tied wte/lm_head weight once
    decay = [p for p in params if p.dim() >= 2 and id(p) not in embeddings]
    no_decay = [p for p in params if not (p.dim() >= 2 and id(p) not in embeddings)]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=eps, foreach=False)


def init_weights(model, n_layer):
    """nanoGPT's _init_weights, which GPT.init follows (with its own random numbers)."""
    for name, p in model.named_parameters():
        if name.endswith("ln_1.weight") or name.endswith("ln_2.weight") or name.endswith("ln_f.weight"):
            torch.nn.init.ones_(p)
        elif name.endswith(".bias"):
            torch.nn.init.zeros_(p)
        elif name.endswith("c_proj.weight"):
            torch.nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * n_layer))
        else:
            torch.nn.init.normal_(p, mean=0.0, std=0.02)


FORTUNES = "/usr/share/games/fortunes"


def _is_text(data):
    """TextCorpus.text's checks: UTF-8, no NUL byte, at most 10% control characters."""
    if not data or b"\0" in data:
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    controls = sum(1 for c in text if ord(c) < 32 and ord(c) not in (9, 10, 12, 13))
    return None if controls * 10 > len(text) else text


def fortunes_text(folder=FORTUNES):
    """TrainText.fortunes: the plain-text files of the folder in name order (no .dat, no .u8, nothing with 'off'
    in its name), '\\n%\\n' made '\\n\\n', joined by newlines."""
    parts = []
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if name.endswith(".dat") or name.endswith(".u8") or "off" in name or not os.path.isfile(path):
            continue
        text = _is_text(open(path, "rb").read())
        if text is not None:
            parts.append(text.replace("\n%\n", "\n\n"))
    return "\n".join(parts)


def split(tokens, validation_fraction=0.1):
    """TextCorpus.split: the first 90% trains, the rest validates (the cut rounded half away from zero)."""
    cut = math.floor(len(tokens) * (1 - validation_fraction) + 0.5)
    return tokens[:cut], tokens[cut:]
