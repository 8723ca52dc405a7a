"""The GPT workload of scripts/bench-peers (issue 24): character-GPT training tokens/s and generation tokens/s.

Training: `myelin bench gpt --mode train` (the step of `myelin train text`) on the CPU and OpenCL devices against
PyTorch CPU eager (Benchmarks/torch_gpt.py) and tinygrad with TinyJit on DEV=CL (and DEV=CPU in a full run)
(Benchmarks/tinygrad_gpt.py); generation: `myelin bench gpt --mode generate` (GPT.generate with the key/value cache,
and without it) against nanoGPT's generate loop in PyTorch (no cache). The model is `myelin train text`'s default
(4 layers, 4 heads, 128 dims, block 64, batch 12) with the vocabulary of its default text, the fortunes. Every
process runs under /usr/bin/time -v for its whole-process peak RSS.
"""
import os
import statistics
import sys

import myelin_side
from runner import alternate, run_json_measured

PY = sys.executable
BENCH = os.path.dirname(os.path.abspath(__file__))
FORTUNES = "/usr/share/games/fortunes"
TINYGRAD_CAP_S = {True: 600, False: 1800}  # seconds per tinygrad process (--quick, full): it compiles for minutes on PoCL
KEYS = ("tokens_per_s", "peak_rss_mib", "wall_s")


def vocabulary_size():
    """The number of distinct characters of `myelin train text`'s default text (the fortunes, as TrainText.fortunes
    reads them); 65 (nanoGPT's Shakespeare) when the fortunes are not installed."""
    if not os.path.isdir(FORTUNES):
        return 65
    chars = set()
    for name in sorted(os.listdir(FORTUNES)):
        path = os.path.join(FORTUNES, name)
        if name.endswith((".dat", ".u8")) or "off" in name or not os.path.isfile(path):
            continue
        try:
            with open(path, encoding="utf-8") as f:
                chars |= set(f.read().replace("\n%\n", "\n\n"))
        except (OSError, UnicodeDecodeError):
            continue
    return len(chars) or 65


def run(rounds, quick, chosen=lambda peers: peers):
    """Median tokens/s, peak RSS and wall time per runtime over `rounds` alternating rounds, with every round's
    tokens/s kept (`all`) to show the spread; `chosen` narrows each part's rows (bench_peers --runtimes)."""
    vocab = str(vocabulary_size())
    warmup, steps, tokens = ("3", "20", "100") if quick else ("5", "100", "300")
    cap = TINYGRAD_CAP_S[quick]
    myelin = lambda *extra: run_json_measured([myelin_side.MYELIN, "bench", "gpt", "--vocab", vocab] + list(extra))  # noqa: E731
    train = ["--mode", "train", "--warmup", warmup, "--steps", steps]
    generate = ["--mode", "generate", "--warmup", "70", "--tokens", tokens]  # 70: every cache length once
    tinygrad = lambda dev: run_json_measured(  # noqa: E731
        [PY, f"{BENCH}/tinygrad_gpt.py", "--vocab", vocab, "--warmup", warmup, "--steps", steps],
        env={"DEV": dev}, timeout=cap)
    torch = lambda args: run_json_measured([PY, f"{BENCH}/torch_gpt.py", "--vocab", vocab] + args)  # noqa: E731
    peers = {
        "train": {"Myelin CPU": lambda: myelin("--device", "cpu", *train),
                  "PyTorch CPU": lambda: torch(train),
                  "Myelin OpenCL": lambda: myelin("--device", "opencl", *train),
                  "tinygrad CL": lambda: tinygrad("CL")},
        "generate": {"Myelin CPU, KV cache": lambda: myelin("--device", "cpu", *generate),
                     "PyTorch CPU, no cache (nanoGPT's generate)": lambda: torch(generate),
                     "Myelin OpenCL, KV cache": lambda: myelin("--device", "opencl", *generate),
                     "Myelin CPU, no cache": lambda: myelin("--device", "cpu", "--no-cache", *generate)},
    }
    if not quick:
        peers["train"]["tinygrad CPU"] = lambda: tinygrad("CPU")
    out = {"vocab": int(vocab), "warmup": int(warmup), "steps": int(steps), "tokens": int(tokens), "tinygrad_cap_s": cap}
    for part, runs in peers.items():
        results, notes = alternate(chosen(runs), rounds, f"gpt {part}")
        summary = {}
        for name, xs in results.items():
            summary[name] = {key: _median([x.get(key) for x in xs]) for key in KEYS}
            summary[name]["all"] = [x.get("tokens_per_s") for x in xs]
            if name in notes:
                summary[name]["note"] = notes[name]
        out[part] = summary
    return out


def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def section(data, number=9):
    """BENCHMARKS.md's GPT section: both tables and issue 24's goals."""
    from report import num, ratio, table  # report imports nothing from here: no cycle at import time

    def rows(part):
        out = []
        for name, v in data[part].items():
            spread = [x for x in v.get("all", []) if x is not None]
            cell = num(v["tokens_per_s"], 1) if not v.get("note") else f"n/a ({v['note']})"
            if len(spread) > 1:
                cell += f" ({min(spread):,.1f}-{max(spread):,.1f})"
            out.append([name, cell, num(v["peak_rss_mib"], 1), num(v["wall_s"], 1)])
        return out

    get = lambda part, name, key: data[part].get(name, {}).get(key)  # noqa: E731
    goals = [("Training: Myelin CPU / PyTorch CPU", get("train", "Myelin CPU", "tokens_per_s"),
              get("train", "PyTorch CPU", "tokens_per_s"), 1.3, True),
             ("Training: Myelin OpenCL / tinygrad CL", get("train", "Myelin OpenCL", "tokens_per_s"),
              get("train", "tinygrad CL", "tokens_per_s"), 3, True),
             ("Generation: Myelin CPU, KV cache / PyTorch CPU, no cache",
              get("generate", "Myelin CPU, KV cache", "tokens_per_s"),
              get("generate", "PyTorch CPU, no cache (nanoGPT's generate)", "tokens_per_s"), 2, True),
             ("Peak memory, training: Myelin CPU / PyTorch CPU", get("train", "Myelin CPU", "peak_rss_mib"),
              get("train", "PyTorch CPU", "peak_rss_mib"), 0.5, False),
             ("Peak memory, generation: Myelin CPU / PyTorch CPU",
              get("generate", "Myelin CPU, KV cache", "peak_rss_mib"),
              get("generate", "PyTorch CPU, no cache (nanoGPT's generate)", "peak_rss_mib"), 0.5, False)]
    header = ["Runtime", "Tokens/s (median; range over rounds)", "Whole-process peak RSS (MiB)", "Process wall time (s)"]
    return (f"## {number}. Character GPT (`myelin train text`'s default: 4 layers, 4 heads, 128 dims, block 64, "
            f"vocabulary {data['vocab']})\n\n"
            f"Training: batch 12 × 64 random tokens, cross-entropy, clipping to global norm 1, AdamW (decay on the "
            f"linear weights only); {data['warmup']} warm-up steps, then {data['steps']} timed steps. Myelin's step is "
            f"`myelin train text`'s (eager); tinygrad's is jitted (`TinyJit`, stopped after {data['tinygrad_cap_s']} s).\n\n"
            + table(header, rows("train"))
            + f"\n\nGeneration: {data['tokens']} tokens from a one-token prompt after 70 warm-up tokens (every length of the cache once: on PoCL the first use of each length is slow), temperature "
            "0.8, top-k 200, batch 1; Myelin's `GPT.generate` (as `myelin generate`) with its key/value cache and "
            "without; PyTorch runs nanoGPT's `generate` (no cache: the whole cropped context per token, the last "
            "position's logits only).\n\n"
            + table(header, rows("generate"))
            + "\n\nGoals of issue 24:\n\n"
            + table(["Ratio", "Value"], [[label, ratio(a, b, t, hi)] for label, a, b, t, hi in goals]))
