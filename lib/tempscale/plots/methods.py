"""Figures of the training methods: Madry AT per τ (notebook 07, Table III), the LDD tables as clean vs PGD-20
(notebook 08, Tables 4.1–4.2) and the GradCAM grid (notebook 09, thesis Fig. 4.2). Each returns the Figure."""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from .style import METRIC_COLORS, tau_color

ROLE_COLORS = {"teacher": "#dd8452", "student": "#4c72b0"}
CORRECT_EDGE, WRONG_EDGE = "#2ca02c", "#d62728"


def plot_madry_at(table: pd.DataFrame, no_at: Mapping[str, float], profile_name: str) -> plt.Figure:
    """Table III as two panels (clean, PGD-20) over τ: the paper's line, ours coloured per τ, and the standard run
    without AT as a dotted line. `table` is `side_by_side` output; `no_at` maps metric → accuracy (%)."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharex=True)
    for ax, metric, title in zip(axes, ("clean", "pgd20"), ("clean accuracy", "PGD-20 accuracy")):
        paper_col = table[(metric, "paper")].dropna()
        ours_col = table[(metric, "this run")].dropna()
        ax.plot(paper_col.index, paper_col.values, "--", color=METRIC_COLORS["neutral"], marker="s",
                label="paper (ResNet50, CIFAR-10)")
        ax.plot(ours_col.index, ours_col.values, "-", color="#333333", zorder=1, label=f"this run ({profile_name})")
        ax.scatter(ours_col.index, ours_col.values, c=[tau_color(t) for t in ours_col.index], s=60, zorder=2)
        ax.axhline(no_at[metric], color=METRIC_COLORS["hard"], lw=1, ls=":", label="this run, no AT (τ = 1)")
        ax.set(xscale="log", xlabel="τ (clean term only)", ylabel="accuracy (%)", title=title)
        ticks = sorted(set(paper_col.index) | set(ours_col.index))
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.minorticks_off()
    axes[0].legend(fontsize=9)
    fig.tight_layout()
    return fig


def plot_ldd_tables(tables: Mapping[str, pd.DataFrame]) -> plt.Figure | None:
    """Clean vs PGD accuracy of each teacher and its student (a grey segment joins them), this run beside the
    thesis, one panel per available table of 4.1 / 4.2; None when neither was produced."""
    panels = [t for t in ("4.1", "4.2") if t in tables]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.2), squeeze=False)
    for ax, t in zip(axes[0], panels):
        _ldd_panel(ax, tables[t], t)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def _ldd_panel(ax: plt.Axes, frame: pd.DataFrame, table_id: str) -> None:
    groups = list(dict.fromkeys(frame.index.get_level_values(0)))
    for source, marker, ls in (("thesis", "s", "--"), ("this run", "o", "-")):
        for g in groups:   # thin grey segment: teacher → its student
            ax.plot([frame.loc[(g, "teacher"), ("clean", source)], frame.loc[(g, "student"), ("clean", source)]],
                    [frame.loc[(g, "teacher"), ("pgd", source)], frame.loc[(g, "student"), ("pgd", source)]],
                    ls, color="#bbbbbb", lw=0.8, zorder=0)
        for role, color in ROLE_COLORS.items():
            sub = frame.xs(role, level="role")
            # Table 4.2's rows are ordered (dimension), so they are joined; Table 4.1's methods are not
            ax.plot(sub[("clean", source)], sub[("pgd", source)], linestyle=ls if table_id == "4.2" else "none",
                    marker=marker, color=color, alpha=0.85, label=f"{role} ({source})")
            for g in groups:
                if not np.isnan(sub.loc[g, ("clean", source)]):
                    ax.annotate(g, (sub.loc[g, ("clean", source)], sub.loc[g, ("pgd", source)]), fontsize=7,
                                xytext=(3, 3), textcoords="offset points")
    ax.set(xlabel="clean accuracy (%)", ylabel="PGD-20 accuracy (%)", title=f"Table {table_id}")


def plot_gradcam_grid(images: torch.Tensor, labels: torch.Tensor, maps: Mapping[str, np.ndarray],
                      predictions: Mapping[str, torch.Tensor], class_names: Sequence[str],
                      profile_name: str) -> plt.Figure:
    """Thesis Fig. 4.2: one column per image, the grey image on top, then each model's GradCAM map over it; the
    frame is green where that model classifies the image correctly, red where not."""
    rows = ["image", *maps]
    n = len(images)
    fig, axes = plt.subplots(len(rows), n, figsize=(1.3 * n + 1.2, 1.35 * len(rows) + 0.4), squeeze=False)
    gray = images.mean(1).numpy()
    for col in range(n):
        for row, label in enumerate(rows):
            ax = axes[row][col]
            ax.imshow(gray[col], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            if label != "image":
                ax.imshow(maps[label][col], cmap="jet", alpha=0.5, vmin=0, vmax=1, interpolation="bilinear")
                _frame(ax, bool(predictions[label][col] == labels[col]))
            ax.set_xticks([]), ax.set_yticks([])
            if row == 0:
                ax.set_title(class_names[int(labels[col])], fontsize=10)
            if col == 0:
                ax.set_ylabel(label, fontsize=9)
    fig.suptitle(f"GradCAM for the true class ({profile_name} profile; frame: green = correct, red = wrong)",
                 fontsize=10)
    fig.tight_layout()
    return fig


def _frame(ax: plt.Axes, correct: bool) -> None:
    for spine in ax.spines.values():
        spine.set_visible(True)
        spine.set_edgecolor(CORRECT_EDGE if correct else WRONG_EDGE)
        spine.set_linewidth(2)


__all__ = ["plot_madry_at", "plot_ldd_tables", "plot_gradcam_grid"]
