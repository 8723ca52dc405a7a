"""nanoGPT's character GPT training in tinygrad with TinyJit: the peer of `myelin bench gpt --mode train`
(Benchmarks/gpt_bench.py, Benchmarks/torch_gpt.py).

`myelin train text`'s default configuration (4 layers, 4 heads, 128 dims, block 64, batch 12, --vocab tokens), bias,
no dropout, exact (erf) GELU, lm_head tied to wte, causal Tensor.scaled_dot_product_attention; batches of random
tokens; cross-entropy, gradients clipped to global norm 1 (inside the jitted step), AdamW lr 1e-3, betas (0.9, 0.99),
decay 0.1 on the linear weights only (an OptimizerGroup of two AdamW). The device comes from tinygrad's DEV
environment variable (CL or CPU). Prints one JSON line: training tokens/s over --steps steps after --warmup jitted
steps (JIT capture).
"""
import argparse
import json
import math

import numpy as np
from step_timing import time_steps
from tinygrad import Context, Device, Tensor, TinyJit, nn


class Block:
    def __init__(self, c, heads, layers):
        self.heads = heads
        self.ln_1, self.ln_2 = nn.LayerNorm(c), nn.LayerNorm(c)
        self.c_attn, self.attn_proj = nn.Linear(c, 3 * c), nn.Linear(c, c)
        self.c_fc, self.mlp_proj = nn.Linear(c, 4 * c), nn.Linear(4 * c, c)
        for linear in (self.c_attn, self.attn_proj, self.c_fc, self.mlp_proj):  # nanoGPT's initialization
            std = 0.02 / math.sqrt(2 * layers) if linear in (self.attn_proj, self.mlp_proj) else 0.02
            linear.weight = Tensor.normal(*linear.weight.shape, std=std)
            linear.bias = Tensor.zeros(*linear.bias.shape)

    def __call__(self, x):
        b, t, c = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(c, dim=2)
        q, k, v = (z.reshape(b, t, self.heads, c // self.heads).transpose(1, 2) for z in (q, k, v))
        y = q.scaled_dot_product_attention(k, v, is_causal=True).transpose(1, 2).reshape(b, t, c)
        x = x + self.attn_proj(y)
        return x + self.mlp_proj(self.c_fc(self.ln_2(x)).gelu(approximate="none"))


class GPT:
    def __init__(self, vocab, block, layers, heads, c):
        self.wte, self.wpe = nn.Embedding(vocab, c), nn.Embedding(block, c)
        self.wte.weight, self.wpe.weight = Tensor.normal(vocab, c, std=0.02), Tensor.normal(block, c, std=0.02)
        self.h = [Block(c, heads, layers) for _ in range(layers)]
        self.ln_f = nn.LayerNorm(c)

    def __call__(self, idx):
        x = self.wte(idx) + self.wpe(Tensor.arange(idx.shape[1]))
        for block in self.h:
            x = block(x)
        return self.ln_f(x) @ self.wte.weight.T  # lm_head tied to wte


p = argparse.ArgumentParser()
p.add_argument("--vocab", type=int, default=65)
p.add_argument("--batch", type=int, default=12)
p.add_argument("--warmup", type=int, default=5, help="untimed steps first (JIT capture)")
p.add_argument("--steps", type=int, default=50, help="timed training steps")
p.add_argument("--seed", type=int, default=1)
args = p.parse_args()
Tensor.manual_seed(args.seed)
block = 64
model = GPT(args.vocab, block, layers=4, heads=4, c=128)
params = nn.state.get_parameters(model)
embeddings = {id(model.wte.weight), id(model.wpe.weight)}
decay = [t for t in params if len(t.shape) >= 2 and id(t) not in embeddings]
no_decay = [t for t in params if len(t.shape) < 2 or id(t) in embeddings]
opt = nn.optim.OptimizerGroup(nn.optim.AdamW(decay, lr=1e-3, b1=0.9, b2=0.99, weight_decay=0.1),
                              nn.optim.AdamW(no_decay, lr=1e-3, b1=0.9, b2=0.99, weight_decay=0.0))


@TinyJit
def train_step(x, y):
    with Context(TRAINING=1):
        opt.zero_grad()
        loss = model(x).sparse_categorical_crossentropy(y, ignore_index=-1).backward()
        norm = Tensor.stack(*[t.grad.square().sum() for t in params]).sum().sqrt()
        scale = (1.0 / (norm + 1e-6)).minimum(1.0)
        for t in params:
            t.grad = t.grad * scale
        opt.step()
    return loss.realize()


rng = np.random.default_rng(args.seed)
text = rng.integers(0, args.vocab, 100_000, dtype=np.int32)


def step():
    starts = rng.integers(0, len(text) - block, args.batch)
    x = np.stack([text[s:s + block] for s in starts])
    y = np.stack([text[s + 1:s + 1 + block] for s in starts])
    return train_step(Tensor(x), Tensor(y))


seconds, loss = time_steps(step, args.warmup, args.steps)
print(json.dumps({"device": Device.DEFAULT, "mode": "train", "vocab": args.vocab, "steps": args.steps,
                  "tokens_per_s": args.steps * args.batch * block / seconds, "final_loss": loss}), flush=True)
