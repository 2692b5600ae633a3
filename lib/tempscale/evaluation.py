"""Evaluate stored runs: the glue between the run store, the eval set and the cached robustness suite.

Results are cached in each run's `evals/` folder (keyed by attack spec, eval set and weights), so notebooks and the
CLI never attack the same model twice and an interrupted evaluation resumes per batch.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import pandas as pd
import torch
import torch.nn.functional as F

from .data import first_n, has_official_corrupted, load_corrupted
from .experiments import eval_set
from .profiles import Profile
from .robustness import evaluate_suite
from .runs import Run
from .train import pick_device


def metric_key(name: str) -> str:
    """Attack name → the paper-table column key ("cw-linf" → "cw_linf")."""
    return name.replace("-", "_")


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


def evaluate_run(run: Run, names: list[str], profile: Profile, n_eval: int | None = None, severity: int = 3,
                 data_dir: str | Path | None = None, device: str | None = None, progress: bool = False) -> dict:
    """{attack: {accuracy, n, …}, "worst_case": …} for one run, under the profile's attack budgets."""
    dev = pick_device(device)
    model = run.load_model(dev)
    x, y = eval_set(profile, run, n_eval, data_dir)
    overrides = {k: dict(v) for k, v in profile.attack_overrides.items() if k in names}
    if "corruptions" in names:
        source = official_corruption_source(run.spec.dataset, len(y), x.shape[-1], data_dir)
        overrides["corruptions"] = {"severity": severity, "source": source}
    return evaluate_suite(model, x.to(dev), y.to(dev), names, cache_dir=run.eval_dir, overrides=overrides,
                          progress=progress)


def evaluate_grid(runs: dict[float, Run], names: list[str], profile: Profile, **kwargs) -> tuple[pd.DataFrame, dict]:
    """Accuracy (%) per τ and metric (paper-table keys), plus the full reports per τ."""
    reports = {tau: evaluate_run(run, names, profile, **kwargs) for tau, run in runs.items()}
    table = pd.DataFrame({tau: {metric_key(name): 100 * reports[tau][name]["accuracy"]
                                for name in names + (["worst_case"] if "worst_case" in reports[tau] else [])}
                          for tau in runs}).T
    table.index = pd.Index(table.index.astype(float), name="tau")
    return table, reports
