"""Running one benchmark process: its JSON lines, or its wall time and peak memory through /usr/bin/time -v."""
import json
import os
import re
import subprocess
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class BenchError(RuntimeError):
    pass


def _run(cmd, env=None):
    full_env = dict(os.environ, **(env or {}))
    proc = subprocess.run(cmd, cwd=ROOT, env=full_env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BenchError(f"{' '.join(cmd)} exited with {proc.returncode}:\n{proc.stderr[-2000:]}{proc.stdout[-2000:]}")
    return proc


def run_text(cmd, env=None):
    """Runs cmd and returns what it printed."""
    return _run(cmd, env).stdout


def run_json(cmd, env=None):
    """Runs cmd and returns the JSON objects it printed, one per line starting with '{'."""
    lines = [line for line in _run(cmd, env).stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise BenchError(f"{' '.join(cmd)} printed no JSON line")
    return [json.loads(line) for line in lines]


def time_process(cmd, env=None):
    """Wall seconds and peak resident MiB of the whole process, from /usr/bin/time -v."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as out:
        _run(["/usr/bin/time", "-v", "-o", out.name] + cmd, env)
        text = out.read()
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", text).group(1)
    seconds = sum(float(part) * 60 ** i for i, part in enumerate(reversed(wall.split(":"))))
    rss_kib = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1))
    return {"wall_s": seconds, "peak_rss_mib": rss_kib / 1024}
