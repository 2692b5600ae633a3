"""Uncertainty of the reported numbers: intervals over images, spread over training seeds.

Two sources of noise, reported separately because they answer different questions:

* *over images*: an accuracy of k correct out of n test images is a binomial proportion. `wilson_interval` gives its
  95% Wilson score interval (Wilson 1927), which, unlike the normal approximation, stays inside [0, 100] and is not
  empty at 0% or 100% — both occur here (every image broken at τ = 1, every clean image right).
* *over training seeds*: the same spec retrained with another seed gives another model. `seed_spread` summarises the
  accuracies of one τ over seeds; `exceeds_seed_noise` says whether a difference between two τ is larger than what
  retraining alone moves (the larger of the two τ's seed ranges).

The interval over images says nothing about seeds and vice versa; a difference that matters should clear both.
"""
from __future__ import annotations

import math
from typing import Iterable

import pandas as pd

Z95 = 1.959963984540054   # the two-sided 95% quantile of the standard normal


def wilson_interval(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """95% Wilson score interval of the proportion k/n, in percent; (nan, nan) when n = 0."""
    if n <= 0:
        return math.nan, math.nan
    if not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return 100 * max(0.0, centre - half), 100 * min(1.0, centre + half)


def interval_text(k: int, n: int) -> str:
    """The interval as table text, e.g. "67.9–76.1"."""
    low, high = wilson_interval(k, n)
    return "—" if math.isnan(low) else f"{low:.1f}–{high:.1f}"


def seed_spread(values: Iterable[float]) -> dict[str, float]:
    """Mean, sample standard deviation, min, max and range of one τ's accuracies over seeds."""
    series = pd.Series(list(values), dtype=float)
    return {"mean": float(series.mean()), "std": float(series.std(ddof=1)) if len(series) > 1 else math.nan,
            "min": float(series.min()), "max": float(series.max()), "range": float(series.max() - series.min()),
            "seeds": int(len(series))}


def exceeds_seed_noise(a: Iterable[float], b: Iterable[float]) -> bool:
    """True when the mean difference between two τ's accuracies over seeds exceeds both τ's seed ranges."""
    sa, sb = seed_spread(a), seed_spread(b)
    return abs(sa["mean"] - sb["mean"]) > max(sa["range"], sb["range"])
