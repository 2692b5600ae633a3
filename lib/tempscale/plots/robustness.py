"""Notebook 02's overview figure: accuracy per training τ under every evaluation, one line each."""
from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

# Drawn in this order when present; worst_case is left out (it is a per-example summary of the L∞ lines).
METRICS = ["clean", "corruptions", "pgd20", "cw_linf", "cw_l2", "apgd_ce", "square"]


def plot_robustness_per_tau(accuracy: pd.DataFrame, scale: str) -> plt.Figure:
    """One line per evaluation over log τ; `accuracy` is `evaluate_grid`'s table (%), `scale` names the run."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for metric in [m for m in METRICS if m in accuracy]:
        ax.plot(accuracy.index, accuracy[metric], marker="o", label=metric)
    ax.set(xscale="log", xlabel="training temperature τ", ylabel="accuracy (%)", ylim=(-2, 102),
           title=f"Robustness per τ ({scale})")
    ax.legend(ncol=2, fontsize=9)
    fig.tight_layout()
    return fig
