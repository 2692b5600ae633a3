"""What a profile costs before it runs: FLOPs per training run, counted on the real architecture, and GPU-hours.

    python -m tempscale profiles --estimate

FLOPs are counted by `torch.utils.flop_counter.FlopCounterMode` on one training step (forward and backward) of the
real architecture at the run's input size, on the meta device (shapes only: nothing is computed, so ResNet50 and
ViT-S cost milliseconds to count). Per-epoch test evaluation (one forward over the test split) is included; attacks,
audits, Madry AT and LDD are not (they are per-notebook budgets, not training runs).

GPU-hours come from a measured throughput when `benchmarks/bench_trainer.py` has written one for that architecture
and input size on a CUDA device (`benchmarks/results/*.json`), else from the FLOPs at `ASSUMED_UTILISATION` of
`ASSUMED_GPU`'s dense bf16 peak; each line says which.
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from .data import NATIVE_SIZE, NUM_CLASSES
from .models import build_model
from .paths import project_root
from .profiles import Profile

ASSUMED_GPU = "NVIDIA H100 SXM"
ASSUMED_PEAK_FLOPS = 989e12     # its dense (no sparsity) bf16 tensor-core peak, from NVIDIA's datasheet
# An assumption, not a measurement (a bench_trainer result replaces it): convnets on 32×32 inputs at batch 128 keep
# tensor cores poorly fed, so a fraction of peak well below the 40-50% large-image training reaches.
ASSUMED_UTILISATION = 0.15

SPLIT_SIZES = {  # (train, test) examples of each dataset's official splits
    "digits": (1347, 450), "cifar10": (50_000, 10_000), "cifar100": (50_000, 10_000),
    "tinyimagenet": (100_000, 10_000),
}
# The paper's and thesis' training grid (Tables I, II, 3.x): each profile cell is run for every τ and seed.
PAPER_CELLS = tuple((dataset, arch) for arch in ("resnet50", "vit_small_patch16_224")
                    for dataset in ("cifar10", "cifar100", "tinyimagenet"))
RESULTS_DIR = Path("benchmarks") / "results"


@dataclass(frozen=True)
class StepFlops:
    forward: float      # per image
    train: float        # per image, forward + backward

    @property
    def backward_ratio(self) -> float:
        return self.train / self.forward


@functools.cache
def count_flops(arch: str, image_size: int, num_classes: int, batch: int = 2) -> StepFlops:
    """FLOPs per image of a forward pass and of a training step (forward + backward) of `arch` at `image_size`."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        model = build_model(arch, num_classes).train()
        x = torch.rand(batch, 3, image_size, image_size)
    with FlopCounterMode(display=False) as forward_counter:
        model(x)
    with FlopCounterMode(display=False) as train_counter:
        model(x).sum().backward()
    return StepFlops(forward_counter.get_total_flops() / batch, train_counter.get_total_flops() / batch)


@dataclass(frozen=True)
class RunCost:
    dataset: str
    arch: str
    image_size: int
    epochs: int
    runs: int                   # training runs of the profile for this cell (τ grid × seeds)
    flops: StepFlops
    run_flops: float            # one run: epochs × (train images × train FLOPs + test images × forward FLOPs)
    gpu_hours_per_run: float
    basis: str                  # how the hours were obtained

    def line(self) -> str:
        return (f"  {self.dataset} {self.arch} at {self.image_size}px: {self.flops.forward / 1e9:.3g} GFLOP forward, "
                f"{self.flops.train / 1e9:.3g} GFLOP per training image (×{self.flops.backward_ratio:.2f}); "
                f"one run ({self.epochs} epochs) {self.run_flops:.3g} FLOP ≈ {self.gpu_hours_per_run:.3g} GPU-h; "
                f"{self.runs} runs ≈ {self.runs * self.gpu_hours_per_run:.3g} GPU-h [{self.basis}]")


def measured_throughput(arch: str, image_size: int, root: Path | None = None) -> tuple[float, str] | None:
    """(training images/s, device) from the newest CUDA benchmark result for `arch` at `image_size`, if any."""
    folder = (root or project_root()) / RESULTS_DIR
    best = None
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else ():
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if (record.get("arch") == arch and record.get("image_size") == image_size
                and str(record.get("device", "")).startswith("cuda") and record.get("trainer_images_per_s")):
            if best is None or record.get("measured_at", "") > best.get("measured_at", ""):
                best = record
    return None if best is None else (float(best["trainer_images_per_s"]), best["device"])


def run_cost(profile: Profile, dataset: str, arch: str, root: Path | None = None) -> RunCost:
    spec = profile.spec(profile.taus[0], dataset=dataset, arch=arch)
    image_size = spec.image_size or NATIVE_SIZE.get(dataset, 32)
    n_train, n_test = SPLIT_SIZES.get(dataset, (50_000, 10_000))
    n_train = min(n_train, spec.n_train or n_train)
    flops = count_flops(arch, image_size, NUM_CLASSES.get(dataset, 10))
    run_flops = spec.epochs * (n_train * flops.train + n_test * flops.forward)
    measured = measured_throughput(arch, image_size, root)
    if measured is not None:
        images_per_s, device = measured
        hours = spec.epochs * n_train / images_per_s / 3600
        basis = f"measured {images_per_s:.0f} images/s on {device} (bench_trainer)"
    else:
        hours = run_flops / (ASSUMED_UTILISATION * ASSUMED_PEAK_FLOPS) / 3600
        basis = f"FLOPs at {ASSUMED_UTILISATION:.0%} of {ASSUMED_GPU} bf16 peak ({ASSUMED_PEAK_FLOPS / 1e12:.0f} TFLOP/s)"
    return RunCost(dataset, arch, image_size, spec.epochs, len(profile.taus) * len(profile.seeds), flops, run_flops,
                   hours, basis)


def profile_cells(profile: Profile) -> tuple[tuple[str, str], ...]:
    """The (dataset, architecture) cells a profile is run on: the paper grid for `paper`, else its own."""
    return PAPER_CELLS if profile.name == "paper" else ((profile.dataset, profile.arch),)


def estimate_lines(profile: Profile, root: Path | None = None) -> list[str]:
    costs = [run_cost(profile, dataset, arch, root) for dataset, arch in profile_cells(profile)]
    total = sum(c.runs * c.gpu_hours_per_run for c in costs)
    head = (f"{profile.name}: {sum(c.runs for c in costs)} training runs (τ grid × seeds per dataset × model) "
            f"≈ {total:.3g} GPU-h in all (training and per-epoch test evaluation; attacks, audits, Madry AT and "
            "LDD not included)")
    return [head, *(c.line() for c in costs)]


__all__ = ["ASSUMED_GPU", "ASSUMED_PEAK_FLOPS", "ASSUMED_UTILISATION", "PAPER_CELLS", "RunCost", "StepFlops",
           "count_flops", "estimate_lines", "measured_throughput", "run_cost"]
