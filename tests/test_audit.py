"""The gradient-masking audit must flag planted masking, leave an honest model alone, and wire every check in; a new
check is one registered class.

The planted case is the standard τ = 1 digits model with its logits multiplied by 1e4: the same decision boundary
(so the same true robustness) but a saturated softmax whose cross-entropy gradient is exactly zero — defensive
distillation's failure mode with nothing else changed.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from tempscale import paper  # noqa: E402
from tempscale.audit import (CHECKS, NO_MASKING, SUSPECTED, AttackRunner, AuditBudget, Check,  # noqa: E402
                             CheckResult, ScaledLogits, audit, audit_grid, audit_run, gradient_statistics,
                             register_check, resolve_budget, summarize, unregister_check, verdict_table)
from tempscale.audit.checks.vanishing_gradients import VanishingGradients  # noqa: E402
from tempscale.errors import InvalidSpecError  # noqa: E402
from tempscale.plots.audit import (plot_accuracy_vs_tau, plot_gradients_vs_tau,  # noqa: E402
                                   plot_robustness_vs_eps)
from tempscale.profiles import get_profile  # noqa: E402
from tempscale.runs import get_or_train  # noqa: E402

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
    assert acc["cw_linf"] <= acc["pgd20"] - 20 and acc["apgd_dlr"] <= acc["pgd20"] - 20


def test_scale_invariant_attacks_see_through_the_planted_scale(plain_report, planted_report):
    """Multiplying the logits by 1e4 changes no prediction, so honest attacks must find the plain model's accuracy."""
    plain, planted = plain_report.accuracy, planted_report.accuracy
    one = 100 / N
    assert abs(planted["cw_linf"] - plain["cw_linf"]) <= 2 * one
    assert abs(planted["apgd_dlr"] - plain["apgd_dlr"]) <= 2 * one
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
    """A check runs on any model and data without the rest of the audit: it only needs a runner."""
    _, planted, x, y = data
    result = VanishingGradients().run(AttackRunner(planted, x, y, budget={"n": 32}))
    assert result.flagged and result.numbers["n_correct"] <= 32


@pytest.mark.parametrize("which", ["plain", "planted"])
def test_report_keeps_its_promises(which, plain_report, planted_report):
    """What every report promises, whatever the model: the verdict names exactly the flagged checks, the worst case
    is at most every attack's accuracy, and an unbounded attack that leaves too many correct is flagged."""
    report = {"plain": plain_report, "planted": planted_report}[which]
    assert report.verdict == NO_MASKING or report.verdict == f"{SUSPECTED}: {', '.join(report.flagged)}"
    acc = report.accuracy
    assert all(acc["worst_case"] <= v + 1e-9 for k, v in acc.items() if k != "clean"), "worst case is the minimum"
    sweep = report.check("eps-sweep")
    assert sweep.numbers["unbounded_ce"] <= report.budget.unbounded_pp or sweep.flagged


@pytest.fixture
def registered_check():
    """A check a test file adds with one decorator line, removed afterwards so other tests see the built-in set."""
    @register_check
    class CleanAccuracyFloor(Check):
        name = "clean-accuracy-floor"

        def run(self, runner: AttackRunner) -> CheckResult:
            clean = 100.0 * float(runner.clean.float().mean())
            return CheckResult(self.name, clean < 101.0, {"clean": clean}, f"clean accuracy {clean:.1f}%")

    yield CleanAccuracyFloor
    unregister_check(CleanAccuracyFloor.name)


def test_a_registered_check_runs_inside_audit(data, cache, registered_check):
    """Adding a check is one class and one registration line: `audit()` runs it after the built-in ones, and its
    flag reaches the verdict."""
    model, _, x, y = data
    report = audit(model, x, y, tau_train=1.0, budget="smoke", cache_dir=cache,
                   checks=["vanishing-gradients", registered_check.name])
    assert [c.name for c in report.checks] == ["vanishing-gradients", registered_check.name]
    assert report.check(registered_check.name).numbers["clean"] == report.accuracy["clean"]
    assert report.flagged == [registered_check.name] and registered_check.name in report.verdict
    with pytest.raises(InvalidSpecError):
        register_check(type("Impostor", (Check,), {"name": registered_check.name}))


def test_budgets_come_from_the_profile():
    smoke = resolve_budget("smoke")
    assert (smoke.n, smoke.apgd_steps, smoke.square_queries) == (64, 10, 50)
    assert resolve_budget({"n": 16, "restarts": 3}).n == 16
    assert isinstance(resolve_budget(smoke), AuditBudget)
    with pytest.raises(InvalidSpecError):
        resolve_budget({"queries": 5})
    with pytest.raises(InvalidSpecError):
        audit(torch.nn.Identity(), torch.zeros(1, 3, 4, 4), torch.zeros(1, dtype=torch.long), 1.0, checks=["nope"])


@dataclass
class _StoredRun:
    """What `audit_grid` needs of a stored run."""

    model: torch.nn.Module
    eval_dir: Path

    def load_model(self) -> torch.nn.Module:
        return self.model


def test_audit_grid_one_report_per_tau(data, cache):
    """Every τ of a grid is audited on the same images, each against the grid's τ = 1 model for transfer."""
    model, planted, x, y = data
    lines = []
    reports = audit_grid({1.0: _StoredRun(model, cache), 1e4: _StoredRun(planted, cache)}, x, y, budget="smoke",
                         log=lines.append)
    assert list(reports) == [1.0, 1e4] and len(lines) == 2
    assert all(r.n == N and "transfer" in r.accuracy for r in reports.values())
    assert not reports[1.0].suspected and reports[1e4].suspected


def test_grid_table_and_summary(plain_report, planted_report):
    """Notebook 10's verdict table and conclusions, from a two-τ grid (the planted model posing as τ = 50)."""
    reports = {1.0: plain_report, 50.0: planted_report}
    published = paper.attack_table("resnet50", "cifar10")
    table = verdict_table(reports, published, "test scale")
    assert list(table.index) == [1.0, 50.0]
    assert table.loc[1.0, ("verdict", "this run")] == NO_MASKING
    assert table.loc[50.0, ("verdict", "this run")].startswith("suspected: ")
    assert table.loc[50.0, ("pgd20", "paper")] == published.loc[50.0, "pgd20"]
    overstated = planted_report.accuracy["pgd20"] - planted_report.accuracy["worst_case"]
    assert table.loc[50.0, ("overstated_pp", "this run")] == pytest.approx(overstated)
    summary = summarize(reports, published, "test scale", "quick").splitlines()
    assert summary[0] == "Scale: test scale."
    assert summary[-2].startswith("Gradient masking is suspected at τ = 50 (")
    assert summary[-1] == "No masking detected at τ ∈ {1}."


def test_figures_draw_from_reports(plain_report, planted_report):
    reports = {1.0: plain_report, 50.0: planted_report}
    profile = get_profile("smoke")
    published = paper.attack_table("resnet50", "cifar10")
    figures = [plot_robustness_vs_eps(reports, profile), plot_accuracy_vs_tau(reports, published, profile),
               plot_gradients_vs_tau(reports)]
    assert [len(f.axes) for f in figures] == [len(plain_report.budget.curve_losses), 1, 2]
    plt.close("all")


def test_audit_run_for_the_cli(tmp_path):
    """audit_run on a stored smoke run: JSON out, transfer skipped with a note when the τ = 1 run is absent."""
    profile = get_profile("smoke")
    run = get_or_train(profile.spec(50.0), runs_dir=tmp_path, progress=False)
    out = audit_run(run, profile, n_eval=32, checks=["vanishing-gradients", "transfer"])
    json.dumps(out)
    assert out["n"] == 32 and out["reference_run"] is None
    assert out["checks"]["transfer"]["numbers"]["skipped"]
    assert "τ = 1" in out["checks"]["transfer"]["explanation"]
