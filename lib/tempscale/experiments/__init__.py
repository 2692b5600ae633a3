"""The calls notebooks make: train (or reuse) a profile's runs and fetch the fixed evaluation subset.

Notebooks stay narrative; everything they compute comes through here or the analysis modules.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from ..data import first_n, load_dataset
from ..profiles import Profile
from ..runs import Run, get_or_train_each


def notebook_profile(default: str = "quick") -> str:
    """The profile a notebook runs under when nothing injects one: $TEMPSCALE_PROFILE (nbval sets smoke)."""
    return os.environ.get("TEMPSCALE_PROFILE", default)


def train_grid(profile: Profile, taus=None, seed: int | None = None, progress: bool = True,
               **spec_overrides) -> dict[float, Run]:
    """One run per τ (the profile's grid unless given), trained once and reused afterwards."""
    taus = [float(t) for t in (profile.taus if taus is None else taus)]
    specs = [profile.spec(t, seed=seed, **spec_overrides) for t in taus]
    return dict(zip(taus, get_or_train_each(specs, progress=progress)))


def eval_set(profile: Profile, run: Run | None = None, n: int | None = None,
             data_dir: str | Path | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The first n test examples (the profile's n_eval by default) at the run's resolution: the same images for every τ."""
    spec = run.spec if run is not None else profile.spec(profile.taus[0])
    bundle = load_dataset(spec.dataset, spec.image_size, data_dir)
    return first_n(bundle.test, profile.n_eval if n is None else n)


def class_names(profile: Profile, run: Run | None = None) -> list[str]:
    spec = run.spec if run is not None else profile.spec(profile.taus[0])
    return load_dataset(spec.dataset, spec.image_size).class_names
