"""Notebook 11's figure `calibration_per_tau`: reliability diagrams per training τ (top) and, over the τ grid,
the ECE, the NLL and the fitted post-hoc temperature T* (bottom)."""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .style import METRIC_COLORS, tau_color, tau_label

# How each reading of the logits is drawn (see tempscale.experiments.calibration.READINGS).
READING_STYLE = {
    "τ = 1": dict(linestyle="-", marker="o", label="softmax(z), τ = 1 (as evaluated)"),
    "τ_train": dict(linestyle=":", marker="^", label="softmax(z / τ_train)"),
    "T*": dict(linestyle="--", marker="s", label="softmax(z / T*), post-hoc"),
}


def _reliability_panel(ax: plt.Axes, curves: pd.DataFrame, tau: float) -> None:
    ax.plot([0, 1], [0, 1], color=METRIC_COLORS["neutral"], lw=1, linestyle=(0, (2, 2)))
    for reading in ("τ = 1", "T*"):
        curve = curves[(curves["tau"] == tau) & (curves["reading"] == reading)]
        color = tau_color(tau) if reading == "τ = 1" else "black"
        ax.plot(curve["confidence"], curve["accuracy"], color=color, **READING_STYLE[reading])
    ax.set(xlim=(0, 1.02), ylim=(0, 1.02), title=f"trained at {tau_label(tau)}", xlabel="confidence")


def plot_calibration(table: pd.DataFrame, curves: pd.DataFrame, diagram_taus: Sequence[float]) -> plt.Figure:
    """`table`: one row per (τ, reading) with ece, nll, temperature; `curves`: reliability points per (τ, reading)."""
    shown = [t for t in diagram_taus if t in set(table["tau"])] or [float(table["tau"].min())]
    fig = plt.figure(figsize=(4.6 * max(3, len(shown)), 9.2), layout="constrained")
    top, bottom = fig.subfigures(2, 1)
    diagrams = np.atleast_1d(top.subplots(1, len(shown), sharey=True))
    for ax, tau in zip(diagrams, shown):
        _reliability_panel(ax, curves, tau)
    diagrams[0].set_ylabel("accuracy")
    diagrams[0].legend(loc="upper left", fontsize=10)
    top.suptitle("Reliability diagrams (top-label; diagonal = calibrated)")
    ece, nll, fitted = bottom.subplots(1, 3)
    for reading, style in READING_STYLE.items():
        rows = table[table["reading"] == reading].sort_values("tau")
        ece.plot(rows["tau"], rows["ece"], color="black", **{**style, "label": reading})
        if reading != "τ_train":
            nll.plot(rows["tau"], rows["nll"], color="black", **{**style, "label": reading})
    rows = table[table["reading"] == "T*"].sort_values("tau")
    fitted.plot(rows["tau"], rows["tau"], color=METRIC_COLORS["neutral"], lw=1, linestyle=(0, (2, 2)),
                label="T* = τ_train")
    fitted.scatter(rows["tau"], rows["temperature"], c=[tau_color(t) for t in rows["tau"]], zorder=3, label="T*")
    ece.set(xscale="log", xlabel="training τ", ylabel="ECE (%)", title="Expected calibration error")
    nll.set(xscale="log", yscale="log", xlabel="training τ", ylabel="NLL (nats)", title="Negative log-likelihood")
    fitted.set(xscale="log", yscale="log", xlabel="training τ", ylabel="fitted T*", title="Post-hoc temperature")
    for ax in (ece, nll, fitted):
        ax.legend(fontsize=10)
    return fig
