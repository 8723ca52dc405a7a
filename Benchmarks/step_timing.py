"""Timing a training loop the same way in every peer script: untimed warm-up steps, then timed ones ending with one
read of the last loss (which waits for a lazy or asynchronous runtime to finish)."""
import time


def time_steps(step, warmup, steps):
    """Runs step() `warmup` times, then `steps` times under the clock; (seconds of the timed steps, last loss)."""
    for _ in range(warmup):
        step()
    t0 = time.perf_counter()
    loss = None
    for _ in range(steps):
        loss = step()
    loss = loss.item()
    return time.perf_counter() - t0, loss
