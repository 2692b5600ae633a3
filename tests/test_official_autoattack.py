"""The official AutoAttack (pyautoattack, Croce & Hein's code) against ours, and its flags in the audit.

torchattacks' APGD and Square are ports of the official code that seed torch's global generator with the same seed
(``torch.random.manual_seed(seed)`` in ``perturb``) and draw their random starts and square positions in the same
order, so on the same model, images and budget they follow the same iterates. Square's images are bit-identical.
APGD's random start differs in float32 rounding only: the official code divides by ``max|t| + 1e-12``
(``APGDAttack.normalize``), torchattacks by ``max|t|``; measured on this model the images differ by at most 1.5e-8
(a few ulps) in 1–4 of 48 examples and every prediction is the same. So APGD is compared per example on correctness
(exactly) and on the images within 1e-6. The torchattacks composition of AutoAttack uses other ports of APGD-T and
FAB-T; it is compared per example with a stated tolerance.
"""
from __future__ import annotations

import sys

import pytest
import torch
import torch.nn as nn

from tempscale import attacks
from tempscale.attacks import AutoAttackFlagWarning, attack_spec, correct_under, official_adversary, run_attack

pyautoattack = pytest.importorskip("pyautoattack")
from pyautoattack import AutoAttack, checks  # noqa: E402
from pyautoattack.autopgd_base import APGDAttack  # noqa: E402
from pyautoattack.square import SquareAttack  # noqa: E402

N = 48


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def digits(digits_standard):
    model, x, y = digits_standard
    return model, x[:N], y[:N]


class Quantized(nn.Module):
    """The model on inputs rounded to 1/16: the same predictions up to rounding, an input gradient that is exactly
    zero everywhere (rounding has zero derivative): the planted zero-gradient model."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(torch.round(x * 16) / 16)


class Noisy(nn.Module):
    """A randomised model: logits plus fresh noise on every call."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x) + 0.1 * torch.randn(len(x), 10)


def official(model, attack, x, y):
    with attacks._attack_context(model):
        return attack.perturb(x, y)


# --- the project's attacks vs the official ones --------------------------------------------------------------------

@pytest.mark.parametrize("loss", ["ce", "dlr"])
@pytest.mark.parametrize("steps", [10, 100])
def test_apgd_equals_the_official_apgd(digits, loss, steps):
    model, x, y = digits
    ours = run_attack(model, x, y, attack_spec(f"apgd_{loss}", steps=steps))
    theirs = official(model, APGDAttack(model, n_iter=steps, eps=8 / 255, loss=loss, seed=0, rho=0.75,
                                        device="cpu"), x, y).detach()
    assert (ours - theirs).abs().max() <= 1e-6                      # float32 rounding of the start (docstring)
    with torch.no_grad():
        ours_correct, theirs_correct = model(ours).argmax(1) == y, model(theirs).argmax(1) == y
    assert torch.equal(ours_correct, theirs_correct)
    assert ours_correct.float().mean() < 0.7                        # not vacuous: the attack works


def test_square_equals_the_official_square(digits):
    model, x, y = digits
    ours = run_attack(model, x, y, attack_spec("square", n_queries=300))
    theirs = official(model, SquareAttack(model, n_queries=300, eps=8 / 255, p_init=0.8, seed=0,
                                          resc_schedule=False, device="cpu"), x, y)
    assert torch.equal(ours, theirs)


def test_autoattack_is_the_official_standard_run(digits):
    model, x, y = digits
    x, y = x[:12], y[:12]        # the full standard budget: a few examples keep the test short
    spec = attack_spec("autoattack")
    assert "version='standard'" in attacks.attack_backend(spec)
    with attacks._attack_context(model):
        expected, _ = AutoAttack(model, norm="Linf", eps=8 / 255, seed=0, version="standard",
                                 device="cpu").run_standard_evaluation(x, y, batch_size=len(x))
    assert torch.equal(run_attack(model, x, y, spec), expected)


def test_smaller_budgets_construct_the_official_attacks_with_that_budget(digits):
    """APGD's step-size checkpoints are computed in its constructor: n_iter_2 = max(⌊0.22 n⌋, 1) etc. Setting
    n_iter after constructing the 100-step standard attacks (the old code) leaves n_iter_2 at 22, so at 10 steps
    the step size is never halved."""
    model, x, y = digits
    spec = attack_spec("autoattack", steps=10, n_queries=50)
    adversary, _ = official_adversary(model, spec, num_classes=10, device="cpu")
    assert adversary.version == "custom" and adversary.attacks_to_run == ["apgd-ce", "apgd-t", "fab-t", "square"]
    for apgd in (adversary.apgd, adversary.apgd_targeted):
        assert (apgd.n_iter, apgd.n_iter_2, apgd.n_iter_min, apgd.size_decr) == (10, 2, 1, 1)
        assert (apgd.n_restarts, apgd.thr_decr, apgd.eps) == (1, 0.75, 8 / 255)
    assert adversary.apgd_targeted.n_target_classes == adversary.fab.n_target_classes == 9
    assert (adversary.fab.n_iter, adversary.fab.n_restarts) == (10, 1)
    assert (adversary.square.n_queries, adversary.square.p_init, adversary.square.rescale_schedule) == \
        (50, 0.8, False)
    patched = AutoAttack(model, norm="Linf", eps=8 / 255, seed=0, version="standard", device="cpu")
    patched.apgd.n_iter = 10
    assert patched.apgd.n_iter_2 == 22          # the old approach: checkpoints of 100 steps

    few_classes, _ = official_adversary(model, attack_spec("autoattack"), num_classes=5, device="cpu")
    assert few_classes.version == "custom" and few_classes.apgd_targeted.n_target_classes == 4


def test_custom_run_equals_a_direct_official_custom_run(digits):
    model, x, y = digits
    spec = attack_spec("autoattack", steps=10, n_queries=50)
    with attacks._attack_context(model):
        adversary, _ = official_adversary(model, spec, 10, "cpu")
        expected, _ = adversary.run_standard_evaluation(x, y, batch_size=len(x))
    assert torch.equal(run_attack(model, x, y, spec), expected)


def test_torchattacks_fallback_agrees_with_the_official_autoattack(digits):
    """Tolerance: 1 example in 48. APGD-CE and Square are the same code (see the module docstring) but APGD-T and
    FAB-T are different ports (torchattacks' APGDT draws its random start per target class in another order); on this
    model both leave the same examples robust (measured: 0 of 64 differ at 100 and at 10 steps)."""
    model, x, y = digits
    budget = dict(steps=10, n_queries=100)
    official_correct = correct_under(model, x, y, attack_spec("autoattack", **budget))
    composed = correct_under(model, x, y, attack_spec("autoattack", backend="torchattacks", **budget))
    assert int((official_correct != composed).sum()) <= 1
    assert official_correct.float().mean() < 0.6


# --- the official flags ----------------------------------------------------------------------------------------------

def test_official_flags_are_reissued_as_warnings(digits):
    model, x, y = digits
    with pytest.warns(AutoAttackFlagWarning, match="zero gradient"):
        run_attack(Quantized(model), x[:16], y[:16], attack_spec("autoattack", steps=2, n_queries=5))


def test_official_check_dynamic_side_effects_are_undone(digits):
    model, x, y = digits
    previous = sys.gettrace()

    def tracer(frame, event, arg):
        return None

    sys.settrace(tracer)
    try:
        checks.funcs["grad"] = 3                     # as left behind by an earlier dynamic model
        log = attacks.OfficialFlagLog()
        with attacks.official_checks_context():
            checks.check_dynamic(model, x[:4], False, logger=log)
        assert sys.gettrace() is tracer and not log.messages
    finally:
        sys.settrace(previous)


def test_official_checks_flag_a_zero_gradient_model_and_not_a_clean_one(digits):
    from tempscale.audit import audit

    model, x, y = digits
    clean = audit(model, x, y, tau_train=1.0, budget="smoke", checks=["official-checks"])
    check = clean.check("official-checks")
    assert not check.flagged and clean.verdict == "no masking detected", check.explanation
    planted = audit(Quantized(model), x, y, tau_train=1.0, budget="smoke", checks=["official-checks"])
    check = planted.check("official-checks")
    assert check.flagged and planted.flagged == ["official-checks"]
    assert check.numbers["zero_gradients"] and check.numbers["zero_gradient_points"] == \
        check.numbers["zero_gradient_examined"] > 0
    assert "zero gradients" in check.explanation and "warnings by design" in check.explanation


def test_official_randomness_flag(digits):
    from tempscale.audit.checks.official_flags import official_flags

    model, x, y = digits
    flags = official_flags(Noisy(model), x, y, eps=8 / 255, seed=0)
    assert flags["randomized"] and not flags["dynamic"] and "square" not in flags
    assert not any(official_flags(model, x, y, eps=8 / 255, seed=0).values())
