"""Training curves: every run of a profile (notebook 01) and Fig. 4's convergence bands (notebook 06)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Mapping, Sequence

import matplotlib.pyplot as plt
import pandas as pd

from ..tables import format_tau
from .style import tau_color

if TYPE_CHECKING:
    from ..runs import Run

PANEL_LETTERS = "abcdef"


def plot_runs_history(runs: Mapping[float, Run]) -> plt.Figure:
    """Test errors and training loss CE(z/τ, y) per epoch, one line per τ (log scales)."""
    fig, (ax_err, ax_loss) = plt.subplots(1, 2, figsize=(11, 4))
    for tau, run in runs.items():
        history = pd.DataFrame(run.history)
        ax_err.plot(history["epoch"], history["test_errors"], color=tau_color(tau), label=format_tau(tau))
        ax_loss.plot(history["epoch"], history["train_loss"], color=tau_color(tau))
    ax_err.set(xlabel="epoch", ylabel="test errors", yscale="log", title="Test errors per epoch")
    ax_loss.set(xlabel="epoch", ylabel="CE(z/τ, y)", yscale="log", title="Training loss")
    ax_err.legend(ncol=2, fontsize=9)
    fig.tight_layout()
    return fig


def plot_convergence(band: pd.DataFrame, taus: Sequence[float], lrs: Sequence[float],
                     test_total: int) -> plt.Figure:
    """Fig. 4: one panel per learning rate; per τ the mean test errors over seeds and their min–max band.

    `band` has columns lr, τ, epoch, mean, min, max (`experiments.training.convergence_band`).
    """
    fig, axes = plt.subplots(1, len(lrs), figsize=(5.5 * len(lrs), 4), squeeze=False, sharey=True)
    for ax, lr, letter in zip(axes[0], lrs, PANEL_LETTERS):
        for tau in taus:
            curve = band[(band["lr"] == lr) & (band["τ"] == tau)]
            ax.plot(curve["epoch"], curve["mean"], color=tau_color(tau), label=format_tau(tau))
            ax.fill_between(curve["epoch"], curve["min"], curve["max"], color=tau_color(tau), alpha=0.2,
                            linewidth=0)
        ax.set(title=f"({letter}) SGD, lr = {lr}", xlabel="epoch", yscale="log")
    axes[0][0].set_ylabel(f"test errors (of {test_total})")
    axes[0][0].legend()
    fig.tight_layout()
    return fig
