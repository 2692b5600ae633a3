"""Robust-accuracy evaluation with a resumable, self-checking cache.

`evaluate` runs one attack batch by batch. With a `cache_dir` every finished batch is written at once (atomically),
so an interrupted evaluation resumes at the first missing batch and a finished one is loaded without attacking:

    cache_dir/<spec.name>-<spec.key()>/<context>/batch-00000.pt …   per-batch correctness while running
                                                 correct.pt          per-example correctness when finished
                                                 result.json         summary; written last, marks completion

`<context>` hashes everything else the numbers depend on: the eval set (shape + bytes of x and y), the model's
weights, the batch size (random starts are drawn per batch) and the attack backend. So a different eval set,
a retrained model or a switch to the official AutoAttack never reuses another result. A cache file that cannot
be read back, or whose bytes no longer match its checksum (a ``.sha256`` sidecar for tensor files, an embedded digest
for result.json / meta.json), is deleted and recomputed with a `CacheWarning`: it is a cache, and is never used
unchecked. The batch files are deleted only after result.json is written, so a crash between any two writes is
finished from the batches already on disk without attacking again.

`evaluate_corruptions` gives the "-C" accuracy (mean over corruptions at one severity); `evaluate_suite` runs a list
of attacks plus the per-example worst case, which is what ``python -m tempscale eval --attacks … --json`` reports.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import torch
import torch.nn as nn

from . import attacks, corruptions
from .attacks import AttackSpec, attack_backend, attack_spec, worst_case
from .errors import CorruptCheckpointError, InvalidSpecError
from .io import load_verified, read_json_verified, remove_verified, save_verified, shared_lock, write_json_verified

CorruptionSource = Callable[[str, int], "tuple[torch.Tensor, torch.Tensor]"]
BatchFn = Callable[[int, int], torch.Tensor]


class CacheWarning(UserWarning):
    """A cached evaluation file was unreadable or inconsistent; it was deleted and its part recomputed."""


# --- results ------------------------------------------------------------------------------------------------------

@dataclass
class EvalResult:
    name: str
    spec: dict
    accuracy: float             # fraction in [0, 1]
    n: int
    correct: torch.Tensor       # bool per example (CPU): still classified correctly under the attack
    elapsed_s: float            # compute time summed over batches (also when resumed or loaded from the cache)
    backend: str                # e.g. "torchattacks 3.5.1" or "autoattack (official)"
    cached: bool = False        # True when loaded from a finished cache without attacking

    def to_dict(self) -> dict:
        return {"name": self.name, "accuracy": self.accuracy, "n": self.n, "n_correct": int(self.correct.sum()),
                "elapsed_s": self.elapsed_s, "backend": self.backend, "cached": self.cached, "spec": self.spec}


@dataclass
class CorruptionResult:
    severity: int
    source: str                                 # where the corrupted images came from
    per_corruption: dict[str, float]            # accuracy per corruption
    mean_accuracy: float                        # the "-C" accuracy: mean over corruptions
    n: dict[str, int]
    correct: dict[str, torch.Tensor]
    elapsed_s: float

    def to_dict(self) -> dict:
        return {"accuracy": self.mean_accuracy, "per_corruption": self.per_corruption, "severity": self.severity,
                "source": self.source, "n": self.n, "elapsed_s": self.elapsed_s}


# --- fingerprints -------------------------------------------------------------------------------------------------

def _hash_tensor(hasher, tensor: torch.Tensor) -> None:
    tensor = tensor.detach().cpu().contiguous()
    hasher.update(f"{tuple(tensor.shape)}|{tensor.dtype}|".encode())
    hasher.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())


def data_fingerprint(x: torch.Tensor, y: torch.Tensor) -> str:
    """Shape, dtype and bytes of the eval set: a different set never shares a cache entry."""
    hasher = hashlib.sha256()
    for tensor in (x, y):
        _hash_tensor(hasher, tensor)
    return hasher.hexdigest()[:16]


def model_fingerprint(model: nn.Module) -> str:
    """Hash of the state dict (names and values): a retrained model never reuses an old model's results."""
    hasher = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        hasher.update(name.encode())
        _hash_tensor(hasher, tensor)
    return hasher.hexdigest()[:16]


def _short_hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


# --- the batch cache ----------------------------------------------------------------------------------------------

def _discard(path: Path, reason: str) -> None:
    warnings.warn(f"evaluation cache file {path} is {reason}; deleting it and recomputing", CacheWarning,
                  stacklevel=3)
    remove_verified(path)


def _load_batch(path: Path, start: int, stop: int) -> dict | None:
    """A finished batch's record, or None (missing; or corrupt, which is deleted with a warning)."""
    if not path.exists():
        return None
    try:
        record = load_verified(path)
        correct = record["correct"]
        if (record["start"], record["stop"]) != (start, stop) or correct.dtype != torch.bool \
                or tuple(correct.shape) != (stop - start,):
            raise CorruptCheckpointError("inconsistent")
        return {"correct": correct, "elapsed_s": float(record["elapsed_s"])}
    except (CorruptCheckpointError, KeyError, TypeError, AttributeError, IndexError, ValueError):
        _discard(path, "unreadable or inconsistent")
        return None


def _load_final(folder: Path, n: int) -> tuple[dict, torch.Tensor] | None:
    summary_path, correct_path = folder / "result.json", folder / "correct.pt"
    if not summary_path.exists():
        return None
    try:
        summary = read_json_verified(summary_path)
        correct = load_verified(correct_path)
        if summary["n"] != n or correct.dtype != torch.bool or tuple(correct.shape) != (n,) \
                or int(correct.sum()) != summary["n_correct"]:
            raise CorruptCheckpointError("inconsistent")
        return summary, correct
    except (CorruptCheckpointError, ValueError, KeyError, TypeError, AttributeError, IndexError, OSError):
        _discard(summary_path, "unreadable or inconsistent with correct.pt")
        remove_verified(correct_path)
        return None


def _batched_correct(folder: Path | None, n: int, batch_size: int, compute: BatchFn, meta: dict,
                     progress: bool, desc: str) -> tuple[torch.Tensor, float, bool]:
    """Per-example correctness from `compute(start, stop)` batch by batch, cached under `folder` when given.

    Returns (correct, compute seconds, loaded-from-final-cache).
    """
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        final = _load_final(folder, n)
        if final is not None:
            return final[1], float(final[0]["elapsed_s"]), True
        write_json_verified(folder / "meta.json", meta)
    from tqdm import tqdm

    parts, elapsed = [], 0.0
    starts = range(0, n, batch_size)
    for index, start in enumerate(tqdm(starts, desc=desc, disable=not progress, leave=False)):
        stop = min(start + batch_size, n)
        path = folder / f"batch-{index:05d}.pt" if folder is not None else None
        record = _load_batch(path, start, stop) if path is not None else None
        if record is None:
            began = time.perf_counter()
            correct = compute(start, stop).cpu().bool()
            record = {"correct": correct, "elapsed_s": time.perf_counter() - began}
            if path is not None:
                save_verified({**record, "start": start, "stop": stop}, path)
        parts.append(record["correct"])
        elapsed += record["elapsed_s"]
    correct = torch.cat(parts) if parts else torch.zeros(0, dtype=torch.bool)
    if folder is not None:
        _finish(folder, correct, elapsed, meta, len(starts))
    return correct, elapsed, False


def _finish(folder: Path, correct: torch.Tensor, elapsed: float, meta: dict, n_batches: int) -> None:
    """Write the final files (correctness first, the summary last: its presence means done), drop the batches."""
    save_verified(correct, folder / "correct.pt")
    summary = {**meta, "n": len(correct), "n_correct": int(correct.sum()),
               "accuracy": float(correct.float().mean()) if len(correct) else 0.0, "elapsed_s": elapsed}
    write_json_verified(folder / "result.json", summary)
    for index in range(n_batches):
        remove_verified(folder / f"batch-{index:05d}.pt")


def _locked(folder: Path | None):
    """Serialise concurrent evaluations of one cache entry (the second then just loads the first's result)."""
    if folder is None:
        return contextlib.nullcontext()
    folder.mkdir(parents=True, exist_ok=True)
    return shared_lock(folder / ".lock")


# --- attacks ------------------------------------------------------------------------------------------------------

def batch_seed(seed: int, start: int) -> int:
    """Seed for the batch starting at example `start`: `seed` itself for the first batch (so a single-batch
    evaluation equals `correct_under(model, x, y, spec)`), distinct for the others."""
    return seed if start == 0 else int(hashlib.sha256(f"{seed}:{start}".encode()).hexdigest()[:8], 16)


def _check_eval_args(x: torch.Tensor, y: torch.Tensor, batch_size: int) -> None:
    if batch_size < 1:
        raise InvalidSpecError(f"batch_size must be >= 1, got {batch_size}")
    if len(x) != len(y):
        raise InvalidSpecError(f"x has {len(x)} images but y has {len(y)} labels")


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, spec: AttackSpec | str,
             cache_dir: str | Path | None = None, batch_size: int = 256, progress: bool = False) -> EvalResult:
    """Accuracy of `model` on (x, y) under `spec` (an `AttackSpec` or a registered name), with per-example results.

    Batch i uses ``batch_seed(spec.seed, start_i)``, so results are reproducible for a given batch size. See the
    module docstring for the cache layout and guarantees.
    """
    spec = attack_spec(spec) if isinstance(spec, str) else spec
    _check_eval_args(x, y, batch_size)
    backend = attack_backend(spec)
    meta = {"name": spec.name, "spec": spec.to_dict(), "spec_key": spec.key(), "backend": backend,
            "data": data_fingerprint(x, y), "model": model_fingerprint(model) if cache_dir else None,
            "batch_size": batch_size}
    folder = None
    if cache_dir is not None:
        context = _short_hash({k: meta[k] for k in ("backend", "data", "model", "batch_size")})
        folder = Path(cache_dir) / f"{spec.name}-{spec.key()}" / context

    def compute(start: int, stop: int) -> torch.Tensor:
        batch_spec = dataclasses.replace(spec, seed=batch_seed(spec.seed, start))
        return attacks.correct_under(model, x[start:stop], y[start:stop], batch_spec)

    with _locked(folder):
        correct, elapsed, cached = _batched_correct(folder, len(x), batch_size, compute, meta, progress, spec.name)
    accuracy = float(correct.float().mean()) if len(correct) else 0.0
    return EvalResult(spec.name, spec.to_dict(), accuracy, len(correct), correct, elapsed, backend, cached)


# --- common corruptions -------------------------------------------------------------------------------------------

def _source_description(source: CorruptionSource | None, seed: int) -> str:
    if source is None:
        return f"generated (tempscale.corruptions, seed {seed})"
    label = getattr(source, "description", None) or getattr(source, "__qualname__", type(source).__name__)
    return f"supplied ({label})"


def _corruption_names(names, source) -> list[str]:
    if source is not None and names is not None:
        return list(names)
    available = tuple(corruptions.CORRUPTIONS)
    unknown = [name for name in (names or ()) if name not in available]
    if unknown:
        raise InvalidSpecError(f"unknown corruption(s) {', '.join(unknown)}; choose from {', '.join(available)}")
    return list(names) if names is not None else list(available)


def _corruption_data(x, y, name, severity, seed, source):
    """(images provider, labels, data fingerprint) for one corruption; generated images are made lazily (only when
    some batch is missing from the cache), supplied ones are loaded now (their bytes are the fingerprint)."""
    if source is not None:
        x_c, y_c = source(name, severity)
        return (lambda: x_c), y_c, data_fingerprint(x_c, y_c)
    generated: list[torch.Tensor] = []

    def images() -> torch.Tensor:
        if not generated:
            generated.append(corruptions.corrupt(x, name, severity, seed))
        return generated[0]

    return images, y, _short_hash([data_fingerprint(x, y), name, severity, seed, corruptions.GENERATOR_VERSION])


def evaluate_corruptions(model: nn.Module, x: torch.Tensor, y: torch.Tensor, severity: int = 3,
                         names: list[str] | None = None, seed: int = 0, cache_dir: str | Path | None = None,
                         source: CorruptionSource | None = None, batch_size: int = 256,
                         progress: bool = False) -> CorruptionResult:
    """Clean accuracy on each common corruption at `severity` and their mean (the paper's "-C" column, severity 3).

    Images come from ``tempscale.corruptions.corrupt(x, name, severity, seed)`` unless `source` is given:
    ``source(name, severity) -> (images, labels)`` supplying e.g. the official CIFAR-10-C arrays. Each corruption is
    cached like an attack, keyed on the clean set + (name, severity, seed) when generated, on the supplied bytes
    otherwise.
    """
    if not 1 <= severity <= 5:
        raise InvalidSpecError(f"severity must be 1..5, got {severity}")
    _check_eval_args(x, y, batch_size)
    names = _corruption_names(names, source)
    clean = attacks.ATTACKS["clean"]
    model_fp = model_fingerprint(model) if cache_dir else None
    per, counts, masks, elapsed = {}, {}, {}, 0.0
    for name in names:
        images, labels, data_fp = _corruption_data(x, y, name, severity, seed, source)
        meta = {"corruption": name, "severity": severity, "seed": seed, "source": _source_description(source, seed),
                "data": data_fp, "model": model_fp, "batch_size": batch_size}
        folder = None
        if cache_dir is not None:
            folder = Path(cache_dir) / f"corruption-{name}-s{severity}" / _short_hash(meta)

        def compute(start: int, stop: int, images=images, labels=labels) -> torch.Tensor:
            return attacks.correct_under(model, images()[start:stop], labels[start:stop], clean)

        with _locked(folder):
            correct, seconds, _ = _batched_correct(folder, len(labels), batch_size, compute, meta, progress, name)
        per[name], counts[name], masks[name] = float(correct.float().mean()), len(correct), correct
        elapsed += seconds
    mean = sum(per.values()) / len(per) if per else 0.0
    return CorruptionResult(severity, _source_description(source, seed), per, mean, counts, masks, elapsed)


# --- suites -------------------------------------------------------------------------------------------------------

def _threat_model(spec: AttackSpec) -> str:
    return f"{spec.norm} eps={spec.eps:.6g}"


def _worst_case_entry(specs: Mapping[str, AttackSpec], results: Mapping[str, EvalResult]) -> dict:
    """Per-example worst case over the adversarial attacks of the most common threat model (L∞ 8/255 normally);
    attacks under another threat model (e.g. the unbounded C&W-L2) are listed as excluded, not mixed in."""
    groups: dict[str, list[str]] = {}
    for name, spec in specs.items():
        groups.setdefault(_threat_model(spec), []).append(name)
    threat, members = max(groups.items(), key=lambda item: len(item[1]))
    mask = worst_case({name: results[name].correct for name in members})
    return {"accuracy": float(mask.float().mean()) if len(mask) else 0.0, "n": len(mask),
            "n_correct": int(mask.sum()), "threat_model": threat, "attacks": members,
            "excluded": [name for name in specs if name not in members]}


def evaluate_suite(model: nn.Module, x: torch.Tensor, y: torch.Tensor, names: list[str],
                   cache_dir: str | Path | None = None, overrides: dict[str, dict] | None = None,
                   batch_size: int = 256, progress: bool = False) -> dict:
    """Evaluate several attacks (and "corruptions") on one eval set: {name: {accuracy, n, …}, "worst_case": {…}}.

    `overrides` maps an attack name to spec fields to change (e.g. ``{"square": {"n_queries": 100}}``) and
    "corruptions" to keyword arguments of `evaluate_corruptions` (severity, names, seed, source). All names are
    checked before anything runs. "worst_case" is the per-example AND over the adversarial attacks evaluated.
    """
    overrides = dict(overrides or {})
    unknown = set(overrides) - set(names)
    if unknown:
        raise InvalidSpecError(f"overrides given for {', '.join(sorted(unknown))}, which are not in the suite")
    if len(set(names)) != len(names):
        raise InvalidSpecError(f"attack names repeat: {', '.join(names)}")
    specs = {name: attack_spec(name, **overrides.get(name, {})) for name in names if name != "corruptions"}
    report: dict = {}
    results: dict[str, EvalResult] = {}
    for name in names:
        if name == "corruptions":
            report[name] = evaluate_corruptions(model, x, y, cache_dir=cache_dir, batch_size=batch_size,
                                                progress=progress, **overrides.get(name, {})).to_dict()
            continue
        results[name] = evaluate(model, x, y, specs[name], cache_dir=cache_dir, batch_size=batch_size,
                                 progress=progress)
        report[name] = results[name].to_dict()
    adversarial = {name: spec for name, spec in specs.items() if spec.method != "clean"}
    if adversarial:
        report["worst_case"] = _worst_case_entry(adversarial, results)
    return report
