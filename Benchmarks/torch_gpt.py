"""nanoGPT's character GPT in PyTorch eager on the CPU: the peer of `myelin bench gpt` (Benchmarks/gpt_bench.py).

The model is nanoGPT's model.py (bias=True, no dropout, lm_head tied to wte, attention through
F.scaled_dot_product_attention as nanoGPT does on PyTorch 2) in `myelin train text`'s default configuration:
4 layers, 4 heads, 128 dims, block 64, --vocab tokens.

  --mode train:    --warmup untimed steps, then --steps timed ones of batch 12 windows of random tokens: cross-entropy,
                   clip_grad_norm_(1.0), AdamW lr 1e-3, betas (0.9, 0.99), decay 0.1 on the linear weights only
                   (Myelin's GPT.parameterGroups). Training tokens/s.
  --mode generate: nanoGPT's GPT.generate (no key/value cache: the whole cropped context for every token, logits of
                   the last position only) from a one-token prompt, temperature 0.8, top-k 200, after --warmup tokens.
                   Generated tokens/s.

Prints one JSON line.
"""
import argparse
import json
import math
import os
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from step_timing import time_steps


class CausalSelfAttention(nn.Module):
    def __init__(self, c, heads):
        super().__init__()
        self.c_attn, self.c_proj, self.heads = nn.Linear(c, 3 * c), nn.Linear(c, c), heads

    def forward(self, x):
        b, t, c = x.size()
        q, k, v = self.c_attn(x).split(c, dim=2)
        q, k, v = (z.view(b, t, self.heads, c // self.heads).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.c_proj(y.transpose(1, 2).contiguous().view(b, t, c))


class MLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c_fc, self.gelu, self.c_proj = nn.Linear(c, 4 * c), nn.GELU(), nn.Linear(4 * c, c)

    def forward(self, x):
        return self.c_proj(self.gelu(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self, c, heads):
        super().__init__()
        self.ln_1, self.attn, self.ln_2, self.mlp = nn.LayerNorm(c), CausalSelfAttention(c, heads), nn.LayerNorm(c), MLP(c)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, vocab, block, layers, heads, c):
        super().__init__()
        self.block_size = block
        self.transformer = nn.ModuleDict(dict(wte=nn.Embedding(vocab, c), wpe=nn.Embedding(block, c),
                                              h=nn.ModuleList([Block(c, heads) for _ in range(layers)]),
                                              ln_f=nn.LayerNorm(c)))
        self.lm_head = nn.Linear(c, vocab, bias=False)
        self.transformer.wte.weight = self.lm_head.weight
        for name, p in self.named_parameters():  # nanoGPT's initialization
            if p.dim() >= 2:
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * layers) if name.endswith("c_proj.weight") else 0.02)
            else:
                nn.init.zeros_(p) if name.endswith("bias") else nn.init.ones_(p)

    def forward(self, idx, targets=None):
        t = idx.size(1)
        x = self.transformer.wte(idx) + self.transformer.wpe(torch.arange(0, t, dtype=torch.long))
        for block in self.transformer.h:
            x = block(x)
        x = self.transformer.ln_f(x)
        if targets is None:  # nanoGPT: inference needs the last position's logits only
            return self.lm_head(x[:, [-1], :])
        logits = self.lm_head(x)
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)

    @torch.no_grad()
    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None):
        """nanoGPT's generate, verbatim but for the names."""
        for _ in range(max_new_tokens):
            idx_cond = idx if idx.size(1) <= self.block_size else idx[:, -self.block_size:]
            logits = self(idx_cond)[:, -1, :] / temperature
            if top_k is not None:
                v, _ = torch.topk(logits, min(top_k, logits.size(-1)))
                logits[logits < v[:, [-1]]] = -float("Inf")
            idx_next = torch.multinomial(F.softmax(logits, dim=-1), num_samples=1)
            idx = torch.cat((idx, idx_next), dim=1)
        return idx


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--mode", choices=["train", "generate"], default="train")
    p.add_argument("--vocab", type=int, default=65)
    p.add_argument("--batch", type=int, default=12)
    p.add_argument("--warmup", type=int, default=5, help="untimed steps (train) or tokens (generate)")
    p.add_argument("--steps", type=int, default=50, help="timed training steps")
    p.add_argument("--tokens", type=int, default=300, help="timed generated tokens")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    torch.manual_seed(args.seed)
    block = 64
    model = GPT(args.vocab, block, layers=4, heads=4, c=128)
    row = {"device": "cpu", "mode": args.mode, "vocab": args.vocab,
           "parameters": sum(p.numel() for p in model.parameters())}
    if args.mode == "train":
        embeddings = {id(model.transformer.wte.weight), id(model.transformer.wpe.weight)}
        params = list(model.parameters())
        decay = [p for p in params if p.dim() >= 2 and id(p) not in embeddings]
        no_decay = [p for p in params if p.dim() < 2 or id(p) in embeddings]
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                                lr=1e-3, betas=(0.9, 0.99))
        text = torch.randint(0, args.vocab, (100_000,))
        model.train()

        def step():
            starts = torch.randint(0, len(text) - block, (args.batch,))
            x = torch.stack([text[s:s + block] for s in starts])
            y = torch.stack([text[s + 1:s + 1 + block] for s in starts])
            opt.zero_grad(set_to_none=True)
            loss = model(x, y)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            return loss

        seconds, loss = time_steps(step, args.warmup, args.steps)
        row.update(steps=args.steps, tokens_per_s=args.steps * args.batch * block / seconds, final_loss=loss)
    else:
        model.eval()
        prompt = torch.zeros((1, 1), dtype=torch.long)
        if args.warmup > 0:
            model.generate(prompt, args.warmup, temperature=0.8, top_k=200)
        t0 = time.perf_counter()
        model.generate(prompt, args.tokens, temperature=0.8, top_k=200)
        seconds = time.perf_counter() - t0
        row.update(tokens=args.tokens, cache=False, tokens_per_s=args.tokens / seconds)
    print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
