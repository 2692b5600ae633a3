"""One training loop for every run: the paper's recipes, τ only in the training loss, resumable, divergence-aware.

`fit` knows nothing of where a run is stored: the caller (the run store, `tempscale.runs`) passes a `CheckpointIO`
that saves and reloads the per-epoch state, and writes what `fit` returns.

Determinism: every epoch draws its shuffling, augmentation and any other randomness from a generator seeded by
(run seed, epoch), so a run resumed from its epoch-k checkpoint reproduces the uninterrupted run exactly.

Fast path (every device, the CPU included): an in-memory dataset stays on the training device as uint8; each epoch's
random draws (shuffle, crop offsets, flips) are made up front on the CPU generator, in the order the per-batch
`augment` makes them, and copied to the device once; batches are indexed, cropped and flipped there (as uint8, then
scaled to [0, 1]; the model normalises); the loss is summed on the device and checked for divergence once per epoch,
so a step never waits for the host. Crop and flip commute with the uint8 → float scaling, so the CPU numbers are
bit-identical to the per-batch path's. On CUDA: bf16 autocast and channels_last (convnets); `compile_model=True`
wraps the model in `torch.compile`. What was used, and the determinism flags, go into the result's provenance.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Iterator, Protocol

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from .data import NUM_CLASSES, STATS, DataBundle, TensorImageDataset, load_dataset
from .inference import eval_mode, pick_device
from .methods.base import METHODS
from .provenance import collect_provenance, determinism_flags
from .spec import RunSpec

Batch = tuple[torch.Tensor, torch.Tensor]
Optimizer = torch.optim.Optimizer
Scheduler = torch.optim.lr_scheduler.LRScheduler


# --- models and optimisers ----------------------------------------------------------------------------------------

def dataset_stats(spec: RunSpec) -> tuple[int, tuple, tuple]:
    """(number of classes, mean, std) of the spec's dataset, without loading it when the numbers are known."""
    if spec.dataset in STATS:
        return NUM_CLASSES[spec.dataset], *STATS[spec.dataset]
    bundle = load_dataset(spec.dataset, spec.image_size)  # digits (cheap) or image folders: statistics from data
    return bundle.num_classes, bundle.mean, bundle.std


def build_for_spec(spec: RunSpec, bundle: DataBundle | None = None) -> nn.Module:
    """A fresh model for `spec` from its method (pretrained encoder weights included when the spec's init says so)."""
    if bundle is not None:
        num_classes, mean, std = bundle.num_classes, bundle.mean, bundle.std
    else:
        num_classes, mean, std = dataset_stats(spec)
    return METHODS[spec.method].build(spec, num_classes, mean, std)


def make_optimizer(spec: RunSpec, model: nn.Module) -> tuple[Optimizer, Scheduler]:
    """The spec's optimiser over every parameter and its learning-rate schedule (stepped once per epoch)."""
    if spec.optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=spec.lr, momentum=spec.momentum, weight_decay=spec.weight_decay)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)
    if spec.schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=spec.epochs)
    else:
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
    return opt, sched


# --- devices ------------------------------------------------------------------------------------------------------

def uses_channels_last(spec: RunSpec) -> bool:
    # ≈ 20% faster for convnets on CPUs and on tensor-core GPUs; transformers gain nothing.
    return not spec.arch.startswith("vit")


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """bf16 on CUDA (tensor cores, no loss scaling needed); None (full precision) elsewhere."""
    return torch.bfloat16 if torch.device(device).type == "cuda" else None


def _autocast(device: torch.device):
    dtype = autocast_dtype(device)
    return torch.autocast("cuda", dtype=dtype) if dtype is not None else torch.autocast("cpu", enabled=False)


def model_layout(x: torch.Tensor, channels_last: bool) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def on_device(dataset: Dataset, device: torch.device) -> Dataset:
    """In-memory sets moved to `device` whole (uint8); file-backed sets stay where they are (read per batch)."""
    return dataset.to(device) if isinstance(dataset, TensorImageDataset) else dataset


# --- data feeding -------------------------------------------------------------------------------------------------

def epoch_seed(seed: int, epoch: int) -> int:
    return seed * 1_000_003 + epoch


def training_subset(dataset: Dataset, n_train: int | None) -> torch.Tensor:
    """Indices of the training examples used: a fixed seeded subset when n_train is set (same for every τ)."""
    n = len(dataset)
    if n_train is None or n_train >= n:
        return torch.arange(n)
    return torch.randperm(n, generator=torch.Generator().manual_seed(0))[:n_train].sort().values


def iterate_batches(dataset: Dataset, indices: torch.Tensor, batch_size: int, num_workers: int = 0) -> Iterator[Batch]:
    """Yield (x, y) over `indices` in order; in-memory sets are indexed directly (no per-item collation)."""
    if isinstance(dataset, TensorImageDataset):
        for start in range(0, len(indices), batch_size):
            yield dataset.batch(indices[start:start + batch_size])
        return
    loader = DataLoader(dataset, batch_size=batch_size, sampler=indices.tolist(), num_workers=num_workers)
    yield from loader


def crop_padding(height: int) -> int:
    """Zero padding of the random crop: size/8 pixels (4 at 32×32)."""
    return max(1, height // 8)


def augment(x: torch.Tensor, mode: str, generator: torch.Generator) -> torch.Tensor:
    """Random crop with zero padding (`crop_padding`) and, for 'crop+flip', horizontal flips: one batch, drawing
    from `generator` (the per-batch path for file-backed sets; `EpochPlan` draws the same numbers up front)."""
    if mode == "none":
        return x
    b, _, h, _ = x.shape
    pad = crop_padding(h)
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=generator)
    flip = torch.rand(b, generator=generator) < 0.5 if mode == "crop+flip" else None
    return crop_flip(x, dy, dx, flip, pad)


@dataclass(frozen=True)
class EpochPlan:
    """One epoch's randomness, drawn on the CPU generator in `augment`'s order (shuffle; then per batch: row
    offsets, column offsets, flips) and moved to the training device in one copy."""

    order: torch.Tensor               # dataset indices in visiting order
    dy: torch.Tensor | None           # crop offsets per visited example (None: no augmentation)
    dx: torch.Tensor | None
    flip: torch.Tensor | None         # flip per visited example (None: no flips)

    @classmethod
    def draw(cls, indices: torch.Tensor, batch_size: int, mode: str, pad: int, generator: torch.Generator,
             device: torch.device) -> "EpochPlan":
        order = indices[torch.randperm(len(indices), generator=generator)]
        dy, dx, flip = [], [], []
        if mode != "none":
            for start in range(0, len(order), batch_size):
                b = min(batch_size, len(order) - start)
                dy.append(torch.randint(0, 2 * pad + 1, (b,), generator=generator))
                dx.append(torch.randint(0, 2 * pad + 1, (b,), generator=generator))
                if mode == "crop+flip":
                    flip.append(torch.rand(b, generator=generator) < 0.5)
        joined = [torch.cat(parts).to(device) if parts else None for parts in (dy, dx, flip)]
        return cls(order.to(device), *joined)


def crop_flip(images: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, flip: torch.Tensor | None,
              pad: int) -> torch.Tensor:
    """`augment`'s crop and flip for given offsets, on any dtype and device (uint8 on the GPU in the fast path)."""
    b, c, h, w = images.shape
    padded = torch.nn.functional.pad(images, (pad, pad, pad, pad))
    dev = images.device
    rows = (dy[:, None] + torch.arange(h, device=dev))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=dev))[:, None, None, :]
    out = padded[torch.arange(b, device=dev)[:, None, None, None], torch.arange(c, device=dev)[None, :, None, None],
                 rows, cols]
    if flip is not None:
        out = torch.where(flip[:, None, None, None], out.flip(-1), out)
    return out


def planned_batches(data: TensorImageDataset, plan: EpochPlan, batch_size: int, pad: int) -> Iterator[Batch]:
    """(x in [0, 1], y) batches of an in-memory set on its own device, augmented as `plan` says."""
    for start in range(0, len(plan.order), batch_size):
        part = slice(start, start + batch_size)
        index = plan.order[part]
        x = data.images[index]
        if plan.dy is not None:
            x = crop_flip(x, plan.dy[part], plan.dx[part], None if plan.flip is None else plan.flip[part], pad)
        yield x.float() / 255.0, data.labels[index]


def epoch_batches(data: Dataset, indices: torch.Tensor, spec: RunSpec, generator: torch.Generator,
                  device: torch.device) -> Iterator[Batch]:
    """The epoch's augmented training batches on `device`: planned on the device for in-memory sets, else read and
    augmented per batch on the host (the same draws either way)."""
    if isinstance(data, TensorImageDataset):
        pad = crop_padding(data.images.shape[-2])
        plan = EpochPlan.draw(indices, spec.batch_size, spec.augment, pad, generator, data.device)
        for x, y in planned_batches(data, plan, spec.batch_size, pad):
            yield x.to(device), y.to(device)
        return
    order = indices[torch.randperm(len(indices), generator=generator)]
    for x, y in iterate_batches(data, order, spec.batch_size):
        yield augment(x, spec.augment, generator).to(device), y.to(device)


# --- evaluation ---------------------------------------------------------------------------------------------------

@torch.no_grad()
def count_errors(model: nn.Module, dataset: Dataset, device: torch.device, batch_size: int = 512,
                 channels_last: bool = False) -> tuple[int, int]:
    """(misclassified, total) on a dataset at τ = 1 (argmax is τ-invariant anyway)."""
    device = torch.device(device)
    dataset = on_device(dataset, device)
    index_device = dataset.device if isinstance(dataset, TensorImageDataset) else torch.device("cpu")
    errors, total = torch.zeros((), dtype=torch.long, device=device), 0
    with eval_mode(model):
        for x, y in iterate_batches(dataset, torch.arange(len(dataset), device=index_device), batch_size):
            x = model_layout(x.to(device), channels_last)
            with _autocast(device):
                pred = model(x).argmax(1)
            errors += (pred != y.to(device)).sum()  # summed on the device: one sync per evaluation, not per batch
            total += len(y)
    return int(errors), total


# --- the training loop --------------------------------------------------------------------------------------------

class CheckpointIO(Protocol):
    """Where `fit` keeps its per-epoch state. The state is a dict: model, optimizer, scheduler (state dicts),
    history (list of per-epoch rows), epoch (epochs done), elapsed_s (training seconds so far)."""

    def load(self, device: torch.device) -> dict[str, Any] | None:
        """The last saved state, or None when there is none (raise if it exists but cannot be trusted)."""

    def save(self, state: dict[str, Any]) -> None:
        """Keep `state` (called after every finished epoch)."""


@dataclass
class TrainResult:
    model: nn.Module                # final weights: the last epoch's, or the last finite ones after divergence
    history: list[dict[str, Any]]   # one row per finished epoch
    summary: dict[str, Any]         # clean accuracy, divergence, provenance: the run's result.json


class StopTraining(Exception):
    """Raised by `fit(stop_after=k)` after epoch k (tests simulate an interruption with it)."""


def _all_finite(model: nn.Module) -> bool:
    return all(torch.isfinite(t).all() for t in model.state_dict().values() if t.is_floating_point())


def fast_path_record(device: torch.device, train_set: Dataset, channels_last: bool, compiled: bool) -> dict:
    """How the run was computed, beyond its spec: for the provenance."""
    dtype = autocast_dtype(device)
    return {"data_on_device": isinstance(train_set, TensorImageDataset), "channels_last": channels_last,
            "autocast": None if dtype is None else str(dtype).removeprefix("torch."), "compile": compiled,
            **determinism_flags()}


def fit(spec: RunSpec, bundle: DataBundle, device: str | torch.device | None = None,
        checkpoint: CheckpointIO | None = None, progress: bool = True, stop_after: int | None = None,
        compile_model: bool = False) -> TrainResult:
    """Train `spec` on `bundle` to completion, resuming from `checkpoint` when it holds a state.

    A non-finite loss or weights stop training at that epoch (recorded, not raised) and the last finite weights
    are returned. `stop_after=k` raises StopTraining after epoch k. `compile_model` trains through
    `torch.compile(model)` (the weights are shared; evaluation runs the plain module).
    """
    dev = pick_device(device)
    torch.manual_seed(spec.seed)  # initial weights depend on the run's seed only
    model = build_for_spec(spec, bundle=bundle).to(dev)
    channels_last = uses_channels_last(spec)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    step_model = torch.compile(model) if compile_model else model
    train_set, test_set = on_device(bundle.train, dev), on_device(bundle.test, dev)
    opt, sched = make_optimizer(spec, model)
    history, start_epoch, elapsed_before = [], 0, 0.0
    state = checkpoint.load(dev) if checkpoint is not None else None
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        history, start_epoch, elapsed_before = state["history"], state["epoch"], state["elapsed_s"]
    indices = training_subset(bundle.train, spec.n_train)
    loss_fn = METHODS[spec.method].loss
    # float64 sum of float32 losses × batch sizes: the same number as summing them as Python floats (MPS has no
    # float64, so it sums in float32).
    sum_dtype = torch.float32 if dev.type == "mps" else torch.float64
    t0, diverged, diverged_epoch = time.perf_counter(), False, None
    bar = tqdm(range(start_epoch, spec.epochs), desc=spec.folder_name()[:48], disable=not progress, leave=False)
    for epoch in bar:
        t_epoch = time.perf_counter()
        gen = torch.Generator().manual_seed(epoch_seed(spec.seed, epoch))
        torch.manual_seed(epoch_seed(spec.seed, epoch))  # any layer randomness (dropout, drop-path) per epoch too
        model.train()
        loss_sum, seen = torch.zeros((), dtype=sum_dtype, device=dev), 0
        for x, y in epoch_batches(train_set, indices, spec, gen, dev):
            with _autocast(dev):
                loss = loss_fn(step_model, model_layout(x, channels_last), y, spec)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.detach().to(sum_dtype) * len(y)
            seen += len(y)
        # Checked once per epoch, not per step (a check waits for the device): a non-finite loss makes the sum
        # non-finite, and a finite loss can still leave inf/NaN weights behind. Either way the epoch is discarded
        # and the last checkpoint's weights are the result, as if training had stopped at the bad step.
        if not torch.isfinite(loss_sum) or not _all_finite(model):
            diverged, diverged_epoch = True, epoch
            break
        sched.step()
        errors, total = count_errors(model, test_set, dev, channels_last=channels_last)
        history.append({"epoch": epoch + 1, "train_loss": float(loss_sum) / max(seen, 1), "test_errors": errors,
                        "test_total": total, "test_acc": 1 - errors / total, "lr": opt.param_groups[0]["lr"],
                        "seconds": time.perf_counter() - t_epoch})
        bar.set_postfix(loss=f"{history[-1]['train_loss']:.3f}", acc=f"{history[-1]['test_acc']:.3f}")
        if checkpoint is not None:
            elapsed = elapsed_before + time.perf_counter() - t0
            checkpoint.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                             "scheduler": sched.state_dict(), "history": history, "epoch": epoch + 1,
                             "elapsed_s": elapsed})
        if stop_after is not None and epoch + 1 >= stop_after and epoch + 1 < spec.epochs:
            raise StopTraining(f"stopped after epoch {epoch + 1} as asked")
    if diverged:  # keep the last finite weights (those of the last checkpoint), never NaN ones
        model = build_for_spec(spec, bundle=bundle).to(dev)
        last = checkpoint.load(dev) if checkpoint is not None else None
        if last is not None:
            model.load_state_dict(last["model"])
    elapsed = elapsed_before + time.perf_counter() - t0
    if history and not diverged:   # the last epoch already scored these weights: a full test pass less per run
        errors, total = history[-1]["test_errors"], history[-1]["test_total"]
    else:
        errors, total = count_errors(model, test_set, dev)
    summary = {
        "clean_acc": 1 - errors / total, "test_examples": total, "epochs_done": len(history),
        "diverged": diverged, "diverged_epoch": None if diverged_epoch is None else diverged_epoch + 1,
        "final_train_loss": history[-1]["train_loss"] if history else math.nan,
        "train_examples": len(indices), "data_source": bundle.source, "init": spec.init,
        "provenance": {**collect_provenance(dev, elapsed),
                       "training": fast_path_record(dev, train_set, channels_last, compile_model)},
    }
    return TrainResult(model, history, summary)


__all__ = ["fit", "TrainResult", "CheckpointIO", "StopTraining", "build_for_spec", "dataset_stats",
           "make_optimizer", "pick_device", "count_errors", "augment", "iterate_batches", "training_subset",
           "epoch_seed", "uses_channels_last", "autocast_dtype", "EpochPlan", "crop_flip", "epoch_batches",
           "on_device", "model_layout"]
