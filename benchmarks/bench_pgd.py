"""PGD-20 cost of `tempscale.robustness.evaluate` against calling torchattacks.PGD directly, same model and images.

    python benchmarks/bench_pgd.py [--model resnet8|cnn] [--n 450] [--batch 256] [--threads 2] [--device cpu]

The model is trained for a few epochs on sklearn digits (so clean accuracy is realistic: our PGD skips examples that
are already misclassified, which an untrained model would make unfairly cheap). ``resnet8`` comes from
`tempscale.models` at 32×32; ``cnn`` is the 16×16 CNN of tests/conftest.py. Both paths get one untimed warm-up
batch, then one timed run over the whole set (no cache: the attack itself is timed). evaluate's time includes the
data fingerprint and the per-example best-so-far bookkeeping (one extra forward per step-0/final iterate).
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from tempscale.attacks import attack_spec
from tempscale.robustness import evaluate


def digits(size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    x = F.interpolate(x, size=size, mode="bilinear", align_corners=False).clamp(0, 1).repeat(1, 3, 1, 1)
    y = torch.tensor(data.target)
    train, test = train_test_split(np.arange(len(y)), test_size=0.25, random_state=0, stratify=y.numpy())
    return x[train], y[train], x[test], y[test]


def build(kind: str) -> tuple[nn.Module, int, str]:
    if kind == "resnet8":
        try:
            from tempscale.models import build_model
            return build_model("resnet8", num_classes=10), 32, "tempscale.models resnet8 (32×32)"
        except (ImportError, TypeError) as err:
            print(f"tempscale.models unavailable ({err}); falling back to the conftest CNN")
    cnn = nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))
    return cnn, 16, "conftest CNN (16×16)"


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int, device: str) -> None:
    model.to(device).train()
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    for _ in range(epochs):
        perm = torch.randperm(len(y))
        for i in range(0, len(y), 64):
            b = perm[i:i + 64]
            opt.zero_grad()
            F.cross_entropy(model(x[b].to(device)), y[b].to(device)).backward()
            opt.step()
    model.eval()


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def torchattacks_pgd(model, x, y, batch: int, device: str) -> torch.Tensor:
    import torchattacks

    spec = attack_spec("pgd20")
    attack = torchattacks.PGD(model, eps=spec.eps, alpha=spec.alpha, steps=spec.steps, random_start=True)
    correct = []
    for i in range(0, len(y), batch):
        xb, yb = x[i:i + batch].to(device), y[i:i + batch].to(device)
        x_adv = attack(xb, yb)
        with torch.no_grad():
            correct.append((model(x_adv).argmax(1) == yb).cpu())
    return torch.cat(correct)


def timed(fn, device: str):
    sync(device)
    start = time.perf_counter()
    out = fn()
    sync(device)
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet8", choices=["resnet8", "cnn"])
    parser.add_argument("--n", type=int, default=450)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    torch.manual_seed(0)  # the initial weights too: the same model on every run
    model, size, label = build(args.model)
    x_train, y_train, x, y = digits(size)
    train(model, x_train, y_train, args.epochs, args.device)
    x, y = x[:args.n].to(args.device), y[:args.n].to(args.device)
    spec = attack_spec("pgd20")

    evaluate(model, x[:32], y[:32], spec)                      # warm-up, both paths
    torchattacks_pgd(model, x[:32], y[:32], args.batch, args.device)
    clean = evaluate(model, x, y, "clean").accuracy
    ours, ours_s = timed(lambda: evaluate(model, x, y, spec, batch_size=args.batch), args.device)
    theirs, theirs_s = timed(lambda: torchattacks_pgd(model, x, y, args.batch, args.device), args.device)

    print(f"model: {label}, {len(y)} images, batch {args.batch}, {args.device}, {torch.get_num_threads()} threads")
    print(f"clean accuracy                 {100 * clean:6.2f} %")
    print(f"tempscale evaluate (PGD-20)    {100 * ours.accuracy:6.2f} %   {ours_s:7.2f} s")
    print(f"torchattacks.PGD directly      {100 * theirs.float().mean():6.2f} %   {theirs_s:7.2f} s")
    print(f"time ratio evaluate / torchattacks: {ours_s / theirs_s:.2f}")


if __name__ == "__main__":
    main()
