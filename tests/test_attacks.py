"""Attacks: budgets, the properties any correct attack must have, and the torchattacks defects we work around."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

from tempscale import attacks
from tempscale.attacks import (AttackSpec, attack_backend, attack_spec, correct_under, default_targets, margin_loss,
                               pgd, run_attack, worst_case)
from tempscale.errors import InvalidSpecError

N = 128


@pytest.fixture(scope="module")
def digits(digits_standard):
    model, x, y = digits_standard
    return model, x[:N], y[:N]


@pytest.fixture(scope="module")
def clean_correct(digits):
    return correct_under(*digits, "clean")


def accuracy(mask: torch.Tensor) -> float:
    return mask.float().mean().item()


# --- specs --------------------------------------------------------------------------------------------------------

def test_registry_carries_the_paper_budgets():
    pgd20 = attack_spec("pgd20")
    assert (pgd20.norm, pgd20.eps, pgd20.alpha, pgd20.steps, pgd20.random_start, pgd20.loss) == \
        ("Linf", 8 / 255, 2 / 255, 20, True, "ce")
    assert attack_spec("cw_linf").loss == "margin" and attack_spec("cw_linf").steps == 20
    cw = attack_spec("cw_l2")
    assert (cw.lr, cw.steps, cw.c, cw.binary_steps, cw.kappa, cw.norm, cw.eps) == \
        (0.01, 1000, 0.01, 9, 0.0, "L2", 0.5)   # Carlini & Wagner's 9 searches; RobustBench's L2 radius
    for name, loss in (("apgd_ce", "ce"), ("apgd_dlr", "dlr")):
        spec = attack_spec(name)
        assert (spec.steps, spec.restarts, spec.eps, spec.loss) == (100, 1, 8 / 255, loss)  # not torchattacks' 10
    square = attack_spec("square")
    assert (square.n_queries, square.p_init, square.eps) == (5000, 0.8, 8 / 255)
    auto = attack_spec("autoattack")
    assert (auto.steps, auto.n_queries, auto.p_init, auto.backend) == (100, 5000, 0.8, "official")
    assert attack_spec("pgd20_targeted").targeted


def test_unknown_names_and_settings_are_rejected_with_the_choices():
    with pytest.raises(InvalidSpecError, match="pgd20.*cw_linf"):
        attack_spec("pgd-20")
    with pytest.raises(InvalidSpecError, match="stepz"):
        attack_spec("pgd20", stepz=3)
    with pytest.raises(InvalidSpecError):
        attack_spec("pgd20", norm="L2")
    with pytest.raises(InvalidSpecError):
        attack_spec("apgd_ce", targeted=True)
    with pytest.raises(InvalidSpecError, match="official.*torchattacks"):
        attack_spec("autoattack", backend="autoattack")
    with pytest.raises(InvalidSpecError, match="backend"):
        attack_spec("pgd20", backend="official")
    with pytest.raises(InvalidSpecError, match="radius"):
        attack_spec("cw_l2", eps=0)


def test_key_is_stable_canonical_and_sensitive():
    spec = attack_spec("pgd20")
    assert spec.key() == attack_spec("pgd20").key() == AttackSpec(**spec.to_dict()).key()
    assert attack_spec("pgd20", eps=0).key() == attack_spec("pgd20", eps=0.0).key()
    assert attack_spec("pgd20", steps=21).key() != spec.key()
    assert attack_spec("pgd20", seed=1).key() != spec.key()
    assert len(spec.key()) == 12


# --- the margin and the torchattacks CW defects ---------------------------------------------------------------------

def test_margin_masks_the_true_class_with_minus_infinity():
    # All non-target logits negative: the largest "other" logit is -2, not 0.
    logits = torch.tensor([[-1.0, -3.0, -2.0], [-3.0, -1.0, -2.0], [2.0, 5.0, -1.0]])
    y = torch.tensor([0, 0, 0])
    assert torch.equal(margin_loss(logits, y), torch.tensor([-1.0, 2.0, 3.0]))


def test_torchattacks_cw_margin_is_wrong_with_negative_logits_and_ours_is_right():
    import torchattacks

    logits = torch.tensor([[-1.0, -3.0, -2.0], [-3.0, -1.0, -2.0]])
    y = torch.tensor([0, 0])
    # C&W's f = max(z_y - max_{j≠y} z_j, -κ); with κ = 10 nothing is clipped: expected [1, -2].
    expected = torch.tensor([1.0, -2.0])
    dummy = nn.Linear(3, 3)
    theirs = torchattacks.CW(dummy, kappa=10).f(logits, y)
    ours = attacks._margin_fixed_cw_class()(dummy, kappa=10).f(logits, y)
    assert torch.equal(ours, expected)
    assert torch.equal(theirs, torch.zeros(2))  # both entries collapse to 0: the masked zeros win the max


def test_cw_inverse_tanh_keeps_saturated_pixels_movable():
    import torchattacks

    pixels = torch.tensor([0.0, 0.5, 1.0])
    dummy = nn.Linear(3, 3)
    assert torch.isinf(torchattacks.CW(dummy).inverse_tanh_space(pixels)[[0, 2]]).all()  # frozen forever
    fixed = attacks._margin_fixed_cw_class()(dummy)
    w = fixed.inverse_tanh_space(pixels)
    assert torch.isfinite(w).all()
    assert torch.allclose(fixed.tanh_space(w), pixels, atol=1e-6)


def test_cw_l2_smoke_never_above_clean(digits, clean_correct):
    model, x, y = digits
    spec = attack_spec("cw_l2", steps=30, c=1.0)
    correct = correct_under(model, x[:64], y[:64], spec)
    assert (correct <= clean_correct[:64]).all()
    assert accuracy(correct) < accuracy(clean_correct[:64])
    assert "fixed margin" in attack_backend(spec) and "binary search" in attack_backend(spec)


# --- PGD properties on the standard model --------------------------------------------------------------------------

def test_pgd20_is_far_below_clean_and_never_above_per_example(digits, clean_correct):
    model, x, y = digits
    for name in ("pgd20", "cw_linf"):
        robust = correct_under(model, x, y, name)
        assert (robust <= clean_correct).all(), name
        assert accuracy(robust) < accuracy(clean_correct) - 0.25, name


def test_eps_zero_gives_the_clean_prediction(digits, clean_correct):
    model, x, y = digits
    spec = attack_spec("pgd20", eps=0.0, steps=5)
    assert torch.equal(run_attack(model, x[:64], y[:64], spec), x[:64])
    assert torch.equal(correct_under(model, x, y, spec), clean_correct)


def test_more_steps_never_help_the_model(digits):
    # Same seed, same start: the first 10 iterates of the 40-step run are those of the 10-step run, and each
    # example keeps its first misclassified iterate, so a fooled example stays fooled.
    model, x, y = digits
    few = correct_under(model, x, y, attack_spec("pgd20", alpha=0.5 / 255, steps=10))
    many = correct_under(model, x, y, attack_spec("pgd20", alpha=0.5 / 255, steps=40))
    assert (many <= few).all()
    assert accuracy(many) < accuracy(few)  # and the comparison is not vacuous


class NarrowBand(nn.Module):
    """Class 1 only while the single pixel v is within 0.025 of 0.5: PGD with step 0.04 from 0.45 jumps in
    (0.49) and out again (0.53), so the *final* iterate of a 2-step run is correctly classified."""

    def __init__(self):
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(()))  # torchattacks reads the device from a parameter

    def forward(self, x):
        v = x.flatten(1)[:, 0] + self.anchor
        return torch.stack([torch.zeros_like(v), 1 - 40 * (v - 0.5).abs()], dim=1)


def test_best_so_far_keeps_a_fooling_iterate_that_the_final_iterate_loses():
    import torchattacks

    model, x, y = NarrowBand(), torch.full((1, 1, 1, 1), 0.45), torch.tensor([0])
    budget = dict(eps=0.1, alpha=0.04, random_start=False)
    final_only = torchattacks.PGD(model, steps=2, **budget)(x, y)
    assert model(final_only).argmax(1).item() == 0  # plain PGD: 2 steps "robust" although 1 step fooled it
    assert not correct_under(model, x, y, attack_spec("pgd20", steps=1, **budget)).item()
    x_adv = run_attack(model, x, y, attack_spec("pgd20", steps=2, **budget))
    assert not correct_under(model, x, y, attack_spec("pgd20", steps=2, **budget)).item()
    assert x_adv.item() == pytest.approx(0.49)


def test_more_restarts_never_help_the_model(digits):
    model, x, y = digits
    one = correct_under(model, x, y, attack_spec("pgd20", eps=4 / 255, alpha=1 / 255, steps=5))
    three = correct_under(model, x, y, attack_spec("pgd20", eps=4 / 255, alpha=1 / 255, steps=5, restarts=3))
    assert (three <= one).all()


def test_same_seed_same_result_and_caller_rng_untouched(digits):
    model, x, y = digits
    for spec in (attack_spec("pgd20"), attack_spec("apgd_ce", steps=5)):  # APGD reseeds torch's global RNG itself
        torch.manual_seed(123)
        expected_draw = torch.rand(3)
        torch.manual_seed(123)
        first = run_attack(model, x[:32], y[:32], spec)
        assert torch.equal(torch.rand(3), expected_draw), spec.name
        assert torch.equal(run_attack(model, x[:32], y[:32], spec), first), spec.name
    other_seed = run_attack(model, x[:32], y[:32], attack_spec("pgd20", seed=1))
    assert not torch.equal(other_seed, run_attack(model, x[:32], y[:32], "pgd20"))


@pytest.mark.parametrize("name, overrides", [
    ("pgd20", {}), ("cw_linf", {}), ("pgd20_targeted", {}), ("pgd20", {"restarts": 2}),
    ("apgd_ce", {"steps": 5}), ("apgd_dlr", {"steps": 5}), ("square", {"n_queries": 30}),
])
def test_linf_attacks_stay_in_the_ball_and_the_box(digits, name, overrides):
    model, x, y = digits
    spec = attack_spec(name, **overrides)
    x_adv = run_attack(model, x[:64], y[:64], spec)
    assert x_adv.shape == x[:64].shape
    assert (x_adv - x[:64]).abs().max().item() <= spec.eps + 1e-6
    assert x_adv.min().item() >= 0 and x_adv.max().item() <= 1


def test_margin_is_scale_invariant_but_ce_is_not(digits):
    # sign(∇) of the margin does not change when the logits are scaled: logit_scale must not change margin-PGD.
    model, x, y = digits
    args = dict(eps=8 / 255, alpha=2 / 255, steps=5, loss="margin", seed=0)
    assert torch.equal(pgd(model, x[:32], y[:32], **args), pgd(model, x[:32], y[:32], logit_scale=0.01, **args))
    ce = dict(args, loss="ce")
    assert not torch.equal(pgd(model, x[:32], y[:32], **ce), pgd(model, x[:32], y[:32], logit_scale=100.0, **ce))


def test_pgd_accepts_a_callable_loss(digits):
    model, x, y = digits
    args = dict(eps=8 / 255, alpha=2 / 255, steps=5, seed=0)
    by_name = pgd(model, x[:32], y[:32], loss="margin", **args)
    by_callable = pgd(model, x[:32], y[:32], loss=lambda z, lab: margin_loss(z, lab), **args)
    assert torch.equal(by_name, by_callable)


def test_targeted_pgd_targets_are_deterministic_wrong_classes_and_reached(digits, clean_correct):
    model, x, y = digits
    targets = default_targets(y, 10, seed=0)
    assert torch.equal(targets, default_targets(y, 10, seed=0))
    assert (targets != y).all() and targets.unique().numel() > 5
    # This small 16×16 model needs a larger radius to be steered to a chosen class (torchattacks' PGD: ~50% too).
    x_adv = pgd(model, x, y, eps=16 / 255, alpha=4 / 255, steps=20, targeted=True, target=targets, seed=0)
    with torch.no_grad():
        hit = (model(x_adv).argmax(1) == targets)[clean_correct]
    assert hit.float().mean() > 0.3
    robust = correct_under(model, x, y, "pgd20_targeted")
    assert (robust <= clean_correct).all()


def test_model_state_is_restored_and_no_parameter_gradients_leak(digits):
    model, x, y = digits
    grads_before = [None if p.grad is None else p.grad.clone() for p in model.parameters()]
    model.train()
    try:
        with torch.no_grad():  # attacks must work even when called under no_grad
            run_attack(model, x[:16], y[:16], attack_spec("pgd20", steps=2))
            run_attack(model, x[:16], y[:16], attack_spec("cw_l2", steps=2))  # torchattacks' CW calls backward()
        assert all(module.training for module in model.modules())
        assert all(p.requires_grad for p in model.parameters())
        for p, before in zip(model.parameters(), grads_before):
            assert (p.grad is None) if before is None else torch.equal(p.grad, before)
    finally:
        model.eval()


def test_inputs_outside_unit_box_are_rejected(digits):
    model, x, y = digits
    with pytest.raises(InvalidSpecError, match=r"\[0, 1\]"):
        run_attack(model, x[:4] * 2 - 1, y[:4], "pgd20")


# --- worst case -----------------------------------------------------------------------------------------------------

def test_worst_case_is_per_example_not_the_minimum_of_averages():
    a = torch.tensor([True, False, True, True])
    b = torch.tensor([True, True, False, True])
    combined = worst_case({"a": a, "b": b})
    assert torch.equal(combined, torch.tensor([True, False, False, True]))
    assert accuracy(combined) == 0.5 < min(accuracy(a), accuracy(b))
    with pytest.raises(InvalidSpecError):
        worst_case({})
    with pytest.raises(InvalidSpecError):
        worst_case({"a": a, "short": b[:3]})


# --- heavier attacks: smoke tests with tiny budgets ------------------------------------------------------------------

@pytest.mark.parametrize("name, overrides", [
    ("apgd_ce", {"steps": 5}), ("apgd_dlr", {"steps": 5}), ("square", {"n_queries": 30}),
    ("autoattack", {"steps": 3, "n_queries": 10}), ("autoattack", {"steps": 3, "n_queries": 10,
                                                                   "backend": "torchattacks"}),
])
def test_heavy_attacks_run_and_never_beat_clean(digits, clean_correct, name, overrides):
    model, x, y = digits
    spec = attack_spec(name, **overrides)
    correct = correct_under(model, x[:32], y[:32], spec)
    assert correct.dtype == torch.bool and correct.shape == (32,)
    assert (correct <= clean_correct[:32]).all()
    backend = attack_backend(spec)
    expected = "pyautoattack 0.2.0 (official" if spec.backend == "official" else "torchattacks 3.5.1"
    assert backend.startswith(expected)


def test_apgd_beats_clean_clearly(digits, clean_correct):
    model, x, y = digits
    correct = correct_under(model, x, y, attack_spec("apgd_ce", steps=10))
    assert accuracy(correct) < accuracy(clean_correct) - 0.25
    assert not math.isnan(accuracy(correct))


# --- C&W-L2: binary search over c, scored at an L2 radius ------------------------------------------------------------

class ScaledLinear(nn.Module):
    """`linear(x) · scale`: one decision boundary, logits of any scale."""

    def __init__(self, linear: nn.Module, scale: float):
        super().__init__()
        self.linear, self.scale = linear, scale

    def forward(self, x):
        return self.linear(x) * self.scale


@pytest.fixture(scope="module")
def linear_digits(digits_standard):
    """A linear classifier on the 16×16 digits (plain torch, seeded) and 64 test images."""
    import torch.nn.functional as F

    _, x, y = digits_standard
    torch.manual_seed(0)
    linear = nn.Sequential(nn.Flatten(), nn.Linear(x[0].numel(), 10))
    opt = torch.optim.Adam(linear.parameters(), 1e-2)
    for _ in range(200):
        opt.zero_grad()
        F.cross_entropy(linear(x), y).backward()
        opt.step()
    return linear.eval(), x[:64], y[:64]


CW_FAST = dict(steps=100)    # per c: enough for this linear model (more steps change the median by < 1%)


def test_cw_l2_with_binary_search_does_not_measure_the_logit_scale(linear_digits):
    """The issue's case: one decision boundary at logit scales 0.1 … 100 must give the same C&W-L2 numbers.

    A fixed c trades ‖δ‖² against c · margin, and the margin grows with the scale: with c fixed the attack is a
    measure of the scale (the old attack: 0.89 / 0.89 / 0.73 / 0.00). The binary search finds the c each example
    needs, so the minimum L2 distance, hence the accuracy at any radius, no longer depends on it."""
    linear, x, y = linear_digits
    results = {}
    for scale in (0.1, 1.0, 10.0, 100.0, 3.0):
        correct, distance = correct_under(ScaledLinear(linear, scale), x, y, attack_spec("cw_l2", **CW_FAST),
                                          with_distance=True)
        results[scale] = (int(correct.sum()), distance)
    counts = [count for count, _ in results.values()]
    medians = [float(distance.median()) for _, distance in results.values()]
    assert max(counts) - min(counts) <= 1, counts                                  # accuracy at the 0.5 radius
    assert max(medians) / min(medians) < 1.05, medians
    at_one = [int((distance > 1.0).sum()) for _, distance in results.values()]   # a radius near the median
    assert max(at_one) - min(at_one) <= 1, at_one
    assert 0 < counts[0] < len(y) and torch.isfinite(results[1.0][1]).all()      # not vacuous: all fooled, some far
    fixed = [int(correct_under(ScaledLinear(linear, scale), x, y,
                               attack_spec("cw_l2", binary_steps=1, **CW_FAST)).sum()) for scale in (0.1, 100.0)]
    assert fixed[0] - fixed[1] > 1, fixed           # one fixed c (the first search alone) still measures the scale


def test_cw_l2_keeps_the_smallest_adversarial_over_the_searches(linear_digits):
    linear, x, y = linear_digits
    _, first = correct_under(linear, x, y, attack_spec("cw_l2", binary_steps=1, **CW_FAST), with_distance=True)
    correct, searched = correct_under(linear, x, y, attack_spec("cw_l2", **CW_FAST), with_distance=True)
    assert (searched <= first + 1e-6).all() and (searched < first - 1e-3).any()
    assert torch.equal(correct, ~(searched <= 0.5))                      # robust iff not fooled within the radius
    x_adv = run_attack(linear, x, y, attack_spec("cw_l2", **CW_FAST))
    with torch.no_grad():
        fooled = linear(x_adv).argmax(1) != y
    assert torch.allclose((x_adv - x).flatten(1).norm(dim=1)[fooled], searched[fooled])
    assert x_adv.min() >= 0 and x_adv.max() <= 1


def test_cw_l2_distance_is_zero_for_misclassified_and_infinite_for_failures(digits):
    model, x, y = digits
    wrong = (y + 1) % 10                            # every clean image "misclassified"
    correct, distance = correct_under(model, x[:8], wrong[:8], attack_spec("cw_l2", steps=2, binary_steps=1),
                                      with_distance=True)
    assert not correct.any() and torch.equal(distance, torch.zeros(8))
    correct, distance = correct_under(model, x[:8], y[:8], attack_spec("cw_l2", steps=1, binary_steps=1,
                                                                       c=1e-9), with_distance=True)
    assert torch.isinf(distance[correct]).all() and correct.any()      # too small a c: not fooled, ∞, robust
    assert correct_under(model, x[:8], y[:8], "pgd20", with_distance=True)[1] is None


class _CountingLinear(nn.Module):
    """A linear classifier that counts the images it is shown."""

    def __init__(self, dim: int, classes: int = 3):
        super().__init__()
        self.linear = nn.Linear(dim, classes)
        self.seen = 0

    def forward(self, x):
        self.seen += len(x)
        return self.linear(x.flatten(1))


def test_pgd_stops_attacking_examples_it_has_broken():
    """Broken examples leave the batch: their kept iterate can no longer change, so attacking them is waste."""
    torch.manual_seed(0)
    model = _CountingLinear(4)
    x = torch.rand(32, 1, 2, 2)
    y = model(x).argmax(dim=1)
    model.seen = 0
    x_adv = attacks.pgd(model, x, y, eps=1.0, alpha=0.5, steps=20, random_start=False)
    fooled = model(x_adv).argmax(dim=1) != y
    assert fooled.all(), "a linear model falls in the whole box"
    assert model.seen < 32 * 21 / 4, f"{model.seen} images forwarded: broken ones were attacked again"
    assert ((x_adv - x).abs() <= 1.0 + 1e-6).all()
