"""Running one benchmark process: its JSON lines, or its wall time and peak memory through /usr/bin/time -v."""
import json
import os
import re
import signal
import subprocess
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class BenchError(RuntimeError):
    pass


def _run(cmd, env=None, timeout=None):
    full_env = dict(os.environ, **(env or {}))
    # A session of its own, so that a time cap stops the whole process group (/usr/bin/time and what it started).
    with subprocess.Popen(cmd, cwd=ROOT, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          start_new_session=True) as proc:
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise BenchError(f"stopped at the time cap of {timeout:.0f} s") from None
    if proc.returncode != 0:
        raise BenchError(f"{' '.join(cmd)} exited with {proc.returncode}:\n{stderr[-2000:]}{stdout[-2000:]}")
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


def run_text(cmd, env=None):
    """Runs cmd and returns what it printed."""
    return _run(cmd, env).stdout


def run_json(cmd, env=None):
    """Runs cmd and returns the JSON objects it printed, one per line starting with '{'."""
    lines = [line for line in _run(cmd, env).stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise BenchError(f"{' '.join(cmd)} printed no JSON line")
    return [json.loads(line) for line in lines]


def _timed(cmd, env, timeout):
    """The finished process and its wall seconds and peak resident MiB, from /usr/bin/time -v."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as out:
        proc = _run(["/usr/bin/time", "-v", "-o", out.name] + cmd, env, timeout)
        text = out.read()
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", text).group(1)
    seconds = sum(float(part) * 60 ** i for i, part in enumerate(reversed(wall.split(":"))))
    rss_kib = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1))
    return proc, {"wall_s": seconds, "peak_rss_mib": rss_kib / 1024}


def time_process(cmd, env=None):
    """Wall seconds and peak resident MiB of the whole process, from /usr/bin/time -v."""
    return _timed(cmd, env, None)[1]


def run_json_measured(cmd, env=None, timeout=None):
    """The last JSON object cmd printed, with the whole process's wall_s and peak_rss_mib added; BenchError when
    it fails or runs past `timeout` seconds."""
    proc, measured = _timed(cmd, env, timeout)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise BenchError(f"{' '.join(cmd)} printed no JSON line")
    return dict(json.loads(lines[-1]), **measured)


def alternate(peers, rounds, label):
    """Runs every peer of `peers` ({name: callable returning a dict}) once per round, alternating, for `rounds`
    rounds. Returns ({name: [dict per round]}, {name: first line of its error}); a run that raises BenchError is
    kept as {} and its error noted."""
    results = {name: [] for name in peers}
    notes = {}
    for r in range(rounds):
        for name, run in peers.items():
            print(f"  {label} round {r + 1}/{rounds}: {name}", flush=True)
            try:
                results[name].append(run())
            except BenchError as error:
                print(f"  {name}: not measured: {error}", flush=True)
                notes[name] = str(error).splitlines()[0][:200]
                results[name].append({})
    return results, notes
