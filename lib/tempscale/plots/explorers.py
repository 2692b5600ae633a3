"""The views of the interactive explorers (`tempscale.explorers`): one figure per explorer state, never saved to
figures/ (the explorers are for looking, the notebooks' saved figures stay the paper's)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from .style import METRIC_COLORS, tau_color, tau_label


def _role_colors(n: int, true_class: int, hard: int) -> list[str]:
    return [METRIC_COLORS["true"] if j == true_class else METRIC_COLORS["hard"] if j == hard
            else METRIC_COLORS["neutral"] for j in range(n)]


def plot_gradient_view(view) -> plt.Figure:
    """Three panels for a `GradientView`: P^τ with the Eqs. 4–5 coefficients, Eq. 6 in Fig. 1's plane, Eqs. 7–9."""
    i, W, p = view.true_class, view.prototypes, view.probs
    negatives = [j for j in range(len(p)) if j != i]
    hard = negatives[int(np.argmax(p[negatives]))]
    colors = _role_colors(len(p), i, hard)
    fig, (bars, plane, weight) = plt.subplots(1, 3, figsize=(15, 4.6), layout="constrained",
                                              gridspec_kw=dict(width_ratios=[1.1, 1, 1.1]))
    names = [f"w{j + 1}" for j in range(len(p))]
    bars.bar(names, p, color=colors)
    for j, (pj, c) in enumerate(zip(p, view.coefficients)):
        bars.annotate(f"{c:+.2g}", (j, pj), ha="center", va="bottom", fontsize=10)
    bars.set(ylim=(0, 1.12), ylabel="P_j^τ = softmax(z/τ)_j",
             title=f"Eqs. 4–5 at {tau_label(view.tau)} (labels: (1/τ)(P_j − δ_ij))")
    lim = 1.25 * max(np.abs(W).max(), np.abs(view.pull + view.push).max(), 1.0)
    plane.set_aspect("equal")
    plane.set(xlim=(-lim, lim), ylim=(-lim, lim), title="Eq. 6: τ·(−∂L/∂f) in Fig. 1's plane")
    plane.set_axis_off()
    arrow = dict(arrowstyle="-|>", mutation_scale=14)
    for j, w in enumerate(W):
        plane.annotate("", xy=w, xytext=(0, 0), arrowprops=dict(**arrow, color=colors[j], alpha=0.45, lw=1.2))
        plane.text(*(w * 1.14), names[j], ha="center", va="center", color=colors[j])
    for vector, color, lw in ((view.pull, METRIC_COLORS["true"], 1.5), (view.push, METRIC_COLORS["hard"], 1.5),
                              (view.pull + view.push, tau_color(min(max(view.tau, 0.1), 150)), 3.0)):
        plane.annotate("", xy=vector, xytext=(0, 0), arrowprops=dict(**arrow, color=color, lw=lw))
    plane.text(0, -lim * 0.95, "green: pull to w_i · red: push from negatives · thick: update", ha="center",
               fontsize=10)
    weight.plot(view.weight_taus, view.weights, color="black")
    weight.scatter([view.tau], [view.weight], color=tau_color(min(max(view.tau, 0.1), 150)), zorder=3, s=60)
    weight.set(xscale="log", ylim=(-0.02, 1.02), xlabel="τ", ylabel="1 − P_i^τ",
               title=f"Eqs. 7–9: this sample's weight = {view.weight:.3f}")
    return fig


def plot_attack_view(view) -> plt.Figure:
    """An `AttackView`: the image, and its logits clean / after PGD on CE(z) / after PGD on CE(z/τ)."""
    fig, (img, bars) = plt.subplots(1, 2, figsize=(14, 4.6), layout="constrained",
                                    gridspec_kw=dict(width_ratios=[1, 3.2]))
    img.imshow(view.image, cmap="gray" if view.image.ndim == 2 else None, vmin=0, vmax=1)
    img.set_axis_off()
    img.set_title(f"label: {view.class_names[view.label]}")
    n_classes = view.logits.shape[1]
    width = 0.27
    colors = (METRIC_COLORS["clean"], METRIC_COLORS["adversarial"], METRIC_COLORS["cosine"])
    predictions = view.predictions()
    for k, (row, color) in enumerate(zip(view.ROWS, colors)):
        label = f"{row}: predicts {view.class_names[predictions[k]]}"
        bars.bar(np.arange(n_classes) + (k - 1) * width, view.logits[k], width, color=color, label=label)
    bars.set_xticks(np.arange(n_classes), view.class_names)
    bars.get_xticklabels()[view.label].set_color(METRIC_COLORS["true"])
    bars.set_ylabel("raw logit z_j")
    bars.legend(fontsize=10, loc="best")
    saturated = "saturated (exactly 1.0 in float32)" if view.p_max == 1.0 else "not saturated"
    bars.set_title(f"{tau_label(view.tau)} model, ε = {view.eps * 255:.0f}/255 · max softmax(z) {view.p_max:.6f}: "
                   f"{saturated}\n‖∂CE(z)/∂x‖₁ = {view.grad_l1[0]:.3g}, ‖∂CE(z/τ)/∂x‖₁ = {view.grad_l1[1]:.3g}, "
                   f"margin z_y − max z_j = {view.margin:.1f}", fontsize=12)
    return fig
