"""Notebooks 01 and 06: one summary row per trained τ, and Fig. 4's convergence runs with the paper's SGD."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from ..paths import output_path
from ..profiles import RECIPES, Profile
from ..runs import Run, get_or_train_each
from ..tables import write_table

CONVERGED_ACCURACY = 0.9   # below this clean accuracy a τ counts as not converged (notebook 01)


# --- notebook 01: the runs of a profile -------------------------------------------------------------------------


def runs_table(runs: Mapping[float, Run]) -> pd.DataFrame:
    """One row per τ: clean accuracy, final loss, epochs, divergence, training time and the run folder."""
    rows = []
    for tau, run in runs.items():
        result = run.result
        rows.append({"tau": tau, "clean acc (%)": 100 * result["clean_acc"],
                     "final train loss": result["final_train_loss"],
                     "epochs": result["epochs_done"], "diverged": result["diverged"],
                     "train s": result["provenance"]["elapsed_s"], "run": run.dir.name})
    return pd.DataFrame(rows).set_index("tau")


def write_runs_table(summary: pd.DataFrame, profile: Profile) -> dict[str, Path]:
    """table_runs__<dataset>_<arch>.*, without the run-folder column (the notebook shows it)."""
    return write_table(summary.drop(columns="run"), output_path(profile, "table_runs"),
                       caption=f"Runs of the {profile.name} profile ({profile.dataset}, {profile.arch})")


def not_converged(runs: Mapping[float, Run], min_accuracy: float = CONVERGED_ACCURACY) -> list[float]:
    """The τ whose run diverged or ended below `min_accuracy` clean accuracy."""
    return [tau for tau, run in runs.items()
            if run.result["diverged"] or run.result["clean_acc"] < min_accuracy]


# --- notebook 06: Fig. 4 ----------------------------------------------------------------------------------------


def paper_sgd() -> dict:
    """The paper's optimiser settings: Fig. 4 always uses them, since the learning rate is the experiment."""
    return {k: RECIPES["cnn"][k] for k in ("optimizer", "momentum", "weight_decay", "schedule")}


def convergence_curves(profile: Profile, runs_dir: str | Path | None = None) -> pd.DataFrame:
    """Test errors per epoch of every (lr, τ, seed) of the profile's convergence section, one row per epoch."""
    grid, sgd = profile.convergence, paper_sgd()
    cells = [(lr, tau, seed) for lr in grid.lrs for tau in grid.taus for seed in grid.seeds]
    specs = [profile.spec(tau, seed=seed, lr=lr, epochs=grid.epochs or profile.spec(tau).epochs, **sgd)
             for lr, tau, seed in cells]
    rows = [{"lr": lr, "τ": tau, "seed": seed, "epoch": h["epoch"], "test_errors": h["test_errors"],
             "test_total": h["test_total"]}
            for (lr, tau, seed), run in zip(cells, get_or_train_each(specs, runs_dir=runs_dir)) for h in run.history]
    return pd.DataFrame(rows)


def convergence_band(curves: pd.DataFrame) -> pd.DataFrame:
    """Per (lr, τ, epoch): mean, min and max test errors over the seeds (Fig. 4's line and band)."""
    by_epoch = curves.groupby(["lr", "τ", "epoch"])["test_errors"]
    return by_epoch.agg(["mean", "min", "max"]).reset_index()


def _first_epoch_below(curve: pd.DataFrame, level: float) -> float:
    hit = curve[curve["mean"] <= level]
    return int(hit["epoch"].iloc[0]) if len(hit) else np.nan


def convergence_table(band: pd.DataFrame) -> pd.DataFrame:
    """Fig. 4 in numbers, per (lr, τ): final test errors (mean and min–max over seeds) and the first epoch whose
    mean is below twice the final value, a simple convergence-speed number."""
    rows = []
    for (lr, tau), curve in band.groupby(["lr", "τ"]):
        final = curve["mean"].iloc[-1]
        rows.append({"lr": lr, "τ": tau, "final test errors (mean)": final,
                     "final errors (min–max)": f"{curve['min'].iloc[-1]:.0f}–{curve['max'].iloc[-1]:.0f}",
                     "epoch reaching 2× final": _first_epoch_below(curve, 2 * final)})
    return pd.DataFrame(rows).set_index(["lr", "τ"])


def write_convergence_table(speed: pd.DataFrame, profile: Profile) -> dict[str, Path]:
    return write_table(speed, output_path(profile, "table_fig4_convergence"),
                       caption="Fig. 4 in numbers")


def final_error_ranking(speed: pd.DataFrame, lrs: Iterable[float]) -> list[str]:
    """One line per learning rate: the τ ordered from the lowest to the highest final test errors."""
    final = speed["final test errors (mean)"]
    lines = []
    for lr in lrs:
        order = final.loc[lr].sort_values()
        ranked = ", ".join(f"τ={t:g}: {v:.1f}" for t, v in order.items())
        lines.append(f"lr {lr}: final test errors, best to worst: {ranked}")
    return lines
