"""The gradient-masking audit must flag planted masking, leave an honest model alone, and wire every check in.

The planted case is the standard τ = 1 digits model with its logits multiplied by 1e4: the same decision boundary
(so the same true robustness) but a saturated softmax whose cross-entropy gradient is exactly zero — defensive
distillation's failure mode with nothing else changed.
"""
from __future__ import annotations

import json

import pytest
import torch

from tempscale.audit import (CHECKS, NO_MASKING, AuditBudget, ScaledLogits, audit, audit_run,
                             check_vanishing_gradients, gradient_statistics, resolve_budget)
from tempscale.errors import InvalidSpecError

N = 64
PLANT = 1e4


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread: on a shared 2-core machine two threads contend and run these small models ~10× slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data(digits_standard):
    model, x, y = digits_standard
    return model, ScaledLogits(model, PLANT), x[:N], y[:N]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("audit-cache")


@pytest.fixture(scope="module")
def plain_report(data, cache):
    model, _, x, y = data
    return audit(model, x, y, tau_train=1.0, budget="smoke", cache_dir=cache)


@pytest.fixture(scope="module")
def planted_report(data, cache):
    model, planted, x, y = data
    # tau_train=1: the audit is not told about the planted scale; the searched scale (1/std of the logits) finds it.
    return audit(planted, x, y, tau_train=1.0, reference_model=model, budget="smoke", cache_dir=cache)


def test_planted_masking_is_flagged(planted_report):
    report = planted_report
    assert report.suspected and report.verdict.startswith("gradient masking suspected: ")
    for name in ("scale-invariant", "vanishing-gradients", "black-box", "eps-sweep", "transfer"):
        assert name in report.flagged, (name, report.to_frame().to_string())
    # the masking is all PGD-on-CE sees: it keeps (almost) the clean accuracy, the scale-invariant attacks do not
    acc = report.accuracy
    assert acc["pgd20"] >= acc["clean"] - 5
    assert acc["cw-linf"] <= acc["pgd20"] - 20 and acc["apgd-dlr"] <= acc["pgd20"] - 20


def test_scale_invariant_attacks_see_through_the_planted_scale(plain_report, planted_report):
    """Multiplying the logits by 1e4 changes no prediction, so honest attacks must find the plain model's accuracy."""
    plain, planted = plain_report.accuracy, planted_report.accuracy
    one = 100 / N
    assert abs(planted["cw-linf"] - plain["cw-linf"]) <= 2 * one
    assert abs(planted["apgd-dlr"] - plain["apgd-dlr"]) <= 2 * one
    rescaled = planted_report.check("scale-invariant").numbers["pgd20_rescaled_best"]
    assert rescaled <= plain["pgd20"] + 10
    assert planted_report.accuracy["worst_case"] <= plain_report.accuracy["worst_case"] + 3 * one


def test_plain_model_is_not_flagged(plain_report):
    assert plain_report.verdict == NO_MASKING, plain_report.to_frame().to_string()
    assert plain_report.check("eps-sweep").numbers["unbounded_ce"] == 0.0


def test_zero_gradient_fraction(data, plain_report, planted_report):
    planted = planted_report.check("vanishing-gradients").numbers
    plain = plain_report.check("vanishing-gradients").numbers
    assert planted["zero_grad_pct"] >= 90 and planted["saturated_pct"] >= 90
    assert planted["margin_median"] > 1e3                      # margins scaled by 1e4
    assert plain["zero_grad_pct"] <= 5 and plain["vanishing_grad_pct"] <= 5 and plain["saturated_pct"] <= 20
    # the statistics are per example and exact: a zero gradient really is all zeros
    model, planted_model, x, y = data
    stats = gradient_statistics(planted_model, x, y)
    assert stats["max_abs_grad"].shape == (N,)
    assert bool((stats["max_abs_grad"][stats["correct"]] == 0).all())


@pytest.mark.parametrize("disabled", ["scale-invariant", "vanishing-gradients", "black-box", "eps-sweep"])
def test_each_check_is_wired_into_the_verdict(data, cache, planted_report, disabled):
    """Disabling a check removes it (and only it) from the verdict: each check really feeds the verdict.
    Attack results come from the module's cache, so these reruns cost little."""
    model, planted, x, y = data
    assert disabled in planted_report.verdict
    enabled = [name for name in CHECKS if name not in (disabled, "transfer")]
    report = audit(planted, x, y, tau_train=1.0, budget="smoke", cache_dir=cache, checks=enabled)
    assert disabled not in report.verdict and disabled not in [c.name for c in report.checks]
    assert report.suspected                                    # the remaining checks still catch it
    assert set(report.flagged) == set(planted_report.flagged) - {disabled, "transfer"}


def test_cached_rerun_reattacks_nothing(data, cache, plain_report):
    model, _, x, y = data
    again = audit(model, x, y, tau_train=1.0, budget="smoke", cache_dir=cache, checks=["black-box", "scale-invariant"])
    assert again.accuracy["pgd20"] == plain_report.accuracy["pgd20"]
    assert any(cache.rglob("result.json"))


def test_report_is_json_and_a_table(planted_report):
    payload = json.loads(json.dumps(planted_report.to_dict()))
    assert payload["verdict"] == planted_report.verdict
    assert set(payload["checks"]) == set(CHECKS)
    assert payload["checks"]["black-box"]["numbers"]["square_only_broken"] >= 1
    frame = planted_report.to_frame()
    assert list(frame.index) == list(CHECKS) and frame["flagged"].dtype == bool


def test_vanishing_check_on_its_own(data):
    """A check runs on any model and data without the rest of the audit."""
    _, planted, x, y = data
    result = check_vanishing_gradients(planted, x, y, budget={"n": 32})
    assert result.flagged and result.numbers["n_correct"] <= 32


def test_budgets_come_from_the_profile():
    smoke = resolve_budget("smoke")
    assert (smoke.n, smoke.apgd_steps, smoke.square_queries) == (64, 10, 50)
    assert resolve_budget({"n": 16, "restarts": 3}).n == 16
    assert isinstance(resolve_budget(smoke), AuditBudget)
    with pytest.raises(InvalidSpecError):
        resolve_budget({"queries": 5})
    with pytest.raises(InvalidSpecError):
        audit(torch.nn.Identity(), torch.zeros(1, 3, 4, 4), torch.zeros(1, dtype=torch.long), 1.0, checks=["nope"])


def test_audit_run_for_the_cli(tmp_path):
    """audit_run on a stored smoke run: JSON out, transfer skipped with a note when the τ = 1 run is absent."""
    from tempscale.profiles import get_profile
    from tempscale.runs import get_or_train

    profile = get_profile("smoke")
    run = get_or_train(profile.spec(50.0), runs_dir=tmp_path, progress=False)
    out = audit_run(run, profile, n_eval=32, checks=["vanishing-gradients", "transfer"])
    json.dumps(out)
    assert out["n"] == 32 and out["reference_run"] is None
    assert out["checks"]["transfer"]["numbers"]["skipped"]
    assert "τ = 1" in out["checks"]["transfer"]["explanation"]
