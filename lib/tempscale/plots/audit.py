"""Figures of the gradient-masking audit (notebook 10), drawn from a grid of `AuditReport`s (one per τ); each
function returns the Figure."""
from __future__ import annotations

from typing import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..audit import (SATURATION_MARGIN, UNDERFLOW_MARGIN, AuditReport, eps_label, grid_accuracy,
                     grid_gradients)
from ..profiles import Profile
from .style import tau_color, tau_label

Reports = Mapping[float, AuditReport]

LOSS_TITLES = {"ce": "PGD on CE at τ = 1 (paper's attack)", "margin": "PGD on the C&W margin",
               "rescaled": "PGD on CE of z / τ_train", "dlr": "PGD on DLR"}
ATTACK_LABELS = {"pgd20": "PGD-20 (CE)", "apgd_ce": "APGD-CE", "apgd_dlr": "APGD-DLR", "cw_linf": "C&W-L∞ (margin)",
                 "rescaled": "PGD-20 on z/τ (best scale)", "square": "Square", "worst_case": "worst case"}
ATTACK_COLORS = {"pgd20": "#d62728", "apgd_ce": "#ff7f0e", "apgd_dlr": "#2ca02c", "cw_linf": "#17becf",
                 "rescaled": "#9467bd", "square": "#8c564b", "worst_case": "#222222"}
# The paper's attack drawn heavier: it is the curve the audit questions, "worst case" the one it answers with.
_EMPHASISED = ("pgd20", "worst_case")
_PUBLISHED_STYLES = (("pgd20", "--"), ("square", "-."))
_GRADIENT_SERIES = (("saturated_pct", "softmax max == 1.0 (float32)", "#9467bd"),
                    ("vanishing_grad_pct", "vanishing gradient (< {tiny_grad:g})", "#ff7f0e"),
                    ("zero_grad_pct", "exactly zero gradient", "#d62728"))
_MARGIN_LEVELS = ((SATURATION_MARGIN, "p_y rounds to 1"), (UNDERFLOW_MARGIN, "all other p_j underflow"))


def _first(reports: Reports) -> AuditReport:
    return next(iter(reports.values()))


def _tau_axis(ax: plt.Axes, reports: Reports) -> np.ndarray:
    """One evenly spaced position per τ (the grid is roughly logarithmic), labelled with the τ."""
    positions = np.arange(len(reports))
    ax.set_xticks(positions, [f"{t:g}" for t in reports])
    return positions


def plot_robustness_vs_eps(reports: Reports, profile: Profile) -> plt.Figure:
    """Robust accuracy vs ε, one panel per PGD loss of the eps-sweep check, one line per τ; dotted: chance. The CE
    panel also shows the noise-only baseline per τ (dashed, thin): PGD's random start without a gradient step."""
    first = _first(reports)
    losses = list(first.budget.curve_losses)
    chance = first.check("eps-sweep").numbers["chance"]
    fig, axes = plt.subplots(1, len(losses), figsize=(4.6 * len(losses), 4), sharey=True)
    axes = np.atleast_1d(axes)
    for ax, loss in zip(axes, losses):
        for tau, report in reports.items():
            curve = report.check("eps-sweep").numbers["curves"][loss]
            eps = [float(k.split("/")[0]) for k in curve]
            ax.plot(eps, list(curve.values()), marker="o", color=tau_color(tau), label=tau_label(tau))
            noise = report.check("eps-sweep").numbers.get("noise")
            if loss == "ce" and noise:
                ax.plot(eps, [noise[k] for k in curve], ls="--", lw=0.9, color=tau_color(tau))
        ax.axhline(chance, color="0.5", ls=":", lw=1.2)
        ax.set(xscale="log", xlabel="ε (/255)",
               title=LOSS_TITLES[loss] + ("\n(dashed: noise only)" if loss == "ce" else ""))
        ax.set_xticks(eps, [f"{e:g}" for e in eps])
    axes[0].set_ylabel("robust accuracy (%)")
    axes[-1].legend(fontsize=9, ncol=2)
    fig.suptitle(f"Accuracy vs ε ({profile.name} profile: {profile.dataset}, {profile.arch}, {first.n} images)",
                 y=1.02)
    fig.tight_layout()
    return fig


def plot_accuracy_vs_tau(reports: Reports, published: pd.DataFrame, profile: Profile,
                         published_label: str = "ResNet50/CIFAR-10") -> plt.Figure:
    """Every attack's accuracy at the audit's ε per τ (solid), and the published PGD-20 and Square columns (dashed
    grey; `published_label` names their model and data)."""
    first = _first(reports)
    accuracy = grid_accuracy(reports)
    fig, ax = plt.subplots(figsize=(8.5, 4.6))
    positions = np.arange(len(reports))
    for key, label in ATTACK_LABELS.items():
        ax.plot(positions, accuracy[key], marker="o", color=ATTACK_COLORS[key], label=label,
                lw=3 if key in _EMPHASISED else 1.8)
    for key, style in _PUBLISHED_STYLES:
        ax.plot(positions, published[key].reindex(list(reports)), ls=style, color="0.55", lw=1.5,
                label=f"paper {ATTACK_LABELS[key]} ({published_label})")
    _tau_axis(ax, reports)
    ax.set(xlabel="training temperature τ", ylabel=f"accuracy at ε = {eps_label(first.budget.eps)} (%)",
           ylim=(-3, 103),
           title=f"Robust accuracy per attack ({profile.name}: {profile.dataset}, {profile.arch}, {first.n} images)")
    ax.legend(fontsize=8.5, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    return fig


def plot_gradients_vs_tau(reports: Reports) -> plt.Figure:
    """Left: % of correct inputs with saturated softmax, vanishing and exactly zero CE gradients per τ. Right: the
    per-image logit margins of the correct inputs against float32's saturation and underflow margins."""
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(12, 4.3))
    _plot_saturation(ax, reports)
    _plot_margins(bx, reports)
    fig.tight_layout()
    return fig


def _plot_saturation(ax: plt.Axes, reports: Reports) -> None:
    gradients = grid_gradients(reports)
    tiny_grad = _first(reports).budget.tiny_grad
    positions = np.arange(len(reports))
    for key, label, color in _GRADIENT_SERIES:
        ax.plot(positions, gradients[key], marker="o", label=label.format(tiny_grad=tiny_grad), color=color)
    _tau_axis(ax, reports)
    ax.set(xlabel="training temperature τ", ylabel="% of correctly classified inputs", ylim=(-3, 103),
           title="Saturation and vanishing CE gradients")
    ax.legend(fontsize=9)


def _correct_margins(report: AuditReport) -> np.ndarray:
    """Logit margins of the correctly classified inputs, floored at 1e-3 for the log axis."""
    stats = report.check("vanishing-gradients").per_example
    return stats["margin"][stats["correct"]].clamp_min(1e-3).numpy()


def _plot_margins(ax: plt.Axes, reports: Reports) -> None:
    positions = np.arange(len(reports))
    parts = ax.boxplot([_correct_margins(r) for r in reports.values()], positions=positions, widths=0.6,
                       patch_artist=True, showfliers=False)
    for patch, tau in zip(parts["boxes"], reports):
        patch.set_facecolor(tau_color(tau))
    for level, label in _MARGIN_LEVELS:
        ax.axhline(level, color="0.3", ls="--", lw=1.2)
        ax.text(positions[0] - 0.4, level * 1.15, label, fontsize=9, color="0.3")
    _tau_axis(ax, reports)
    ax.set(yscale="log", xlabel="training temperature τ", ylabel=r"logit margin $z_y - \max_{j \neq y} z_j$",
           title="Per-image logit margins (correct inputs)")
