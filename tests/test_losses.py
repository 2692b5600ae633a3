"""Eq. 3 and the paper's closed-form gradients (Eqs. 4–9) against autograd."""
import pytest
import torch

from tempscale.errors import InvalidSpecError
from tempscale.losses import closed_form_gradients, temperature_ce


def _problem(seed=0, batch=6, dim=5, classes=4):
    g = torch.Generator().manual_seed(seed)
    f = torch.randn(batch, dim, generator=g) * 3
    W = torch.randn(classes, dim, generator=g)
    b = torch.randn(classes, generator=g)
    y = torch.randint(0, classes, (batch,), generator=g)
    return f, W, b, y


@pytest.mark.parametrize("tau", [0.1, 0.5, 1.0, 10.0, 50.0])
def test_per_sample_gradients_match_autograd(tau):
    f, W, b, y = _problem()
    closed = closed_form_gradients(f, W, b, y, tau)
    for n in range(len(y)):
        fn, Wn = f[n:n + 1].clone().requires_grad_(), W.clone().requires_grad_()
        loss = temperature_ce(fn @ Wn.T + b, y[n:n + 1], tau)
        d_f, d_W = torch.autograd.grad(loss, (fn, Wn))
        torch.testing.assert_close(closed["dW"][n], d_W, rtol=1e-5, atol=1e-6)   # Eqs. 4 and 5
        torch.testing.assert_close(closed["df"][n], d_f[0], rtol=1e-5, atol=1e-6)  # Eq. 6


def test_positive_prototype_moves_toward_f_and_negatives_away():
    f, W, b, y = _problem(seed=1)
    dW = closed_form_gradients(f, W, b, y, 10.0)["dW"]
    for n, i in enumerate(y.tolist()):
        along_f = dW[n] @ f[n]
        assert along_f[i] < 0                     # gradient descent moves w_i toward f(x) (Eq. 4)
        assert (torch.cat([along_f[:i], along_f[i + 1:]]) > 0).all()   # and w_j away (Eq. 5)


@pytest.mark.parametrize("tau", [0.5, 50.0])
def test_batch_sums_are_eqs_7_to_9(tau):
    f, W, b, y = _problem(seed=2, batch=16)
    Wg, fg = W.clone().requires_grad_(), f.clone().requires_grad_()
    loss = temperature_ce(fg @ Wg.T + b, y, tau, reduction="sum")
    d_f, d_W = torch.autograd.grad(loss, (fg, Wg))
    closed = closed_form_gradients(f, W, b, y, tau)
    torch.testing.assert_close(closed["dW"].sum(0), d_W, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(closed["df"], d_f, rtol=1e-5, atol=1e-6)


def test_high_tau_equalises_sample_weights():
    """Eqs. 7–9: the per-sample weight 1 − P_i^τ is more uniform across a batch at high τ."""
    f, W, b, y = _problem(seed=3, batch=64)
    spread = {tau: closed_form_gradients(f, W, b, y, tau)["weights"].std().item() for tau in (0.5, 50.0)}
    assert spread[50.0] < spread[0.5]


def test_tau_one_is_plain_cross_entropy():
    f, W, b, y = _problem()
    torch.testing.assert_close(temperature_ce(f @ W.T + b, y, 1.0), torch.nn.functional.cross_entropy(f @ W.T + b, y))


@pytest.mark.parametrize("tau", [0, -1.0, float("nan"), float("inf")])
def test_non_positive_tau_rejected(tau):
    f, W, b, y = _problem()
    with pytest.raises(InvalidSpecError, match="τ"):
        temperature_ce(f @ W.T, y, tau)
