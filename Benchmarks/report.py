"""BENCHMARKS.md: machine, versions, one table per workload, and the targets of issue 5 met or missed."""
import datetime
import os
import platform
import re
import subprocess
from importlib.metadata import PackageNotFoundError, version

import embed_bench
import gpt_bench
from myelin_side import MYELIN


def _cmd(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def _deb(package):
    return _cmd(["dpkg-query", "-W", "-f", "${Version}", package]) or "not installed"


def _pip(package):
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def _numpy_blas():
    try:
        import numpy
        blas = numpy.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{blas['name']} {blas['version']}"
    except Exception:  # numpy's build info is informative only
        return "unknown"


def machine():
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor())
    os_name = next((line.split("=", 1)[1].strip().strip('"') for line in open("/etc/os-release")
                    if line.startswith("PRETTY_NAME=")), platform.system())
    opencl = next((line.split(": ", 1)[1].strip() for line in _cmd([MYELIN, "devices"]).splitlines()
                   if line.strip().startswith("opencl:0:")), "none")
    return [("CPU", f"{cpu}, {os.cpu_count()} cores"), ("OS", f"{os_name}, Linux {platform.release()}"),
            ("OpenCL device 0", opencl), ("Threads", "2 everywhere (MYELIN_THREADS, OMP_NUM_THREADS, "
                                           "OPENBLAS_NUM_THREADS, torch.set_num_threads, NUM_CPU_THREADS)"),
            ("Swift", _cmd(["swift", "--version"]).splitlines()[0] if _cmd(["swift", "--version"]) else "unknown"),
            ("PyTorch", _pip("torch")), ("tinygrad", _pip("tinygrad")),
            ("sentence-transformers", _pip("sentence-transformers")),
            ("numpy", f"{_pip('numpy')} ({_numpy_blas()})"),
            ("OpenBLAS (Debian, linked by Myelin)", _deb("libopenblas0-pthread")),
            ("PoCL", _deb("libpocl2")), ("CLBlast", _deb("libclblast1")), ("Python", platform.python_version())]


def num(v, digits=0):
    return "n/a" if v is None else f"{v:,.{digits}f}"


def ratio(a, b, target=None, higher_is_better=True):
    """'1.23×', with 'met'/'missed' against a target when one is given."""
    if a is None or b is None or b == 0:
        return "n/a"
    r = a / b
    if target is None:
        return f"{r:.2f}×"
    met = r >= target if higher_is_better else r <= target
    return f"{r:.2f}× ({'≥' if higher_is_better else '≤'} {target}: {'met' if met else '**missed**'})"


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(map(str, row)) + " |" for row in rows])


def gemm_section(rows):
    return "## 1. SGEMM, n×n·n×n, GFLOP/s\n\n" + table(
        ["n", "Myelin CPU", "OpenBLAS via numpy", "Myelin CPU / OpenBLAS", "OpenBLAS direct (Debian)",
         "Myelin OpenCL", "CLBlast", "Myelin OpenCL / CLBlast"],
        [[r["n"], num(r["myelin_cpu"], 1), num(r["numpy"], 1), ratio(r["myelin_cpu"], r["numpy"], 0.95),
          num(r["openblas_direct"], 1), num(r["myelin_opencl"], 1), num(r["clblast"], 1),
          ratio(r["myelin_opencl"], r["clblast"], 2)] for r in rows])


def mlp_section(m):
    # Issue 13's goals, raised by issue 23 to 1.6×: captured training ≥ 1.6× PyTorch on the CPU device, and on OpenCL ≥ 1.3× the 51,015 samples/s
    # measured on 2026-11-23 before capture (MLP_OPENCL_BEFORE_CAPTURE).
    pairs = [("Myelin CPU", "PyTorch CPU", 1.6), ("Myelin CPU, eager", "PyTorch CPU", None),
             ("Myelin OpenCL", "tinygrad CL", 3), ("Myelin CPU", "tinygrad CPU", None),
             ("Myelin OpenCL", "Myelin OpenCL, eager", None)]
    get = lambda name, key: m.get(name, {}).get(key)  # noqa: E731
    return ("## 2. Fashion-MNIST MLP 784-512-256-10, ReLU, Adam 1e-3, batch 128\n\n" + table(
        ["Runtime", "Training samples/s (one epoch)", "Test-set inference samples/s", "Test accuracy after 1 epoch"],
        [[name, num(get(name, "train_samples_per_s")), num(get(name, "test_samples_per_s")),
          num(get(name, "test_accuracy"), 4)] for name in m]) + "\n\n" + table(
        ["Myelin vs peer", "Training ratio", "Inference ratio"],
        [[f"{a} / {b}", ratio(get(a, "train_samples_per_s"), get(b, "train_samples_per_s"), t),
          ratio(get(a, "test_samples_per_s"), get(b, "test_samples_per_s"))] for a, b, t in pairs]
        + [["Myelin OpenCL / before capture (51,015 on 2026-11-23)",
            ratio(get("Myelin OpenCL", "train_samples_per_s"), MLP_OPENCL_BEFORE_CAPTURE, 1.3), ""]]))


MLP_OPENCL_BEFORE_CAPTURE = 51015


def xor_section(x):
    goals = {"Myelin CPU": 50, "Myelin OpenCL": 10}
    return ("## 3. XOR lab, 2-3-1 sigmoid, full-batch steps (20000; 2000 on OpenCL)\n\n"
            "Myelin's rows without \"eager\" capture the step once and replay it (`captureStep`, what `fit` does).\n\n"
            + table(["Runtime", "Steps/s", "Myelin / PyTorch"],
                    [[name, num(v), ratio(v, x.get("PyTorch CPU"), goals.get(name)) if name != "PyTorch CPU" else ""]
                     for name, v in x.items()]))


def whole_section(w):
    my, pt = w["Myelin CLI"], w["PyTorch script"]
    return ("## 4. Whole process: one epoch of workload 2 on the CPU, from process start (`/usr/bin/time -v`)\n\n"
            + table(["Process", "Wall time (s)", "Peak RSS (MiB)"],
                    [[name, num(v["wall_s"], 2), num(v["peak_rss_mib"], 1)] for name, v in w.items()]
                    + [["Myelin / PyTorch", ratio(my["wall_s"], pt["wall_s"], 0.25, False),
                        ratio(my["peak_rss_mib"], pt["peak_rss_mib"], 0.15, False)]]))


def startup_section(s):
    return ("## 5. Start-up: the Myelin OpenCL trainer (one epoch, whole process), twice on a fresh `MYELIN_CACHE_DIR`\n\n"
            + table(["Run", "Wall time (s)", "Peak RSS (MiB)"],
                    [["first (kernels compiled)", num(s["first"]["wall_s"], 2), num(s["first"]["peak_rss_mib"], 1)],
                     ["second (kernel binaries from the cache)", num(s["second"]["wall_s"], 2),
                      num(s["second"]["peak_rss_mib"], 1)]])
            + f"\n\nThe cache saves {s['first']['wall_s'] - s['second']['wall_s']:.2f} s of the first run.")


def conv_section(number, title, cpu_goal=1.3, memory_goal=0.5):
    """Section for a convnet workload: samples/s and peak RSS per runtime, and the goals of issues 8 and 23 (CPU
    training `cpu_goal`× PyTorch's, peak memory `memory_goal`× or none)."""
    def section(c):
        m = c["runtimes"]
        get = lambda name, key: m.get(name, {}).get(key)  # noqa: E731
        span = (f"the epoch's first {c['batches']} batches of 128" if c["batches"] else "one epoch (468 batches of 128)")
        if c.get("rounds", 1) > 1:
            span += f", {c['rounds']} alternated rounds (medians)"
        rows = []
        for name in m:
            note = get(name, "note")
            rows.append([name, num(get(name, "train_samples_per_s")) if not note else f"n/a ({note})",
                         num(get(name, "peak_rss_mib"), 1), num(get(name, "wall_s"), 1)])
        goals = [("Training: Myelin CPU / PyTorch CPU", get("Myelin CPU", "train_samples_per_s"),
                  get("PyTorch CPU", "train_samples_per_s"), cpu_goal, True),
                 ("Training: Myelin OpenCL / tinygrad CL", get("Myelin OpenCL", "train_samples_per_s"),
                  get("tinygrad CL", "train_samples_per_s"), 3, True),
                 ("Training: Myelin OpenCL / Myelin CPU", get("Myelin OpenCL", "train_samples_per_s"),
                  get("Myelin CPU", "train_samples_per_s"), 1, True),
                 ("Peak memory: Myelin CPU / PyTorch CPU", get("Myelin CPU", "peak_rss_mib"),
                  get("PyTorch CPU", "peak_rss_mib"), memory_goal, False),
                 ("Peak memory: Myelin OpenCL / PyTorch CPU", get("Myelin OpenCL", "peak_rss_mib"),
                  get("PyTorch CPU", "peak_rss_mib"), memory_goal, False)]
        return (f"## {number}. {title}, Adam 1e-3, batch 128, no augmentation: training over {span}\n\n"
                + table(["Runtime", "Training samples/s", "Whole-process peak RSS (MiB)", "Process wall time (s)"], rows)
                + "\n\nGoals of issues 8 and 23:\n\n"
                + table(["Ratio", "Value"], [[label, ratio(a, b, t, hi)] for label, a, b, t, hi in goals]))
    return section


METHOD = """## How

- Myelin side: `myelin bench gemm --json` (SGEMM on the CPU and OpenCL devices, Debian's OpenBLAS called
  directly, and CLBlast on Myelin's OpenCL queue), `myelin bench peers` (MLP epoch, XOR lab: the same
  protocol as the Python peers), `myelin train fashion-mnist` (whole process, start-up); release build.
- Peers: numpy's `matmul` (numpy's bundled OpenBLAS), PyTorch eager with `torch.set_num_threads(2)`,
  tinygrad with `TinyJit` on `DEV=CL` (the same PoCL device as Myelin's OpenCL) and `DEV=CPU`.
  Scripts in `Benchmarks/`.
- MLP: Fashion-MNIST from the IDX files (`Benchmarks/fashion_mnist.py`); every runtime trains the same
  468 full batches of 128 in the same shuffled order (seed 0) after 20 warm-up steps, then classifies the
  10000 test images in chunks of 1000. XOR: 20 warm-up steps, then 20000 timed steps (2000 on OpenCL).
- Myelin's MLP, XOR, CNN and ResNet-8 rows capture the training step once and replay it (`captureStep`, what
  `fit` does by default: `myelin bench peers --capture`); the rows marked "eager" run every step through the graph.
- CNN and ResNet-8 (sections 6 and 7): `ConvNets.fashionCNN` and `ConvNets.resnet(depth: 1)` through
  `myelin bench peers --workload cnn|resnet`, the identical PyTorch modules (`Benchmarks/torch_convnets.py`,
  from `scripts/torch_convnet_interop.py`) and tinygrad ports with `TinyJit` (`Benchmarks/tinygrad_convnets.py`),
  Adam 1e-3, batch 128, no augmentation, the MLP's batch order. Full run: 10 warm-up steps, then the whole
  epoch (468 batches), one round, tinygrad also on `DEV=CPU`; `--quick`: 5 warm-up steps, then the epoch's first
  40 batches (5120 images), one round, no tinygrad CPU. Each process runs under `/usr/bin/time -v`, which gives
  its whole-process peak RSS (data, model, allocator caches and, for OpenCL on PoCL, the device buffers, which
  live in host memory). A tinygrad process is stopped after 600 s (`--quick`) or 1800 s (full): on PoCL it
  compiles its kernels for minutes.
- PyTorch is the CPU-only wheel (`torch-*+cpu`): PyPI's default Linux wheel needs several GB of CUDA
  packages even to import. See `scripts/bench-peers`."""


SECTIONS = {"gemm": gemm_section, "mlp": mlp_section, "xor": xor_section, "whole": whole_section,
            "startup": startup_section, "cnn": conv_section(6, "Fashion-MNIST CNN (`ConvNets.fashionCNN`)"),
            "resnet": conv_section(7, "Fashion-MNIST ResNet-8 (`ConvNets.resnet(depth: 1)`)"),
            "resnet14": conv_section(8, "Fashion-MNIST ResNet-14, the trainer's default (`ConvNets.resnet(depth: 2)`)",
                                     cpu_goal=1.2, memory_goal=None),  # issue 23 names no memory goal for it
            "embed": lambda data: embed_bench.section(data, table, num, ratio),
            "gpt": gpt_bench.section}


def markdown(results):
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "# Myelin against its peers",
        f"Written by `scripts/bench-peers` on {now}. Each workload runs Myelin and its peers alternately "
        "(A B A B ...); every process warms up before it times anything, and each figure is the median over the "
        "rounds (full run: 5 rounds of each workload, 3 start-up pairs, 1 round of the CNN and ResNet epochs unless `--conv-rounds` says more; "
        "`--quick`: 2 for SGEMM and XOR, 1 for the rest). "
        "Higher is better except in sections 4 and 5. Raw figures: `Benchmarks/results.json`.",
        "## Machine and versions\n\n" + table(["", ""], machine()),
        METHOD,
    ]
    for key, section in SECTIONS.items():
        if key not in results:
            continue
        entry = results[key]
        when = (f"_Measured {entry['when']}, {entry['mode']} run, {entry['minutes']:.1f} min; load average "
                f"{entry['load'][0]:.2f} before, {entry['load'][1]:.2f} after._")
        # The benchmark's own 2 threads hold the load average near 2; more than one above the core count means
        # other jobs shared the cores.
        if max(entry["load"]) > (os.cpu_count() or 1) + 1:
            when += ("\n\n**Other jobs were running** (load average more than one above the core count): figures are noisy, "
                     "and PyTorch's OpenMP threads slow down far more than the others when the cores are oversubscribed.")
        if "error" in entry["data"]:
            title, body = f"## {key}", f"Not measured: {entry['data']['error']}"
        else:
            title, _, body = section(entry["data"]).partition("\n\n")
        parts.append(numbered(title, len(parts) - 3) + f"\n\n{when}\n\n{body}" + kept_notes(key))
    # Sections measured by other scripts, kept by hand (data_parallel.md: Benchmarks/ddp_overhead; the OpenCL GEMM
    # tiles of issue 22: myelin bench gemm/conv on PoCL; the history the README kept before 2026-12-07).
    for name in ("data_parallel.md", "notes/opencl_gemm_tiles.md", "notes/history.md"):
        path = os.path.join(HERE, name)
        if os.path.exists(path):
            title, _, body = open(path).read().strip().partition("\n\n")
            parts.append(numbered(title, len(parts) - 3) + "\n\n" + body)
    return "\n\n".join(parts) + "\n"


HERE = os.path.dirname(os.path.abspath(__file__))


def numbered(title, number):
    """'## N. Title': the sections are numbered in the order they appear, whatever number their writer gave."""
    return f"## {number}. " + re.sub(r"^##\s*(\d+[a-z]?\.\s*)?", "", title)


def kept_notes(key):
    """Benchmarks/notes/KEY.md: paragraphs kept by hand below a workload's generated tables (re-checks by other
    scripts, profiles), so a new run replaces the tables and keeps them; dated, so a reader can tell which run
    they speak of."""
    path = os.path.join(HERE, "notes", f"{key}.md")
    return "\n\n" + open(path).read().strip() if os.path.exists(path) else ""
