"""Figure helpers for notebooks 00, 03, 04 and 05 (Fig. 1, Eqs. 7-9, Fig. 2, Fig. 5, Figs. 6-7); each returns the Figure."""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

from .style import METRIC_COLORS, class_colors, tau_color, tau_label, tau_palette


def _sub(i: int) -> str:
    return str(i).translate(str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉"))


def plot_update_direction(toy, taus: Sequence[float] | None = None, class_labels: Sequence[str] | None = None):
    """Fig. 1: for each τ a panel with the prototypes w_j, f(x) and the encoder's update direction −∂L/∂f (Eq. 6).

    `toy` is a `tempscale.analysis.ToyDirection`. Arrows start at f(x) and show τ·(−∂L/∂f), so Eq. 6's 1/τ step-size
    factor is factored out and panels compare directions only: the green dashed arrow is the pull (1 − P_i) w_i toward
    the true prototype, the red dashed arrow the net push −Σ_{j≠i} P_j w_j away from the negatives (thin grey: each
    negative's part), the thick arrow (τ's colour) their sum. A last panel shows each negative class's share
    P_j / Σ_{k≠i} P_k of the push, for every τ in `toy`.
    """
    taus = list(toy.taus if taus is None else taus)
    W, f, i = np.asarray(toy.prototypes), np.asarray(toy.f), toy.true_class
    M = len(W)
    labels = list(class_labels) if class_labels is not None else [f"w{_sub(j + 1)}" for j in range(M)]
    fig, axes = plt.subplots(1, len(taus) + 1, figsize=(4.7 * (len(taus) + 1), 5.0),
                             gridspec_kw=dict(width_ratios=[1] * len(taus) + [1.2]), layout="constrained")
    tips = np.asarray([f + toy.tau_scaled_direction[toy.index(t)] for t in taus])
    lim = 1.2 * max(np.abs(W).max(), np.abs(f).max(), np.abs(tips).max())
    arrow = dict(arrowstyle="-|>", mutation_scale=14)
    for ax, tau in zip(axes, taus):
        k = toy.index(tau)
        p = toy.probs[k]
        h = int(toy.hard_class[k])
        ax.set_aspect("equal")
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_axis_off()
        ax.add_patch(plt.Circle((0, 0), np.linalg.norm(W, axis=1).max(), fill=False, color="0.88", lw=1))
        for j in range(M):
            role = "true" if j == i else ("hard" if j == h else "neutral")
            ax.annotate("", xy=W[j], xytext=(0, 0), arrowprops=dict(**arrow, color=METRIC_COLORS[role], lw=1.3,
                                                                     alpha=0.45))
            ax.text(*(W[j] * 1.13), labels[j], ha="center", va="center", fontsize=13,
                    color=METRIC_COLORS[role], fontweight="bold" if role != "neutral" else "normal")
        pull = (1 - p[i]) * W[i]
        pushes = [-p[j] * W[j] for j in range(M) if j != i]
        for part in pushes:
            if np.linalg.norm(part) > 0.02 * lim:
                ax.annotate("", xy=f + part, xytext=f, arrowprops=dict(arrowstyle="->", color="0.6", lw=1.0))
        push = np.sum(pushes, axis=0)
        for vec, color in ((pull, METRIC_COLORS["true"]), (push, METRIC_COLORS["hard"])):
            if np.linalg.norm(vec) > 0.02 * lim:
                ax.annotate("", xy=f + vec, xytext=f, arrowprops=dict(**arrow, color=color, lw=1.8, ls="--"))
        total = toy.tau_scaled_direction[k]
        ax.annotate("", xy=f + total, xytext=f,
                    arrowprops=dict(arrowstyle="-|>", color=tau_color(tau), lw=3.4, mutation_scale=22))
        ax.plot(*f, "o", color="black", ms=9, zorder=5)
        ax.text(f[0] - 0.06 * lim, f[1] + 0.07 * lim, "f(x)", ha="right", va="bottom", fontsize=13)
        ax.set_title(f"{tau_label(tau)}\n{100 * toy.negative_share[k, h]:.0f}% of the push from {labels[h]}",
                     color=tau_color(tau))
    legend = [plt.Line2D([], [], color=METRIC_COLORS["true"], ls="--", lw=1.8, label=f"pull toward {labels[i]}"),
              plt.Line2D([], [], color=METRIC_COLORS["hard"], ls="--", lw=1.8, label="net push from negatives"),
              plt.Line2D([], [], color="0.6", lw=1.0, label="each negative's push"),
              plt.Line2D([], [], color="0.25", lw=3.4, label="update direction −∂L/∂f (× τ)")]
    fig.legend(handles=legend, loc="outside lower center", ncol=4, fontsize=11.5)
    ax = axes[-1]
    neg = [j for j in range(M) if j != i]
    width = 0.8 / len(toy.taus)
    for k, tau in enumerate(toy.taus):
        ax.bar(np.arange(len(neg)) + (k - (len(toy.taus) - 1) / 2) * width, toy.negative_share[k, neg], width,
               color=tau_color(tau), label=tau_label(tau))
    ax.axhline(1 / len(neg), color="0.3", ls=":", lw=1.5, label="equal share")
    ax.set_xticks(range(len(neg)), [labels[j] for j in neg])
    ax.set_ylabel(r"share of the push  $P_j\,/\,\sum_{k\neq i} P_k$")
    ax.set_title(f"how the push is split (true class {labels[i]})")
    ax.set_ylim(0, 1)
    ax.grid(axis="x", visible=False)
    ax.legend(loc="upper right", fontsize=10.5)
    return fig


def plot_sample_weights(table, ess=None, ess_own=None):
    """Eqs. 7–9: the per-sample weight 1 − P_y^τ across a batch (sorted), one line per τ.

    `ess` (columns tau, ess_fraction) adds a panel with the effective fraction of the batch per τ; `ess_own` adds a
    second series to it (e.g. each trained model's own logits at its own training τ), drawn with hollow markers.
    """
    taus = sorted(table["tau"].unique())
    ncols = 2 if ess is not None else 1
    fig, axes = plt.subplots(1, ncols, figsize=(6.4 * ncols, 4.6), squeeze=False, layout="constrained")
    ax = axes[0, 0]
    for tau in taus:
        w = np.sort(table.loc[table["tau"] == tau, "weight"].to_numpy())[::-1]
        ax.plot(np.arange(1, len(w) + 1), w, color=tau_color(tau), label=tau_label(tau))
    ax.set_xlabel("sample (sorted by weight)")
    ax.set_ylabel(r"weight  $1 - P_y^{\tau}(x)$")
    ax.set_ylim(-0.03, 1.03)
    ax.set_title("per-sample weight in the batch sum")
    ax.legend(ncol=2, fontsize=10)
    if ess is not None:
        ax = axes[0, 1]
        ax.plot(ess["tau"], ess["ess_fraction"], "-", color="0.4", zorder=1)
        ax.scatter(ess["tau"], ess["ess_fraction"], c=[tau_color(t) for t in ess["tau"]], s=70, zorder=2,
                   label="same logits (one model), varying τ" if ess_own is not None else None)
        if ess_own is not None:
            ax.plot(ess_own["tau"], ess_own["ess_fraction"], "--", color="0.4", zorder=1)
            ax.scatter(ess_own["tau"], ess_own["ess_fraction"], facecolors="white", s=70, zorder=2, linewidths=2,
                       edgecolors=[tau_color(t) for t in ess_own["tau"]], label="each model at its training τ")
            ax.legend(loc="upper left", fontsize=10.5)
        ax.set_xscale("log")
        ax.set_ylim(0, 1.05)
        ax.set_xlabel("τ")
        ax.set_ylabel("effective fraction of the batch")
        ax.set_title("how many samples drive the update")
    return fig


def plot_tsne_panels(embeddings: Mapping[float, np.ndarray], labels, class_names: Sequence[str] | None = None,
                     scores: Mapping[float, float] | None = None, score_name: str = "silhouette"):
    """Figs. 2–3: one t-SNE panel per τ, points coloured by true class; the panel title carries the score."""
    labels = np.asarray(labels)
    n_classes = int(labels.max()) + 1
    names = list(class_names) if class_names is not None else [str(c) for c in range(n_classes)]
    colors = class_colors(n_classes)
    taus = list(embeddings)
    fig, axes = plt.subplots(1, len(taus), figsize=(4.8 * len(taus), 5.2), squeeze=False, layout="constrained")
    for ax, tau in zip(axes[0], taus):
        emb = np.asarray(embeddings[tau])
        for c in range(n_classes):
            m = labels == c
            ax.scatter(emb[m, 0], emb[m, 1], s=9, color=colors[c], alpha=0.85, linewidths=0, label=names[c])
        title = tau_label(tau)
        if scores is not None and tau in scores:
            title += f"\n{score_name} {scores[tau]:.3f}"
        ax.set_title(title, color=tau_color(tau))
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
        for side in ("top", "right", "bottom", "left"):
            ax.spines[side].set_visible(True)
            ax.spines[side].set_color(tau_color(tau))
            ax.spines[side].set_linewidth(2)
    if n_classes <= 20:
        handles = [plt.Line2D([], [], marker="o", ls="", color=colors[c], markersize=7) for c in range(n_classes)]
        fig.legend(handles, names, loc="outside right center", title="class", fontsize=10.5)
    return fig


def plot_tau_bars(values: Mapping[float, float], ylabel: str, title: str | None = None, ax=None, fmt: str = "{:.3f}"):
    """One bar per τ (categorical axis in τ order), coloured by τ, value printed on each bar."""
    taus = sorted(values)
    if ax is None:
        fig, ax = plt.subplots(figsize=(max(4.5, 1.0 * len(taus) + 2), 4.2), layout="constrained")
    else:
        fig = ax.figure
    vals = [values[t] for t in taus]
    bars = ax.bar([f"{t:g}" for t in taus], vals, color=[tau_color(t) for t in taus])
    for bar, v in zip(bars, vals):
        ax.annotate(fmt.format(v), (bar.get_x() + bar.get_width() / 2, v), ha="center",
                    va="bottom" if v >= 0 else "top", fontsize=10.5, xytext=(0, 2 if v >= 0 else -2),
                    textcoords="offset points")
    ax.axhline(0, color="0.3", lw=0.8)
    ax.set_xlabel("training τ")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    return fig


def plot_logit_bars(table, class_names: Sequence[str] | None = None, samples: Sequence[int] | None = None):
    """Fig. 5: logits before (blue) and after (orange) the attack, one panel per (τ, sample).

    `table` is `tempscale.analysis.logits_before_after` output with a "tau" column (concatenated over models). The
    true class is marked with a green tick label, the class predicted after the attack with a red one. Panels whose
    clean input has an exactly zero input gradient (column "grad_l1", see `analysis.input_gradient_norm`) say so.
    """
    taus = sorted(table["tau"].unique())
    samples = list(samples) if samples is not None else sorted(table["sample"].unique())
    fig, axes = plt.subplots(len(samples), len(taus), figsize=(4.3 * len(taus), 3.6 * len(samples)),
                             squeeze=False, layout="constrained")
    for r, s in enumerate(samples):
        for c, tau in enumerate(taus):
            ax = axes[r, c]
            d = table[(table["tau"] == tau) & (table["sample"] == s)].sort_values("class")
            k = d["class"].to_numpy()
            ax.bar(k - 0.2, d["logit_clean"], 0.4, color=METRIC_COLORS["clean"], label="clean")
            ax.bar(k + 0.2, d["logit_adv"], 0.4, color=METRIC_COLORS["adversarial"], label="after PGD-20")
            ax.axhline(0, color="0.3", lw=0.8)
            row = d.iloc[0]
            names = list(class_names) if class_names is not None else [str(j) for j in k]
            ax.set_xticks(k, [names[j] for j in k], fontsize=10)
            for j, lab in zip(k, ax.get_xticklabels()):
                if j == row["label"]:
                    lab.set_color(METRIC_COLORS["true"])
                    lab.set_fontweight("bold")
                elif j == row["pred_adv"]:
                    lab.set_color(METRIC_COLORS["hard"])
                    lab.set_fontweight("bold")
            if "grad_l1" in d and row["grad_l1"] == 0:
                ax.text(0.98, 0.97, "∇ₓCE = 0 at x\n(saturated softmax)", transform=ax.transAxes, ha="right",
                        va="top", fontsize=10, color="0.25",
                        bbox=dict(boxstyle="round,pad=0.3", facecolor="white", edgecolor="0.6", alpha=0.9))
            verdict = "unchanged" if row["pred_adv"] == row["pred_clean"] else "flipped"
            ax.set_title(f"{tau_label(tau)} · sample {s}\npred {names[int(row['pred_clean'])]} → "
                         f"{names[int(row['pred_adv'])]} ({verdict})", fontsize=12, color=tau_color(tau))
            if c == 0:
                ax.set_ylabel("logit (τ = 1, raw)")
            ax.grid(axis="x", visible=False)
    handles, labs = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labs, loc="outside lower center", ncol=2)
    return fig


def plot_prototype_profile(rows: Mapping[float, dict], class_names: Sequence[str] | None = None):
    """Fig. 6: for one sample, Euclidean distance (left axis) and cosine similarity (right axis) to every prototype.

    `rows` maps τ → {"distance": (M,), "cosine": (M,), "label": int}. The true class is shaded.
    """
    taus = list(rows)
    ncols = min(4, len(taus))
    nrows = math.ceil(len(taus) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.4 * ncols, 3.5 * nrows), squeeze=False, layout="constrained")
    for ax in axes.flat[len(taus):]:
        ax.set_visible(False)
    for ax, tau in zip(axes.flat, taus):
        r = rows[tau]
        M = len(r["distance"])
        x = np.arange(M)
        names = list(class_names) if class_names is not None else [str(j) for j in x]
        ax.axvspan(r["label"] - 0.45, r["label"] + 0.45, color=METRIC_COLORS["true"], alpha=0.15, lw=0)
        ax.plot(x, r["distance"], "o-", color=METRIC_COLORS["distance"], label="Euclidean distance")
        ax.set_xticks(x, names, fontsize=10)
        ax.tick_params(axis="y", colors=METRIC_COLORS["distance"])
        ax2 = ax.twinx()
        ax2.plot(x, r["cosine"], "s--", color=METRIC_COLORS["cosine"], label="cosine similarity")
        ax2.tick_params(axis="y", colors=METRIC_COLORS["cosine"])
        ax2.grid(False)
        ax2.spines["right"].set_visible(True)
        ax.set_title(tau_label(tau), color=tau_color(tau))
        ax.grid(axis="x", visible=False)
        if ax.get_subplotspec().is_first_col():
            ax.set_ylabel("Euclidean distance", color=METRIC_COLORS["distance"])
        if ax.get_subplotspec().is_last_col() or tau == taus[-1]:
            ax2.set_ylabel("cosine similarity", color=METRIC_COLORS["cosine"])
    h1, l1 = axes.flat[0].get_legend_handles_labels()
    h2, l2 = axes.flat[0].figure.axes[-1].get_legend_handles_labels()
    fig.legend(h1 + h2, l1 + l2, loc="outside lower center", ncol=2)
    return fig


def plot_variance_boxes(table, columns: Mapping[str, str], log: bool = False,
                        ylabel: str = "variance over negative prototypes"):
    """Fig. 7: one box per τ of a per-sample quantity (one panel per column), median line and mean marker.

    `table` has a "tau" column and the columns named in `columns` ({column: panel title}). Boxes: quartiles;
    whiskers: 1.5 IQR; dots: samples beyond the whiskers; black line: median; white diamond: mean.
    """
    taus = sorted(table["tau"].unique())
    fig, axes = plt.subplots(1, len(columns), figsize=(max(5.5, 0.75 * len(taus) + 2.5) * len(columns), 4.8),
                             squeeze=False, layout="constrained")
    for ax, (col, title) in zip(axes[0], columns.items()):
        data = [table.loc[table["tau"] == t, col].to_numpy() for t in taus]
        box = ax.boxplot(data, positions=range(len(taus)), widths=0.62, patch_artist=True, showmeans=True,
                         medianprops=dict(color="black", lw=2.2),
                         meanprops=dict(marker="D", markerfacecolor="white", markeredgecolor="black", markersize=7),
                         flierprops=dict(marker=".", markersize=3, alpha=0.4, markeredgecolor="0.4"),
                         whiskerprops=dict(color="0.3"), capprops=dict(color="0.3"))
        for patch, t in zip(box["boxes"], taus):
            patch.set_facecolor(tau_color(t))
            patch.set_edgecolor("0.2")
            patch.set_alpha(0.9)
        ax.set_xticks(range(len(taus)), [f"{t:g}" for t in taus])
        if log:
            ax.set_yscale("log")
        ax.set_xlabel("training τ")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(axis="x", visible=False)
    handles = [plt.Line2D([], [], color="black", lw=2.2, label="median"),
               plt.Line2D([], [], marker="D", ls="", markerfacecolor="white", markeredgecolor="black", label="mean")]
    fig.legend(handles=handles, loc="outside lower center", ncol=2)
    return fig
