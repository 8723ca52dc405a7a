#!/usr/bin/env python3
"""Screenshots TensorBoard's scalars page for a log folder and checks that every run's curve is drawn.

    tensorboard_screenshot.py LOGDIR OUT.png [TAG_FILTER]     (TAG_FILTER default "epoch/")

Starts `tensorboard --logdir LOGDIR` on loopback, waits until it lists the runs, opens the scalars page (filtered to
TAG_FILTER) in headless Chromium (Debian's `chromium`), writes the screenshot to OUT.png, stops TensorBoard, and
checks with PIL that the charts hold enough pixels of each run's colour (TensorBoard colours the runs in order:
orange, then blue). Exits with 1 when there are fewer than two runs or a run's curve is missing.
"""
import json
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
from PIL import Image

# The pixels of the first two runs' curves (TensorBoard colours them orange #ff7043 and blue #0077bb), anti-aliased
# shades included; the blue of TensorBoard's own icons (#2196f3) is not counted.
def run_pixels(p):
    r, g, b = p[..., 0], p[..., 1], p[..., 2]
    orange = (r > 220) & (g >= 90) & (g <= 200) & (b <= 170) & (r - b > 80) & (g < r - 40)
    blue = (r < 100) & (b > g + 30) & (g > 60) & (g < 140) & (b < 215)
    return [int(orange.sum()), int(blue.sum())]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    logdir, out = sys.argv[1], sys.argv[2]
    tag_filter = sys.argv[3] if len(sys.argv) > 3 else "epoch/"
    port = free_port()
    board = subprocess.Popen([sys.executable, "-m", "tensorboard.main", "--logdir", logdir, "--host", "127.0.0.1",
                              "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        runs = []
        for _ in range(120):
            try:
                runs = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/data/runs", timeout=2))
                if runs:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        if not runs:
            sys.exit("tensorboard_screenshot: TensorBoard listed no runs")
        url = f"http://127.0.0.1:{port}/?darkMode=false#scalars&_smoothingWeight=0&tagFilter={tag_filter}"
        subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        "--window-size=1400,820", "--virtual-time-budget=15000", f"--screenshot={out}", url],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=180)
    finally:
        board.terminate()
        board.wait()
    # The charts only: right of the run list (whose check boxes have the runs' colours too), below the toolbar.
    counts = run_pixels(np.asarray(Image.open(out).convert("RGB")).astype(int)[120:, 360:])[:len(runs)]
    print(f"runs {sorted(runs)}; pixels of each run's colour: {counts}")
    if len(runs) < 2 or min(counts) < 30:
        sys.exit("tensorboard_screenshot: a run's curve is missing from the screenshot")


if __name__ == "__main__":
    main()
