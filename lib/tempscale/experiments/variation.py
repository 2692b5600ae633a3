"""Notebook 02: how much retraining alone moves the numbers — the headline τ trained with several seeds.

Every seed's model is scored on the same test images with the same attacks, so the spread is the seed's doing only.
A difference between two τ is called real here only when it exceeds both τ's seed ranges (`stats.exceeds_seed_noise`),
and the 95% interval over images is reported beside it: the two answer different questions (see `tempscale.stats`).
"""
from __future__ import annotations

import pandas as pd

from ..evaluation import evaluate_run
from ..profiles import Profile
from ..stats import exceeds_seed_noise, seed_spread
from . import train_grid

REFERENCE_TAU = 1.0


def seed_accuracies(profile: Profile, n_eval: int | None = None) -> pd.DataFrame:
    """Accuracy (%) per (τ, seed) and evaluation of `profile.variation` (plus the worst case over its attacks);
    empty when the profile has no seed study."""
    study = profile.variation
    rows = {}
    for seed in study.seeds:
        for tau, run in train_grid(profile, taus=study.taus, seed=seed, progress=False).items():
            report = evaluate_run(run, list(study.attacks), profile, n_eval=n_eval)
            rows[(tau, seed)] = {name: 100 * entry["accuracy"] for name, entry in report.items()
                                 if isinstance(entry, dict) and "accuracy" in entry}
    table = pd.DataFrame(rows).T
    if len(table):
        table.index = pd.MultiIndex.from_tuples(table.index, names=["tau", "seed"])
    return table.sort_index()


def seed_summary(per_seed: pd.DataFrame) -> pd.DataFrame:
    """Per τ and evaluation: mean, std and range over seeds (columns (metric, statistic))."""
    if per_seed.empty:
        return pd.DataFrame()
    parts = {}
    for metric in per_seed.columns:
        spread = per_seed[metric].groupby(level="tau").apply(lambda v: pd.Series(seed_spread(v)))
        parts[metric] = spread.unstack()[["mean", "std", "range"]]
    return pd.concat(parts, axis=1)


def seed_conclusions(per_seed: pd.DataFrame, reference: float = REFERENCE_TAU) -> list[str]:
    """One sentence per (τ, evaluation): is the mean difference to the reference τ larger than retraining moves?"""
    if per_seed.empty or reference not in per_seed.index.get_level_values("tau"):
        return []
    lines = []
    ref = per_seed.xs(reference, level="tau")
    for tau in sorted(set(per_seed.index.get_level_values("tau")) - {reference}):
        other = per_seed.xs(tau, level="tau")
        for metric in per_seed.columns:
            a, b = other[metric], ref[metric]
            diff = a.mean() - b.mean()
            noise = max(seed_spread(a)["range"], seed_spread(b)["range"])
            verdict = "exceeds" if exceeds_seed_noise(a, b) else "is within"
            lines.append(f"τ = {tau:g} vs {reference:g}, {metric}: {diff:+.1f} points over {len(a)} seeds, which "
                         f"{verdict} the seed-to-seed range ({noise:.1f} points).")
    return lines
