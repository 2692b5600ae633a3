"""Throughput of the CIFAR-10-C corruptions: images/s per corruption and for all 19 in turn.

    python benchmarks/bench_corruptions.py [--batch 256] [--size 32] [--severity 3] [--threads 2] [--repeats 3]
                                           [--device cpu]

Random images (uniform noise is the worst case for nothing here; every corruption does the same work on any
content). Each corruption runs once untimed (imports, caches), then `repeats` times; the median is reported.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from tempscale.corruptions import CORRUPTIONS, corrupt


def time_once(x: torch.Tensor, name: str, severity: int) -> float:
    if x.is_cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    corrupt(x, name, severity, seed=0)
    if x.is_cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--severity", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    x = torch.rand(args.batch, 3, args.size, args.size, generator=torch.Generator().manual_seed(0)).to(args.device)
    print(f"batch {args.batch}×3×{args.size}×{args.size}, severity {args.severity}, {args.device}, "
          f"{args.threads} threads, median of {args.repeats}")
    total = 0.0
    for name in CORRUPTIONS:
        time_once(x, name, args.severity)  # warm-up
        seconds = statistics.median(time_once(x, name, args.severity) for _ in range(args.repeats))
        total += seconds
        print(f"{name:18s} {args.batch / seconds:10.0f} images/s  ({seconds * 1000:7.1f} ms/batch)")
    print(f"{'all 19':18s} {args.batch * len(CORRUPTIONS) / total:10.0f} images/s  ({total:.2f} s for one batch "
          f"through every corruption)")


if __name__ == "__main__":
    main()
