"""Interactive τ explorers (ipywidgets) that notebooks only call, and that render a static default view elsewhere.

- `gradient_explorer(profile)`: a τ slider and one slider per logit over the toy of Fig. 1: the probabilities P^τ
  and the coefficients of Eqs. 4–5, the encoder's update direction of Eq. 6 in Fig. 1's plane, and the per-sample
  weight 1 − P_i^τ of Eqs. 7–9 over τ (notebook 00).
- `attack_explorer(runs, x, y, names, profile)`: a test image, the training τ and ε; shows the logits before and
  after PGD at τ = 1 (the paper's attack) and PGD on logits/τ, the size of the input gradient of both losses and
  whether the softmax is saturated in float32 (notebook 04).

Display rule: inside a live Jupyter server session (the kernel has ``JPY_SESSION_NAME``, which jupyter_server sets
for every kernel it starts) an explorer displays as its widget; under papermill, nbval or a plain script it displays
as a PNG of its default view, so batch runs and tests see a picture, not a dead widget. ``TEMPSCALE_WIDGETS=1`` or
``0`` forces either. Nothing here writes to figures/, touches the global RNG or changes the matplotlib style.
"""
from __future__ import annotations

import base64
import io
import os
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import ipywidgets as W
import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import torch

from .analysis import fig1_toy
from .attacks import pgd
from .inference import input_gradient
from .plots.explorers import plot_attack_view, plot_gradient_view
from .profiles import Profile
from .runs import Run

LIVE_ENV = "TEMPSCALE_WIDGETS"    # "1": always the widget, "0": always the static view, unset: decide by session
TAU_RANGE = (-2.0, 2.5)           # log10 τ of the gradient explorer's slider: 0.01 … ≈ 316
LOGIT_RANGE = (-10.0, 10.0)       # each toy logit's slider


def live_frontend() -> bool:
    """True inside a kernel started by a Jupyter server (JupyterLab, Notebook), unless TEMPSCALE_WIDGETS says."""
    forced = os.environ.get(LIVE_ENV)
    if forced in ("0", "1"):
        return forced == "1"
    return bool(os.environ.get("JPY_SESSION_NAME"))


def figure_png(fig: matplotlib.figure.Figure) -> bytes:
    """The figure as PNG bytes, closed afterwards so the inline backend does not display it a second time."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


class Explorer:
    """A view function of named control values, shown as a widget (live) or as the PNG of its default view.

    `controls` are ipywidgets value widgets keyed by the view's argument names; `draw(**values)` returns a Figure
    (and `numbers(**values)` the same view's numbers, for tests and prose).
    """

    def __init__(self, controls: Mapping, draw: Callable[..., matplotlib.figure.Figure],
                 numbers: Callable[..., dict]):
        self.controls, self.draw, self.numbers = dict(controls), draw, numbers

    def values(self) -> dict:
        return {name: control.value for name, control in self.controls.items()}

    def static_png(self) -> bytes:
        return figure_png(self.draw(**self.values()))

    def widget(self):
        """The live widget: the controls above an image redrawn whenever a control is released."""
        image = W.Image(value=self.static_png(), format="png")

        def redraw(_change=None) -> None:
            image.value = self.static_png()

        for control in self.controls.values():
            control.observe(redraw, names="value")
        return W.VBox([W.HBox(list(self.controls.values()), layout=W.Layout(flex_flow="row wrap")), image])

    def _repr_mimebundle_(self, **kwargs) -> dict:
        if live_frontend():
            return self.widget()._repr_mimebundle_(**kwargs)
        return {"image/png": base64.b64encode(self.static_png()).decode("ascii"),
                "text/plain": f"<{type(self).__name__}: static view {self.values()}>"}


# --- Eqs. 4–9 and Fig. 1 ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class GradientView:
    """Eqs. 4–9 for one sample with logits z, true class i and temperature τ, on Fig. 1's 2-D prototypes."""

    tau: float
    logits: np.ndarray
    true_class: int
    prototypes: np.ndarray
    probs: np.ndarray           # P^τ = softmax(z/τ)
    coefficients: np.ndarray    # Eqs. 4–5: ∂L/∂w_j = coefficients[j] · f(x), i.e. (1/τ)(P_j − δ_ij)
    pull: np.ndarray            # (1 − P_i) w_i: Eq. 6 toward the true prototype, without the 1/τ factor
    push: np.ndarray            # −Σ_{j≠i} P_j w_j: Eq. 6 away from the negatives, without the 1/τ factor
    weight_taus: np.ndarray     # τ grid of the Eqs. 7–9 curve
    weights: np.ndarray         # 1 − P_i^τ on that grid: the sample's weight in the batch sums

    @property
    def weight(self) -> float:
        return float(1 - self.probs[self.true_class])


def gradient_view(tau: float, logits: Sequence[float], true_class: int,
                  prototypes: np.ndarray | None = None) -> GradientView:
    z = np.asarray(logits, dtype=np.float64)
    W = fig1_toy()[0] if prototypes is None else np.asarray(prototypes, dtype=np.float64)
    onehot = np.eye(len(z))[true_class]
    probs = _softmax(z / tau)
    grid = np.logspace(*TAU_RANGE, 120)
    weights = np.array([1 - _softmax(z / t)[true_class] for t in grid])
    return GradientView(tau=tau, logits=z, true_class=true_class, prototypes=W, probs=probs,
                        coefficients=(probs - onehot) / tau, pull=(1 - probs[true_class]) * W[true_class],
                        push=-(probs * (1 - onehot)) @ W, weight_taus=grid, weights=weights)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max())
    return e / e.sum()


def default_toy_logits() -> tuple[np.ndarray, int]:
    """Fig. 1's toy: z_j = w_j · f(x), f(x) of class w₃ lying next to w₁."""
    W, f, true_class = fig1_toy()
    return W @ f, true_class


def gradient_explorer(profile: Profile) -> Explorer:
    """Sliders for log10 τ and the five toy logits over Eqs. 4–9 and Fig. 1 (opens at `profile.explore.tau`)."""
    logits, true_class = default_toy_logits()
    common = dict(continuous_update=False, readout_format=".2f", layout=W.Layout(width="300px"))
    controls = {"log_tau": W.FloatSlider(value=float(np.log10(profile.explore.tau)), min=TAU_RANGE[0],
                                         max=TAU_RANGE[1], step=0.05, description="log₁₀ τ", **common)}
    for j, z in enumerate(logits):
        controls[f"z{j + 1}"] = W.FloatSlider(value=round(float(z), 2), min=LOGIT_RANGE[0], max=LOGIT_RANGE[1],
                                              step=0.1, description=f"z{j + 1}", **common)

    def view(log_tau: float, **z) -> GradientView:
        return gradient_view(10 ** log_tau, [z[f"z{j + 1}"] for j in range(len(logits))], true_class)

    def numbers(**values) -> dict:
        v = view(**values)
        return {"tau": v.tau, "probs": v.probs.round(4).tolist(), "weight": v.weight}

    return Explorer(controls, lambda **values: plot_gradient_view(view(**values)), numbers)


# --- PGD at τ = 1 and on logits/τ ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class AttackView:
    """One test image attacked on one model: logits before and after two PGD attacks, and why they differ."""

    tau: float
    eps: float
    image: np.ndarray           # (H, W) or (H, W, C) in [0, 1]
    label: int
    class_names: Sequence[str]
    logits: np.ndarray          # (3, M): clean, PGD on CE(z), PGD on CE(z/τ)
    grad_l1: np.ndarray         # ‖∂CE/∂x‖₁ at the clean input, for CE(z) and CE(z/τ)
    p_max: float                # softmax(z) maximum at τ = 1 on the clean input (1.0 exactly: saturated)
    margin: float               # z_y − max_{j≠y} z_j on the clean input

    ROWS = ("clean", "PGD, CE at τ = 1", "PGD, CE on z/τ")

    def predictions(self) -> list[int]:
        return [int(i) for i in self.logits.argmax(1)]


def attack_view(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, tau: float, eps: float, steps: int,
                class_names: Sequence[str]) -> AttackView:
    """PGD (ε, step ε/4 as the paper's 2/255 at 8/255, `steps` steps, seed 0) on one image, both losses."""
    x, y = x[None], y[None]
    runs = [x] + [pgd(model, x, y, eps=eps, alpha=eps / 4, steps=steps, logit_scale=scale, seed=0)
                  for scale in (1.0, 1.0 / tau)]
    with torch.no_grad():
        logits = torch.cat([model(xi) for xi in runs]).double()
    grads = [input_gradient(model, x, y, loss=lambda z, t, s=scale: torch.nn.functional.cross_entropy(
        z * s, t, reduction="sum"))[0].abs().sum().item() for scale in (1.0, 1.0 / tau)]
    clean = logits[0]
    others = torch.cat([clean[:y.item()], clean[y.item() + 1:]])
    image = x[0].permute(1, 2, 0).numpy()
    return AttackView(tau=tau, eps=eps, image=image[..., 0] if image.shape[2] == 1 else image, label=int(y),
                      class_names=list(class_names), logits=logits.numpy(), grad_l1=np.array(grads),
                      p_max=float(torch.softmax(clean.float(), 0).max()),
                      margin=float(clean[y.item()] - others.max()))


def attack_explorer(runs: Mapping[float, Run], x: torch.Tensor, y: torch.Tensor, class_names: Sequence[str],
                    profile: Profile) -> Explorer:
    """A test image, a training τ and ε; opens at image `profile.explore.image`, the highest τ and 8/255."""
    models: dict[float, torch.nn.Module] = {}   # loaded once per τ, on first use

    def model_for(tau: float) -> torch.nn.Module:
        if tau not in models:
            models[tau] = runs[tau].load_model()
        return models[tau]

    explore = profile.explore
    layout = W.Layout(width="300px")
    controls = {
        "index": W.IntSlider(value=min(explore.image, len(y) - 1), min=0, max=len(y) - 1,
                             description="test image", continuous_update=False, layout=layout),
        "tau": W.Dropdown(options=[(f"{t:g}", t) for t in sorted(runs)], value=max(runs),
                          description="training τ", layout=layout),
        "eps255": W.FloatSlider(value=round(explore.eps * 255, 2), min=0, max=round(explore.max_eps * 255, 2),
                                step=1, description="ε × 255", continuous_update=False, layout=layout),
    }

    def view(index: int, tau: float, eps255: float) -> AttackView:
        return attack_view(model_for(tau), x[index], y[index], tau, eps255 / 255, explore.steps, class_names)

    def numbers(**values) -> dict:
        v = view(**values)
        return {"predictions": v.predictions(), "grad_l1": v.grad_l1.tolist(), "p_max": v.p_max,
                "margin": v.margin}

    return Explorer(controls, lambda **values: plot_attack_view(view(**values)), numbers)
