"""The τ explorers: their numbers follow the closed forms, they show a widget in a Jupyter server session and a PNG
of the default view elsewhere, and they leave the global RNG alone."""
import numpy as np
import pytest
import torch

from tempscale import explorers as E
from tempscale.losses import closed_form_gradients
from tempscale.profiles import get_profile

pytest.importorskip("ipywidgets")
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


@pytest.mark.parametrize("tau", [0.1, 1.0, 50.0])
def test_gradient_view_matches_the_closed_forms(tau):
    W, f, true_class = E.fig1_toy()
    logits, _ = E.default_toy_logits()
    view = E.gradient_view(tau, logits, true_class)
    g = closed_form_gradients(torch.tensor(f)[None], torch.tensor(W), None, torch.tensor([true_class]), tau)
    np.testing.assert_allclose(view.probs, g["probs"][0].numpy(), rtol=1e-12)
    np.testing.assert_allclose(view.coefficients[:, None] * f, g["dW"][0].numpy(), atol=1e-12)    # Eqs. 4–5
    np.testing.assert_allclose((view.pull + view.push) / tau, -g["df"][0].numpy(), atol=1e-12)   # Eq. 6
    assert view.weight == pytest.approx(float(g["weights"][0]))                                   # Eqs. 7–9


def test_static_view_outside_a_server_and_widget_inside(monkeypatch):
    explorer = E.gradient_explorer(get_profile("smoke"))
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    monkeypatch.delenv(E.LIVE_ENV, raising=False)
    static = explorer._repr_mimebundle_()
    assert "image/png" in static and WIDGET_VIEW not in static
    monkeypatch.setenv("JPY_SESSION_NAME", "00_gradient_analysis.ipynb")
    assert WIDGET_VIEW in explorer._repr_mimebundle_()
    monkeypatch.setenv(E.LIVE_ENV, "0")
    assert WIDGET_VIEW not in explorer._repr_mimebundle_()


def test_attack_view_on_a_real_model_leaves_the_rng_alone(digits_standard):
    model, x, y = digits_standard
    state = torch.get_rng_state()
    view = E.attack_view(model, x[0], y[0], tau=1.0, eps=8 / 255, steps=5, class_names=[str(i) for i in range(10)])
    assert torch.equal(state, torch.get_rng_state())
    assert view.logits.shape == (3, 10) and len(view.grad_l1) == 2
    np.testing.assert_allclose(view.grad_l1[0], view.grad_l1[1], rtol=1e-5)   # at τ = 1 both losses coincide
    assert 0 < view.p_max <= 1
