"""Seconds per training epoch on this machine: the small models on digits and on 10k CIFAR-sized images.

    .venv/bin/python benchmarks/bench_training.py

Prints figures; asserts nothing (speed targets live here, not in the tests). Numbers on a 2-core CPU vary 4–8× when
another process is busy: run it on an idle machine.
"""
from __future__ import annotations

import tempfile
import time

import torch

from tempscale.data import TensorImageDataset
from tempscale.models import build_model
from tempscale.profiles import get_profile
from tempscale.methods import standard_loss
from tempscale.runs import Run, train_run
from tempscale.train import augment, iterate_batches, make_optimizer


def digits_epoch_seconds(arch: str) -> float:
    spec = get_profile("quick").spec(1.0, arch=arch, epochs=3)
    with tempfile.TemporaryDirectory() as tmp:
        train_run(Run(spec, tmp), progress=False)
        history = Run(spec, tmp).history
    return sum(h["seconds"] for h in history[1:]) / (len(history) - 1)  # first epoch includes warm-up


def synthetic_epoch_seconds(arch: str, n: int = 10_000, size: int = 32, batch_size: int = 128) -> float:
    gen = torch.Generator().manual_seed(0)
    data = TensorImageDataset(torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=gen),
                              torch.randint(0, 10, (n,), generator=gen))
    spec = get_profile("paper").spec(1.0, arch=arch, dataset="digits", batch_size=batch_size)
    model = build_model(arch, 10).to(memory_format=torch.channels_last).train()
    opt, _ = make_optimizer(spec, model)
    t0 = time.perf_counter()
    for x, y in iterate_batches(data, torch.randperm(n, generator=gen), batch_size):
        x = augment(x, "crop+flip", gen).contiguous(memory_format=torch.channels_last)
        loss = standard_loss(model, x, y, spec)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return time.perf_counter() - t0


if __name__ == "__main__":
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for arch in ("resnet8", "resnet20"):
        print(f"digits quick profile (1347 images, 16×16, batch 64), {arch}: {digits_epoch_seconds(arch):.2f} s/epoch")
    for arch in ("resnet8", "resnet20"):
        print(f"10k CIFAR-sized images (32×32, batch 128), {arch}: {synthetic_epoch_seconds(arch):.1f} s/epoch")
