#!/usr/bin/env python3
"""Reads a TensorBoard log folder with TensorBoard's own EventAccumulator (used by
Tests/MyelinTests/Training/TensorBoardTests.swift) and prints what it holds as JSON:

    tensorboard_check.py LOGDIR

{"scalars": {tag: [[step, value], ...]}, "histograms": {tag: [[step, min, max, num, sum, sum_squares, buckets], ...]}}
where buckets is the sum of the bucket counts. Every event is kept (no sampling).
"""
import json
import sys

from tensorboard.backend.event_processing import event_accumulator as ea


def main():
    acc = ea.EventAccumulator(sys.argv[1], size_guidance={ea.SCALARS: 0, ea.HISTOGRAMS: 0})
    acc.Reload()
    tags = acc.Tags()
    out = {"scalars": {}, "histograms": {}}
    for tag in tags["scalars"]:
        out["scalars"][tag] = [[e.step, e.value] for e in acc.Scalars(tag)]
    for tag in tags["histograms"]:
        out["histograms"][tag] = [
            [e.step, e.histogram_value.min, e.histogram_value.max, e.histogram_value.num,
             e.histogram_value.sum, e.histogram_value.sum_squares, sum(e.histogram_value.bucket)]
            for e in acc.Histograms(tag)
        ]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
