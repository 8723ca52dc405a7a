"""Myelin against its peers, side by side in one run (issue 5). Started by scripts/bench-peers.

Each workload runs Myelin and each peer alternately (A B A B ...) for a number of rounds; every process
warms up on its own before it times anything. Medians over the rounds go into BENCHMARKS.md.
"""
import argparse
import datetime
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

import embed_bench
import fashion_mnist
import gpt_bench
import myelin_side
import report
from runner import ROOT, BenchError, alternate, run_json, run_json_measured, time_process

PY = sys.executable
BENCH = os.path.join(ROOT, "Benchmarks")
CONV_WARMUP = 10  # untimed training steps before the timed ones (cnn, resnet)
QUICK_CONV_WARMUP, QUICK_CONV_BATCHES = 5, 40  # --quick: 5 warm-up steps, then the epoch's first 40 batches
TINYGRAD_CAP_S = {True: 600, False: 1800}  # seconds per tinygrad process (--quick, full)
SIZES = [256, 512, 1024, 2048, 4096]
ALL = {"gemm", "mlp", "xor", "whole", "startup", "cnn", "resnet", "resnet14", "embed", "gpt"}
RUNTIMES = None  # --runtimes: the runtimes whose rows run in the mlp, convnet and gpt workloads (None: every row)


def chosen(peers):
    """`peers` ({row name: run}) narrowed to the rows of the runtimes --runtimes names: a row belongs to the runtime
    its name starts with, up to the first comma ("Myelin CPU, eager" is Myelin CPU's); every row without the flag."""
    if RUNTIMES is None:
        return peers
    rows = {name: run for name, run in peers.items() if name.split(",")[0].strip() in RUNTIMES}
    if not rows:
        print(f"  no row of this workload is in --runtimes ({', '.join(peers)})", flush=True)
    return rows


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def attempt(name, run):
    """run(), or None with the reason printed: a missing piece on one side keeps the other side's numbers."""
    try:
        return run()
    except BenchError as error:
        print(f"  {name}: not measured: {error}", flush=True)
        return None


def gemm(rounds, runs):
    myelin, numpy = [], []
    for r in range(rounds):
        print(f"  gemm round {r + 1}/{rounds}", flush=True)
        clblast = RUNTIMES is None or "CLBlast" in RUNTIMES  # slow at large sizes on a CPU OpenCL device
        myelin.append(attempt("Myelin", lambda: myelin_side.gemm(SIZES, runs, clblast)) or {})
        numpy.append({row["n"]: row["gflops"] for row in
                      run_json([PY, f"{BENCH}/numpy_gemm.py", "--runs", str(runs),
                                "--sizes", ",".join(map(str, SIZES))])})
    rows = []
    for n in SIZES:
        get = lambda key: median([m.get(n, {}).get(key) for m in myelin])  # noqa: E731
        rows.append({"n": n, "myelin_cpu": get("myelin_cpu_gflops"), "numpy": median([x[n] for x in numpy]),
                     "openblas_direct": get("openblas_gflops"), "myelin_opencl": get("myelin_opencl_gflops"),
                     "clblast": get("clblast_gflops")})
    return rows


def mlp(rounds):
    data = tempfile.mkdtemp(prefix="fashion-mnist-")
    try:
        fashion_mnist.export(data)  # the peers load the same files and draw the same batch order themselves
        return mlp_rounds(rounds, data)
    finally:
        shutil.rmtree(data, ignore_errors=True)


def mlp_rounds(rounds, data):
    peers = {
        "Myelin CPU": lambda: myelin_side.mlp("cpu", data),
        "PyTorch CPU": lambda: run_json([PY, f"{BENCH}/torch_mlp.py"])[-1],
        "Myelin OpenCL": lambda: myelin_side.mlp("opencl", data),
        "Myelin CPU, eager": lambda: myelin_side.mlp("cpu", data, capture=False),
        "Myelin OpenCL, eager": lambda: myelin_side.mlp("opencl", data, capture=False),
        "tinygrad CL": lambda: run_json([PY, f"{BENCH}/tinygrad_mlp.py"], env={"DEV": "CL"})[-1],
        "tinygrad CPU": lambda: run_json([PY, f"{BENCH}/tinygrad_mlp.py"], env={"DEV": "CPU"})[-1],
        "Myelin CPU, `fit` (bench train)": lambda: myelin_side.fit_epoch("cpu"),
        "Myelin OpenCL, `fit` (bench train)": lambda: myelin_side.fit_epoch("opencl"),
    }
    peers = chosen(peers)
    results = {name: [] for name in peers}
    for r in range(rounds):
        for name, run in peers.items():
            print(f"  mlp round {r + 1}/{rounds}: {name}", flush=True)
            results[name].append(attempt(name, run) or {})
    return {name: {key: median([x.get(key) for x in xs])
                   for key in ("train_samples_per_s", "test_samples_per_s", "test_accuracy")}
            for name, xs in results.items()}


def convnet(model, rounds, quick):
    """Training samples/s and whole-process peak RSS of `model` (cnn, resnet or resnet14) per runtime, on the same batches in
    the same order: --quick times the first QUICK_CONV_BATCHES batches of the epoch after QUICK_CONV_WARMUP warm-up
    steps (one round, no tinygrad CPU), a full run the whole epoch after CONV_WARMUP. tinygrad gets at most
    TINYGRAD_CAP_S seconds per process (its kernels compile for minutes on PoCL)."""
    warmup, batches = (QUICK_CONV_WARMUP, QUICK_CONV_BATCHES) if quick else (CONV_WARMUP, 0)
    cap = TINYGRAD_CAP_S[quick]
    steps = ["--warmup", str(warmup), "--batches", str(batches)]
    data = tempfile.mkdtemp(prefix="fashion-mnist-")
    try:
        fashion_mnist.export(data)
        # Captured like fit's default (recorded once, replayed); the eager rows show what capture gives.
        myelin = lambda device, capture=True: run_json_measured(  # noqa: E731
            [myelin_side.MYELIN, "bench", "peers", "--workload", model, "--data", data, "--device", device] + steps
            + (["--capture"] if capture else []))
        tinygrad = lambda dev: run_json_measured(  # noqa: E731
            [PY, f"{BENCH}/tinygrad_convnets.py", "--model", model] + steps, env={"DEV": dev}, timeout=cap)
        peers = {
            "Myelin CPU": lambda: myelin("cpu"),
            "PyTorch CPU": lambda: run_json_measured([PY, f"{BENCH}/torch_convnets.py", "--model", model] + steps),
            "Myelin OpenCL": lambda: myelin("opencl"),
            "tinygrad CL": lambda: tinygrad("CL"),
            "Myelin CPU, eager": lambda: myelin("cpu", capture=False),
        }
        if not quick:
            peers["tinygrad CPU"] = lambda: tinygrad("CPU")
        if model == "resnet14":  # tinygrad's port has the cnn and ResNet-8 only
            peers = {name: run for name, run in peers.items() if not name.startswith("tinygrad")}
        results, notes = alternate(chosen(peers), rounds, model)
    finally:
        shutil.rmtree(data, ignore_errors=True)
    summary = {name: {key: median([x.get(key) for x in xs]) for key in ("train_samples_per_s", "peak_rss_mib", "wall_s")}
               for name, xs in results.items()}
    for name, note in notes.items():
        summary[name]["note"] = note
    return {"runtimes": summary, "warmup": warmup, "batches": batches or None, "rounds": rounds, "tinygrad_cap_s": cap}


def xor(rounds):
    runs = {"Myelin CPU": lambda: myelin_side.xor("cpu"),
            "Myelin CPU, eager": lambda: myelin_side.xor("cpu", capture=False),
            "Myelin OpenCL": lambda: myelin_side.xor("opencl"),
            "Myelin OpenCL, eager": lambda: myelin_side.xor("opencl", capture=False),
            "PyTorch CPU": lambda: run_json([PY, f"{BENCH}/torch_xor.py"])[-1]["steps_per_s"]}
    results = {name: [] for name in runs}
    for r in range(rounds):
        print(f"  xor round {r + 1}/{rounds}", flush=True)
        for name, run in runs.items():
            results[name].append(attempt(name, run))
    return {name: median(xs) for name, xs in results.items()}


def whole_process(rounds):
    commands = {"Myelin CLI": myelin_side.train_command("cpu"),
                "PyTorch script": [PY, f"{BENCH}/torch_mlp.py", "--warmup", "0"]}
    results = {name: [] for name in commands}
    for r in range(rounds):
        for name, cmd in commands.items():
            print(f"  whole process round {r + 1}/{rounds}: {name}", flush=True)
            results[name].append(attempt(name, lambda: time_process(cmd)) or {})
    return {name: {key: median([x.get(key) for x in xs]) for key in ("wall_s", "peak_rss_mib")}
            for name, xs in results.items()}


def startup(rounds):
    cmd = myelin_side.train_command("opencl")
    runs = {"first": [], "second": []}
    for r in range(rounds):
        cache = tempfile.mkdtemp(prefix="myelin-cache-")  # empty: the first run compiles the kernels
        try:
            for which in ("first", "second"):
                print(f"  start-up round {r + 1}/{rounds}: {which} run", flush=True)
                runs[which].append(time_process(cmd, {"MYELIN_CACHE_DIR": cache}))
        finally:
            shutil.rmtree(cache, ignore_errors=True)
    return {which: {key: median([x[key] for x in xs]) for key in ("wall_s", "peak_rss_mib")}
            for which, xs in runs.items()}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true", help="fewer rounds and repetitions")
    p.add_argument("--only", default=",".join(sorted(ALL)), help="comma-separated workloads; the others keep "
                   "their figures from the last run in --results")
    p.add_argument("--results", default=os.path.join(BENCH, "results.json"), help="raw figures of every workload")
    p.add_argument("--output", default=os.path.join(ROOT, "BENCHMARKS.md"))
    p.add_argument("--runtimes", default="", help="comma-separated runtimes (such as \"Myelin CPU,PyTorch CPU\"): "
                   "the mlp, cnn, resnet, resnet14 and gpt workloads run only their rows (\"Myelin CPU\" also runs "
                   "\"Myelin CPU, eager\"): whole epochs without tinygrad's 30-minute runs; default: every row")
    p.add_argument("--conv-rounds", type=int, default=1, help="rounds of the cnn, resnet and resnet14 epochs "
                   "(alternating the rows; figures are the medians)")
    args = p.parse_args()
    global RUNTIMES
    RUNTIMES = [name.strip() for name in args.runtimes.split(",") if name.strip()] or None
    only = set(args.only.split(","))
    unknown = only - ALL
    if unknown:
        raise SystemExit(f"bench_peers: unknown workload {', '.join(sorted(unknown))} (known: {', '.join(sorted(ALL))})")
    quick = args.quick
    conv_rounds = args.conv_rounds
    workloads = [("gemm", "SGEMM", lambda: gemm(rounds=2 if quick else 5, runs=3 if quick else 7)),
                 ("mlp", "Fashion-MNIST MLP", lambda: mlp(rounds=1 if quick else 5)),
                 ("xor", "XOR lab", lambda: xor(rounds=2 if quick else 5)),
                 ("whole", "Whole process", lambda: whole_process(rounds=1 if quick else 5)),
                 ("startup", "Start-up", lambda: startup(rounds=1 if quick else 3)),
                 ("cnn", "Fashion-MNIST CNN training", lambda: convnet("cnn", rounds=conv_rounds, quick=quick)),
                 ("resnet", "Fashion-MNIST ResNet-8 training",
                  lambda: convnet("resnet", rounds=conv_rounds, quick=quick)),
                 ("resnet14", "Fashion-MNIST ResNet-14 training",
                  lambda: convnet("resnet14", rounds=conv_rounds, quick=quick)),
                 ("embed", "Sentence embedding (all-MiniLM-L6-v2)",
                  lambda: embed_bench.run(rounds=1 if quick else 3, median=median, attempt=attempt)),
                 ("gpt", "Character GPT training and generation",
                  lambda: gpt_bench.run(rounds=1 if quick else 3, quick=quick, chosen=chosen))]
    results = {}
    if os.path.exists(args.results) and only != ALL:  # a partial run keeps the other workloads' last figures
        with open(args.results) as f:
            results = json.load(f)
    for key, title, run in workloads:
        if key not in only:
            continue
        print(title, flush=True)
        started, load_before = time.time(), os.getloadavg()[0]
        try:
            data = run()
        except BenchError as error:  # one missing piece must not lose the other tables
            print(f"  not measured: {error}", flush=True)
            data = {"error": str(error).splitlines()[0]}
        results[key] = {"data": data, "mode": "quick" if quick else "full", "minutes": (time.time() - started) / 60,
                        "when": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                        "load": [load_before, os.getloadavg()[0]]}
    with open(args.results, "w") as f:
        json.dump(results, f, indent=1)
    text = report.markdown(results)
    with open(args.output, "w") as f:
        f.write(text)
    print()
    print(text)


if __name__ == "__main__":
    main()
