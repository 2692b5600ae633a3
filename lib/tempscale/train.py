"""One trainer for every run: the paper's recipes, τ only in the training loss, resumable, divergence-aware.

Determinism: every epoch draws its shuffling, augmentation and any other randomness from a generator seeded by
(run seed, epoch), so a run resumed from its epoch-k checkpoint reproduces the uninterrupted run exactly.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset

from .data import DataBundle, TensorImageDataset, load_dataset
from .errors import CorruptCheckpointError
from .losses import temperature_ce
from .models import build_model, weights_for_init
from .provenance import collect_provenance

# --- methods: how a spec becomes a model and a loss -------------------------------------------------------------


@dataclass(frozen=True)
class Method:
    build: Callable[["RunSpec", int, tuple, tuple], nn.Module]   # (spec, num_classes, mean, std) -> model
    loss: Callable[[nn.Module, torch.Tensor, torch.Tensor, "RunSpec"], torch.Tensor]
    description: str


METHODS: dict[str, Method] = {}


def register_method(name: str, build, loss, description: str) -> None:
    METHODS[name] = Method(build, loss, description)


def build_classifier(spec, num_classes: int, mean, std) -> nn.Module:
    return build_model(spec.arch, num_classes, mean, std, weights=weights_for_init(spec.init),
                       vit_img_size=spec.method_args.get("vit_img_size"))


def standard_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, spec) -> torch.Tensor:
    """Eq. 3: CE(z / τ, y)."""
    return temperature_ce(model(x), y, spec.tau)


register_method("standard", build_classifier, standard_loss, "temperature-scaled cross-entropy (Eq. 3)")


def _bundle_stats(spec) -> tuple[int, tuple, tuple]:
    from .data import NUM_CLASSES, STATS

    if spec.dataset in STATS:
        return NUM_CLASSES[spec.dataset], *STATS[spec.dataset]
    bundle = load_dataset(spec.dataset, spec.image_size)  # digits (cheap) or image folders: statistics from data
    return bundle.num_classes, bundle.mean, bundle.std


def build_for_spec(spec, load_weights: bool = True, bundle: DataBundle | None = None) -> nn.Module:
    """A fresh model for `spec` (pretrained encoder weights included when the spec's init says so)."""
    if bundle is not None:
        num_classes, mean, std = bundle.num_classes, bundle.mean, bundle.std
    else:
        num_classes, mean, std = _bundle_stats(spec)
    return METHODS[spec.method].build(spec, num_classes, mean, std)


# --- devices -----------------------------------------------------------------------------------------------------

def pick_device(device: str | None = None) -> torch.device:
    return torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))


def uses_channels_last(spec) -> bool:
    # ≈ 20% faster for convnets on this CPU and on tensor-core GPUs; transformers gain nothing.
    return not spec.arch.startswith("vit")


# --- data feeding ------------------------------------------------------------------------------------------------

def epoch_seed(seed: int, epoch: int) -> int:
    return seed * 1_000_003 + epoch


def training_subset(dataset: Dataset, n_train: int | None) -> torch.Tensor:
    """Indices of the training examples used: a fixed seeded subset when n_train is set (same for every τ)."""
    n = len(dataset)
    if n_train is None or n_train >= n:
        return torch.arange(n)
    return torch.randperm(n, generator=torch.Generator().manual_seed(0))[:n_train].sort().values


def iterate_batches(dataset: Dataset, indices: torch.Tensor, batch_size: int, num_workers: int = 0):
    """Yield (x, y) over `indices` in order; in-memory sets are indexed directly (no per-item collation)."""
    if isinstance(dataset, TensorImageDataset):
        for start in range(0, len(indices), batch_size):
            yield dataset.batch(indices[start:start + batch_size])
        return
    loader = DataLoader(dataset, batch_size=batch_size, sampler=indices.tolist(), num_workers=num_workers)
    yield from loader


def augment(x: torch.Tensor, mode: str, generator: torch.Generator) -> torch.Tensor:
    """Random crop with zero padding (size/8 pixels: 4 at 32×32) and, for 'crop+flip', horizontal flips."""
    if mode == "none":
        return x
    b, _, h, w = x.shape
    pad = max(1, h // 8)
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=generator)
    rows = (dy[:, None] + torch.arange(h))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w))[:, None, None, :]
    out = padded[torch.arange(b)[:, None, None, None], torch.arange(x.shape[1])[None, :, None, None], rows, cols]
    if mode == "crop+flip":
        flip = torch.rand(b, generator=generator) < 0.5
        out = torch.where(flip[:, None, None, None], out.flip(-1), out)
    return out


# --- evaluation --------------------------------------------------------------------------------------------------

@torch.no_grad()
def count_errors(model: nn.Module, dataset: Dataset, device: torch.device, batch_size: int = 512,
                 channels_last: bool = False) -> tuple[int, int]:
    """(misclassified, total) on a dataset at τ = 1 (argmax is τ-invariant anyway)."""
    was_training = model.training
    model.eval()
    errors = total = 0
    for x, y in iterate_batches(dataset, torch.arange(len(dataset)), batch_size):
        x = x.to(device, memory_format=torch.channels_last) if channels_last else x.to(device)
        with _autocast(device):
            pred = model(x).argmax(1).cpu()
        errors += int((pred != y).sum())
        total += len(y)
    model.train(was_training)
    return errors, total


def _autocast(device: torch.device):
    # bf16 autocast on CUDA (no loss scaling needed); full precision on the CPU.
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)


# --- the training loop -------------------------------------------------------------------------------------------

def make_optimizer(spec, model: nn.Module):
    if spec.optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=spec.lr, momentum=spec.momentum, weight_decay=spec.weight_decay)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)
    if spec.schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=spec.epochs)
    else:
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
    return opt, sched


def _all_finite(model: nn.Module) -> bool:
    return all(torch.isfinite(t).all() for t in model.state_dict().values() if t.is_floating_point())


class StopTraining(Exception):
    """Raised by a `stop_after` hook (tests simulate an interruption with it)."""


def train_run(run, data_dir=None, device: str | None = None, progress: bool = True, download: bool = False,
              stop_after: int | None = None) -> dict:
    """Train (or resume) `run` to completion and write its result. `stop_after=k` interrupts after epoch k."""
    from tqdm import tqdm

    from .runs import atomic_write_json, load_verified, save_verified

    spec, dev = run.spec, pick_device(device)
    bundle = load_dataset(spec.dataset, spec.image_size, data_dir, download=download)
    torch.manual_seed(spec.seed)  # initial weights depend on the run's seed only
    model = build_for_spec(spec, bundle=bundle).to(dev)
    channels_last = uses_channels_last(spec)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt, sched = make_optimizer(spec, model)
    history, start_epoch, elapsed_before = [], 0, 0.0
    run.dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(run.spec_path, spec.to_dict())
    if run.checkpoint_path.exists():
        state = load_verified(run.checkpoint_path, map_location=dev)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        history, start_epoch, elapsed_before = state["history"], state["epoch"], state["elapsed_s"]
    indices = training_subset(bundle.train, spec.n_train)
    loss_fn = METHODS[spec.method].loss
    t0, diverged, diverged_epoch = time.perf_counter(), False, None
    bar = tqdm(range(start_epoch, spec.epochs), desc=spec.folder_name()[:48], disable=not progress, leave=False)
    for epoch in bar:
        t_epoch = time.perf_counter()
        gen = torch.Generator().manual_seed(epoch_seed(spec.seed, epoch))
        torch.manual_seed(epoch_seed(spec.seed, epoch))  # any layer randomness (dropout, drop-path) per epoch too
        order = indices[torch.randperm(len(indices), generator=gen)]
        model.train()
        loss_sum, correct, seen = 0.0, 0, 0
        for x, y in iterate_batches(bundle.train, order, spec.batch_size):
            x = augment(x, spec.augment, gen)
            x = x.to(dev, memory_format=torch.channels_last) if channels_last else x.to(dev)
            y = y.to(dev)
            with _autocast(dev):
                loss = loss_fn(model, x, y, spec)
            if not torch.isfinite(loss):
                diverged, diverged_epoch = True, epoch
                break
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += float(loss.detach()) * len(y)
            seen += len(y)
        if diverged or not _all_finite(model):  # a finite loss can still leave inf/NaN weights behind
            diverged, diverged_epoch = True, epoch
            break
        sched.step()
        errors, total = count_errors(model, bundle.test, dev, channels_last=channels_last)
        history.append({"epoch": epoch + 1, "train_loss": loss_sum / max(seen, 1), "test_errors": errors,
                        "test_total": total, "test_acc": 1 - errors / total, "lr": opt.param_groups[0]["lr"],
                        "seconds": time.perf_counter() - t_epoch})
        bar.set_postfix(loss=f"{history[-1]['train_loss']:.3f}", acc=f"{history[-1]['test_acc']:.3f}")
        elapsed = elapsed_before + time.perf_counter() - t0
        save_verified({"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                       "history": history, "epoch": epoch + 1, "elapsed_s": elapsed}, run.checkpoint_path)
        atomic_write_json(run.history_path, history)
        if stop_after is not None and epoch + 1 >= stop_after and epoch + 1 < spec.epochs:
            raise StopTraining(f"stopped after epoch {epoch + 1} as asked")
    if diverged:  # keep the last finite weights (those of the last checkpoint), never NaN ones
        model = build_for_spec(spec, bundle=bundle).to(dev)
        if run.checkpoint_path.exists():
            model.load_state_dict(load_verified(run.checkpoint_path, map_location=dev)["model"])
    elapsed = elapsed_before + time.perf_counter() - t0
    errors, total = count_errors(model, bundle.test, dev)
    save_verified({k: v.detach().cpu() for k, v in model.state_dict().items()}, run.model_path)
    atomic_write_json(run.history_path, history)
    result = {
        "clean_acc": 1 - errors / total, "test_examples": total, "epochs_done": len(history),
        "diverged": diverged, "diverged_epoch": None if diverged_epoch is None else diverged_epoch + 1,
        "final_train_loss": history[-1]["train_loss"] if history else math.nan,
        "train_examples": len(indices), "data_source": bundle.source, "init": spec.init,
        "provenance": collect_provenance(dev, elapsed),
    }
    atomic_write_json(run.result_path, result)
    return result


__all__ = ["METHODS", "register_method", "build_for_spec", "train_run", "count_errors", "augment", "StopTraining",
           "CorruptCheckpointError"]

from . import methods  # noqa: E402,F401  (registers madry, ldd, ldd_pseudo: specs using them validate, runs reload)
