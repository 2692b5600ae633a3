"""The trainer's time per epoch against a bare PyTorch loop on the same model, data and batch, and its images/s.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_trainer.py                      # resnet20, CPU
    .venv/bin/python benchmarks/bench_trainer.py --arch resnet50 --n 50000 --device cuda  # one CIFAR-10-sized epoch

Both loops train the same freshly seeded model on the same synthetic CIFAR-sized uint8 images (a DataBundle, so no
data files are needed): SGD, per-example random crop + flip, τ-scaled cross-entropy, channels_last for convnets,
and one test-set evaluation per epoch. The trainer is `tempscale.train.fit` with a run-store checkpoint every epoch
(what a real run does); the bare loop is what one would write by hand. The first epoch of each is warm-up and not
counted; each is run twice, alternately, and the fastest epoch of each counts (other processes only slow epochs
down). The overhead goal on a CPU is ≤ 5%.

Writes the numbers to benchmarks/results/<device>-<arch>-<size>px.json; `python -m tempscale profiles --estimate`
uses a CUDA result there instead of its FLOPs assumption.
"""
from __future__ import annotations

import argparse
import datetime
import json
import re
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from tempscale.data import DataBundle, STATS, TensorImageDataset
from tempscale.profiles import get_profile
from tempscale.provenance import device_description
from tempscale.runs import Run, RunCheckpoint
from tempscale.train import build_for_spec, fit, make_optimizer, pick_device, uses_channels_last

RESULTS = Path(__file__).resolve().parent / "results"


def synthetic_bundle(n: int, n_test: int, size: int) -> DataBundle:
    gen = torch.Generator().manual_seed(0)

    def split(count):
        return TensorImageDataset(torch.randint(0, 256, (count, 3, size, size), dtype=torch.uint8, generator=gen),
                                  torch.randint(0, 10, (count,), generator=gen))

    return DataBundle("cifar10", split(n), split(n_test), 10, size, *STATS["cifar10"], source="synthetic")


def trainer_epochs(spec, bundle, device) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        run = Run(spec, folder=Path(tmp) / "run")
        run.dir.mkdir()
        result = fit(spec, bundle, device, checkpoint=RunCheckpoint(run), progress=False)
    return [row["seconds"] for row in result.history]


def bare_epochs(spec, bundle, device) -> list[float]:
    """The same training by hand: index a batch, crop + flip it, step; evaluate once per epoch."""
    torch.manual_seed(spec.seed)
    model = build_for_spec(spec, bundle=bundle).to(device)
    channels_last = uses_channels_last(spec)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt, sched = make_optimizer(spec, model)
    images, labels = bundle.train.images.to(device), bundle.train.labels.to(device)
    test_x, test_y = bundle.test.images.to(device), bundle.test.labels.to(device)
    n, (c, h, w), pad = len(labels), images.shape[1:], 4
    amp = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    seconds = []
    for _ in range(spec.epochs):
        t0 = time.perf_counter()
        model.train()
        for index in torch.randperm(n, device=device).split(spec.batch_size):
            b = len(index)
            x = F.pad(images[index], (pad,) * 4)
            rows = (torch.randint(0, 2 * pad + 1, (b, 1), device=device) + torch.arange(h, device=device))
            cols = (torch.randint(0, 2 * pad + 1, (b, 1), device=device) + torch.arange(w, device=device))
            x = x[torch.arange(b, device=device)[:, None, None, None], torch.arange(c, device=device)[:, None, None],
                  rows[:, None, :, None], cols[:, None, None, :]]
            x = torch.where(torch.rand(b, 1, 1, 1, device=device) < 0.5, x.flip(-1), x).float() / 255
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with amp:
                loss = F.cross_entropy(model(x) / spec.tau, labels[index])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sched.step()
        model.eval()
        with torch.no_grad(), amp:
            errors = sum(int((model(x.float() / 255).argmax(1) != y).sum())
                         for x, y in zip(test_x.split(512), test_y.split(512)))
        seconds.append(time.perf_counter() - t0)
        assert 0 <= errors <= len(test_y)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--arch", default="resnet20")
    parser.add_argument("--n", type=int, default=2560, help="training images per epoch")
    parser.add_argument("--n-test", type=int, default=512)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=3, help="per measurement; the first is warm-up")
    parser.add_argument("--device")
    args = parser.parse_args()
    device = pick_device(args.device)
    spec = get_profile("paper").spec(1.0, arch=args.arch, epochs=args.epochs, batch_size=args.batch_size,
                                     init="scratch")
    bundle = synthetic_bundle(args.n, args.n_test, args.size)
    print(f"torch {torch.__version__}, {device_description(device)}; {args.arch}, {args.n} images at "
          f"{args.size}×{args.size}, batch {args.batch_size}, {args.n_test} test images, {args.epochs} epochs × 2")
    trainer, bare = [], []
    for _ in range(2):
        bare += bare_epochs(spec, bundle, device)[1:]
        trainer += trainer_epochs(spec, bundle, device)[1:]
    best_trainer, best_bare = min(trainer), min(bare)
    overhead = best_trainer / best_bare - 1
    record = {
        "arch": args.arch, "image_size": args.size, "batch_size": args.batch_size, "n_train": args.n,
        "n_test": args.n_test, "device": device_description(device), "threads": torch.get_num_threads(),
        "torch": torch.__version__, "trainer_epoch_s": best_trainer, "bare_epoch_s": best_bare,
        "trainer_epochs_s": trainer, "bare_epochs_s": bare, "overhead": overhead,
        "trainer_images_per_s": args.n / best_trainer, "bare_images_per_s": args.n / best_bare,
        "measured_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    print(f"trainer {best_trainer:.3f} s/epoch ({record['trainer_images_per_s']:.0f} images/s), bare loop "
          f"{best_bare:.3f} s/epoch ({record['bare_images_per_s']:.0f} images/s): overhead {overhead:+.1%} "
          f"(goal on a CPU: ≤ 5%)")
    RESULTS.mkdir(exist_ok=True)
    kind = re.sub(r"[^A-Za-z0-9]+", "_", record["device"].split(" (")[0]).strip("_").lower()
    out = RESULTS / f"{kind}-{args.arch}-{args.size}px.json"
    out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
