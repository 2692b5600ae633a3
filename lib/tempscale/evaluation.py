"""Evaluate stored runs: the glue between the run store, the eval set and the cached robustness suite.

Results are cached in each run's `evals/` folder (keyed by attack spec, eval set and weights), so notebooks and the
CLI never attack the same model twice and an interrupted evaluation resumes per batch.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Mapping

import pandas as pd
import torch
import torch.nn.functional as F

from .attacks import ATTACKS
from .data import first_n, has_official_corrupted, load_corrupted, official_corruptions, require_official_corrupted
from .experiments import eval_set
from .errors import InvalidSpecError
from .inference import pick_device
from .profiles import Profile
from .robustness import evaluate_suite
from .runs import Run
from .stats import interval_text


def official_corruption_source(dataset: str, n: int, image_size: int,
                               data_dir: str | Path | None = None) -> Callable | None:
    """The official -C images for the first n test examples (the same images as the eval set), or None if absent."""
    if not has_official_corrupted(dataset, data_dir):
        return None

    def source(name: str, severity: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = first_n(load_corrupted(dataset, name, severity, data_dir), n)
        if x.shape[-1] != image_size:
            x = F.interpolate(x, size=image_size, mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)
        return x, y
    return source


def evaluate_run(run: Run, names: list[str], profile: Profile, *, n_eval: int | None = None,
                 part: str | None = None, budgets: Mapping[str, Mapping] | None = None, severity: int | None = None,
                 data_dir: str | Path | None = None, device: str | None = None, progress: bool = False) -> dict:
    """{attack: {accuracy, n, …}, "worst_case": …} for one stored run on the first `n_eval` test images.

    The one way every notebook and the CLI evaluate a stored run. Budgets are the profile's attack budgets with
    `budgets` (attack name → spec fields) on top. `part` evaluates one network of a pair ("teacher" or "student" of
    an LDD pair; a plain model is its own student), cached under ``run.eval_dir / part``.
    """
    if n_eval is not None and (isinstance(n_eval, bool) or not isinstance(n_eval, int) or n_eval < 1):
        raise InvalidSpecError(f"n_eval must be an integer ≥ 1 (or None for the profile's), got {n_eval!r}")
    if severity is not None and severity not in range(1, 6):
        raise InvalidSpecError(f"severity must be 1..5, got {severity!r}")
    data_dir = data_dir if data_dir is not None else getattr(run, "data_dir", None)   # the data it was trained on
    dev = pick_device(device)
    model = run.load_model(dev)
    cache = run.eval_dir
    if part is not None:
        cache = cache / part if hasattr(model, "teacher") else cache
        model = model.teacher if part == "teacher" else model
    x, y = eval_set(profile, run, n_eval, data_dir)
    overrides = {k: profile.attacks.changes(k, ATTACKS[k]) for k in names if k in ATTACKS}
    overrides = {k: v for k, v in overrides.items() if v}
    for name, changes in (budgets or {}).items():
        overrides[name] = {**overrides.get(name, {}), **changes}
    if "corruptions" in names:
        require_official_corrupted(run.spec.dataset, data_dir)
        source = official_corruption_source(run.spec.dataset, len(y), x.shape[-1], data_dir)
        overrides["corruptions"] = {"severity": severity or profile.corruptions.severity, "source": source}
        if source is not None:   # the release's own list: Tiny-ImageNet-C has 15 of CIFAR-10-C's 19
            overrides["corruptions"]["names"] = official_corruptions(run.spec.dataset, data_dir)
    return evaluate_suite(model, x.to(dev), y.to(dev), names, cache_dir=cache, overrides=overrides,
                          progress=progress)


def correct_counts(entry: dict) -> tuple[int, int]:
    """(correct, images) behind one report entry; for "corruptions" pooled over every corrupted image."""
    if "per_corruption" in entry:
        n = sum(entry["n"].values())
        return round(sum(acc * entry["n"][name] for name, acc in entry["per_corruption"].items())), n
    return int(entry["n_correct"]), int(entry["n"])


def interval_table(reports: Mapping[float, dict]) -> pd.DataFrame:
    """The 95% Wilson interval over images (text, %) of every accuracy in `evaluate_grid`'s reports, per τ.

    The "-C" interval pools the corrupted images of every corruption as if independent, so it is too narrow by
    the correlation between corruptions of one image; it is shown as the order of magnitude, not a test."""
    rows = {tau: {name: interval_text(*correct_counts(entry)) for name, entry in report.items()
                  if isinstance(entry, dict) and ("n_correct" in entry or "per_corruption" in entry)}
            for tau, report in reports.items()}
    table = pd.DataFrame(rows).T
    table.index = pd.Index(table.index.astype(float), name="tau")
    return table


def evaluate_grid(runs: dict[float, Run], names: list[str], profile: Profile, **kwargs) -> tuple[pd.DataFrame, dict]:
    """Accuracy (%) per τ and metric (paper-table keys), plus the full reports per τ."""
    reports = {tau: evaluate_run(run, names, profile, **kwargs) for tau, run in runs.items()}
    table = pd.DataFrame({tau: {name: 100 * reports[tau][name]["accuracy"]
                                for name in names + (["worst_case"] if "worst_case" in reports[tau] else [])}
                          for tau in runs}).T
    table.index = pd.Index(table.index.astype(float), name="tau")
    return table, reports
