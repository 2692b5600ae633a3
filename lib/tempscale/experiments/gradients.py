"""Notebook 00: the closed-form gradients of Eqs. 4–9 against autograd, Fig. 1's toy and the sample weights.

The functions wrap `tempscale.analysis` into the tables the notebook shows; the invariants (one row per τ, the
closed forms within float32 rounding of autograd, weights in [0, 1]) are unit tests, not notebook asserts.
"""
from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np
import pandas as pd
import torch

from .. import analysis as A
from ..explorers import gradient_explorer  # noqa: F401  (notebook 00 calls it as G.gradient_explorer)
from ..profiles import Profile
from ..runs import Run
from . import eval_set, train_grid

# What the table of section 1 shows: the errors per equation and the gradient scale they are relative to.
CHECK_COLUMNS = ["max_abs_err_df", "max_abs_err_dW_per_sample", "max_abs_err_dW_batch",
                 "max_abs_grad_dW_per_sample", "max_rel_err"]
FIG1_TAUS = (0.1, 0.5, 1.0, 10.0, 50.0, 100.0)   # the rows of Fig. 1's table (the panels show 0.5 and 50)
LOW_TAU, HIGH_TAU = 0.5, 100.0                   # the ends of the grid Fig. 1's reading contrasts
PROBE_BATCH = 64    # autograd runs one backward pass per sample for Eqs. 4–5: a small batch suffices


def probe(profile: Profile, seed: int | None = None) -> tuple[Run, torch.nn.Module, torch.Tensor, torch.Tensor]:
    """The τ = 1 model of the run store and its test batch: τ is only a parameter of the loss in sections 1–3,
    so one model serves every τ there."""
    run = train_grid(profile, taus=[1.0], seed=seed)[1.0]
    model = run.load_model()
    x, y = eval_set(profile, run, n=min(PROBE_BATCH, profile.n_eval or PROBE_BATCH))
    return run, model, x, y


def gradient_checks(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
                    taus: Iterable[float]) -> pd.DataFrame:
    """One row per τ: closed forms (Eqs. 4–9) against autograd through the model's real head."""
    rows = [A.gradient_identity_check(model, x, y, tau) for tau in taus]
    return pd.DataFrame(rows).set_index("tau")


def fig1_directions(taus: Iterable[float] = FIG1_TAUS) -> A.ToyDirection:
    """Eq. 6's update direction in the paper's Fig. 1 geometry, for each τ."""
    prototypes, feature, true_class = A.fig1_toy()
    return A.toy_update_direction(prototypes, feature, true_class, taus=tuple(taus))


def nearest_negative(toy: A.ToyDirection) -> int:
    """The negative prototype closest to f(x): with equal norms, the class a low τ pushes away from."""
    distances = [np.inf if j == toy.true_class else np.linalg.norm(w - toy.f)
                 for j, w in enumerate(toy.prototypes)]
    return int(np.argmin(distances))


def fig1_reading(toy: A.ToyDirection) -> str:
    """Fig. 1's claim in numbers: the hard class's share of the push at low τ, the equal split at high τ."""
    table = toy.table().set_index("tau")
    low, high = table.loc[LOW_TAU], table.loc[HIGH_TAU]
    hard = f"w{int(low['hard_class']) + 1}"
    return (f"τ = {LOW_TAU:g}: {100 * low['hard_share']:.0f}% of the push comes from {hard} "
            f"(nearest negative: w{nearest_negative(toy) + 1}); "
            f"τ = {HIGH_TAU:g}: entropy of the shares {high['negative_entropy']:.3f} (1 = equal), "
            f"cos(update, w{toy.true_class + 1}) = {high['cos(dir, w_true)']:.3f}; "
            f"entropy rises with τ: {table['negative_entropy'].is_monotonic_increasing}")


def fixed_logit_weights(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
                        taus: Iterable[float]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Eqs. 7–9 for one model's logits at every τ: (per-sample weights, one summary row per τ)."""
    weights = A.sample_weights_vs_tau(model, x, y, taus)
    return weights, A.sample_weight_summary(weights).set_index("tau")


def n_misclassified(weights: pd.DataFrame) -> int:
    """Samples the model gets wrong (the same at every τ: the logits are fixed)."""
    first = weights[weights["tau"] == weights["tau"].iloc[0]]
    return int((~first["correct"]).sum())


def own_tau_weights(runs: Mapping[float, Run], x: torch.Tensor, y: torch.Tensor) -> pd.DataFrame:
    """One row per trained τ: each model's own logits weighted at its own τ (what training actually saw)."""
    rows = []
    for tau, run in runs.items():
        _, logits = A.extract(run.load_model(), x)
        summary = A.sample_weight_summary(A.sample_weights_from_logits(logits, y, [tau])).iloc[0]
        logit_range = logits.max(1).values - logits.min(1).values
        rows.append({"tau": tau, "clean acc (%)": 100 * run.result["clean_acc"],
                     "logit range (median max − min)": float(logit_range.median()),
                     "mean weight 1−P_y^τ": summary["mean_weight"],
                     "ess_fraction": summary["ess_fraction"],
                     "share_misclassified": summary["share_misclassified"]})
    return pd.DataFrame(rows).set_index("tau")
