"""The gradient-masking audit must flag planted masking, leave an honest model alone, and wire every check in; a new
check is one registered class.

The planted case is the standard τ = 1 digits model with its logits multiplied by 1e4: the same decision boundary
(so the same true robustness) but a saturated softmax whose cross-entropy gradient is exactly zero — defensive
distillation's failure mode with nothing else changed. Partial masking multiplies the logits by 10, 30 or 100 (tiny
but mostly non-zero gradients); `Quantized` rounds its input to 1/255 (exactly zero gradients for every loss, the
same predictions) and, noise-fragile, also breaks under noise that decorrelates the (identical) colour channels.
"""
from __future__ import annotations

import copy
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
from tempscale.attacks import pgd  # noqa: E402
from tempscale.audit.checks.black_box import BlackBox  # noqa: E402
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


N_STAT = 128            # examples for the tests whose decisions rest on the significance rules
BUILT_IN = ("black-box", "scale-invariant", "vanishing-gradients", "eps-sweep", "more-iterations", "transfer")


class Quantized(torch.nn.Module):
    """The model behind round(x·255)/255: the same predictions (up to 1/510 per pixel), an input gradient that is
    exactly zero for every loss. `noise_fragile`: also rolls the logits (a wrong class) when the colour channels,
    identical in every clean digit, differ by more than `threshold` on average, which uniform noise of ≥ 32/255 does
    and 8/255 does not."""

    def __init__(self, model: torch.nn.Module, noise_fragile: bool = False, threshold: float = 0.05):
        super().__init__()
        self.model = model
        # buffers, not attributes: the evaluation cache tells models apart by their state dict
        self.register_buffer("threshold", torch.tensor(threshold if noise_fragile else float("inf")))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = torch.round(x * 255) / 255
        z = self.model(q)
        if torch.isfinite(self.threshold):
            rough = (q[:, 0] - q[:, 1]).abs().flatten(1).mean(dim=1) > self.threshold
            z = torch.where(rough[:, None], z.roll(1, dims=1), z)
        return z


def _digits_split():
    """conftest's digits data (16×16, 3 identical channels) and split: (x_train, y_train, x_test, y_test)."""
    import numpy as np
    import torch.nn.functional as F
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    x = F.interpolate(x, size=16, mode="bilinear", align_corners=False).clamp(0, 1).repeat(1, 3, 1, 1)
    y = torch.tensor(digits.target)
    tr, te = train_test_split(np.arange(len(y)), test_size=0.25, random_state=0, stratify=y.numpy())
    return x[tr], y[tr], x[te], y[te]


def _train(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, seed: int, epochs: int) -> torch.nn.Module:
    """Adam, batches of 64, the batch order drawn from `seed` (the initialisation is the caller's)."""
    generator = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    for _ in range(epochs):
        order = torch.randperm(len(y), generator=generator)
        for i in range(0, len(y), 64):
            batch = order[i:i + 64]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
            opt.step()
    return model.eval()


def _cnn(seed: int) -> torch.nn.Module:
    """conftest's CNN, initialised from `seed`."""
    torch.manual_seed(seed)
    nn = torch.nn
    return nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(64, 10))


@pytest.fixture(scope="module")
def second_model():
    """A second clean CNN, trained like `digits_standard` from another seed: an independent honest model."""
    x_train, y_train, _, _ = _digits_split()
    return _train(_cnn(1), x_train, y_train, seed=1, epochs=15)


@pytest.fixture(scope="module")
def models(data):
    model, planted, _, _ = data
    return {"plain": model, "planted": planted, "quantized": Quantized(model)}


# Per check, a model (of `models`) and budget changes under which it fires; the reference is the plain model.
CONDITIONS = {
    "black-box": ("quantized", {}),               # zero gradients for every loss: only Square moves
    "scale-invariant": ("planted", {}),
    "vanishing-gradients": ("planted", {}),
    "eps-sweep": ("planted", {}),
    "more-iterations": ("plain", {"alpha": 0.25 / 255}),   # PGD-20 can move 5/255 of the 8/255 ball: unconverged
    "transfer": ("planted", {}),
}


def test_planted_masking_is_flagged(planted_report):
    report = planted_report
    assert report.suspected and report.verdict.startswith("gradient masking suspected: ")
    for name in ("scale-invariant", "vanishing-gradients", "eps-sweep", "transfer"):
        assert name in report.flagged, (name, report.to_frame().to_string())
    # the masking is all PGD-on-CE sees: it keeps (almost) the clean accuracy, the scale-invariant attacks do not
    acc = report.accuracy
    assert acc["pgd20"] >= acc["clean"] - 5
    assert acc["cw_linf"] <= acc["pgd20"] - 20 and acc["apgd_dlr"] <= acc["pgd20"] - 20
    # black-box compares Square with every white-box attack, margin and targeted ones included (AutoAttack's rule
    # assumes them): those do not saturate, so Square has nothing left to expose here
    box = report.check("black-box").numbers
    assert {"cw_linf", "apgd_dlr"} <= set(box["white_box_attacks"]) and box["targets"] == 3
    assert box["white_box"] <= acc["cw_linf"] and not report.check("black-box").flagged


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
    sweep = plain_report.check("eps-sweep").numbers
    assert sweep["unbounded_ce"] == 0.0
    assert sweep["versus_noise"]["pgd_beats_noise_somewhere"] and not sweep["reasons"]["noise"]
    assert plain_report.skipped == ["transfer"]             # no reference given: skipped, not passed


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


@pytest.mark.parametrize("name", BUILT_IN)
def test_disabling_a_check_changes_a_verdict(name, models, data, cache):
    """For each check, a model and budget under which it flags; the same audit without that check gives another
    verdict (and every other check decides as before). Attack results come from the module's cache."""
    plain, _, x, y = data
    model_name, changes = CONDITIONS[name]
    budget = {"profile": "smoke", **changes}
    full = audit(models[model_name], x, y, tau_train=1.0, reference_model=plain, budget=budget, cache_dir=cache)
    assert name in full.flagged, full.to_frame().to_string()
    others = [check for check in CHECKS if check != name]
    without = audit(models[model_name], x, y, tau_train=1.0, reference_model=plain, budget=budget, cache_dir=cache,
                    checks=others)
    assert without.verdict != full.verdict and name not in [c.name for c in without.checks]
    assert set(without.flagged) == set(full.flagged) - {name}
    if name == "more-iterations":       # the unconverged PGD-20 is a plain model's only finding
        assert full.flagged == [name] and without.verdict == NO_MASKING


def test_cached_rerun_reattacks_nothing(data, cache, plain_report):
    model, _, x, y = data
    again = audit(model, x, y, tau_train=1.0, budget="smoke", cache_dir=cache, checks=["black-box", "scale-invariant"])
    assert again.accuracy["pgd20"] == plain_report.accuracy["pgd20"]
    assert any(cache.rglob("result.json"))


def test_report_is_json_and_a_table(planted_report):
    payload = json.loads(json.dumps(planted_report.to_dict()))
    assert payload["verdict"] == planted_report.verdict
    assert set(payload["checks"]) == set(CHECKS)
    assert payload["checks"]["black-box"]["numbers"]["square_only_broken"] >= 0
    assert payload["checks"]["transfer"]["status"] == "flagged" and payload["skipped"] == []
    frame = planted_report.to_frame()
    assert list(frame.index) == list(CHECKS) and frame["flagged"].dtype == bool
    assert set(frame["status"]) <= {"flagged", "passed", "skipped"}


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
    assert all(r.n == N for r in reports.values()) and "transfer" in reports[1e4].accuracy
    assert not reports[1.0].suspected and reports[1e4].suspected
    # the τ = 1 reference against itself: skipped (a transfer to itself cannot fail), not passed
    assert reports[1.0].skipped == ["transfer"] and reports[1e4].skipped == []
    assert "weights" in reports[1.0].check("transfer").explanation


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
    assert table.loc[1.0, ("skipped", "this run")] == "transfer"     # no reference: shown as skipped
    assert table.loc[50.0, ("skipped", "this run")] == "none"
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


# --- the blind spots and false alarms of issue #12 ------------------------------------------------------------------

def test_noise_fragile_zero_gradient_model_is_flagged(data, cache):
    """Zero input gradients everywhere, broken by noise alone at large ε: the CE curve reaches 0% through PGD's random
    start, so only the unbounded attack from the clean image (on every example) and the noise baseline see it."""
    model, _, x, y = data
    fragile = Quantized(model, noise_fragile=True)
    result = audit(fragile, x, y, tau_train=1.0, budget="smoke", cache_dir=cache, checks=["eps-sweep"]).check(
        "eps-sweep")
    numbers, largest = result.numbers, result.numbers["largest_eps"]
    assert result.flagged, result.explanation
    assert numbers["ce_at_largest_eps"] <= numbers["chance"]      # what the old rule looked at: healthy
    assert numbers["noise"][largest] <= 5 and numbers["noise"]["8/255"] >= numbers["curves"]["ce"]["8/255"] - 2
    assert numbers["unbounded_ce"] >= 60                           # from the clean image, nothing moves
    assert numbers["reasons"]["unbounded"] and numbers["reasons"]["noise"]
    assert not numbers["versus_noise"]["pgd_beats_noise_somewhere"]


@pytest.mark.parametrize("scale", [10.0, 30.0, 100.0])
def test_partial_masking_is_flagged(digits_standard, scale):
    """Logits × 10 / 30 / 100: tiny but mostly non-zero CE gradients (PGD-20 still breaks some examples)."""
    model, x, y = digits_standard
    report = audit(ScaledLogits(model, scale), x[:N_STAT], y[:N_STAT], tau_train=1.0, reference_model=model,
                   budget={"n": N_STAT})
    assert report.suspected, report.to_frame().to_string()
    assert report.check("vanishing-gradients").numbers["zero_grad_pct"] < 90    # not the trivial 1e4 case


def test_two_independent_clean_models_are_not_flagged(digits_standard, second_model):
    """Each honest model audited with the other as transfer reference: nothing fires, transfer runs."""
    model, x, y = digits_standard
    for audited, reference in ((model, second_model), (second_model, model)):
        report = audit(audited, x[:N_STAT], y[:N_STAT], tau_train=1.0, reference_model=reference,
                       budget={"n": N_STAT})
        assert report.verdict == NO_MASKING and report.skipped == [], report.to_frame().to_string()


def test_transfer_uses_final_iterates():
    """Two correlated linear models (same data, other seeds): the reference attack's first fooling iterate sits just
    past its boundary and transfers badly; the final iterate transfers much better (issue #12: 60% vs 37%)."""
    x_train, y_train, x_test, y_test = _digits_split()
    linear = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        linear.append(_train(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(768, 10)), x_train, y_train,
                             seed=seed, epochs=10))
    audited, reference = linear
    x, y, eps = x_test[:N_STAT], y_test[:N_STAT], 24 / 255
    first = pgd(reference, x, y, eps=eps, alpha=eps / 4, steps=20)    # best-so-far: the first fooling iterate
    first_acc = 100.0 * float((audited(first).argmax(dim=1) == y).float().mean())
    result = audit(audited, x, y, 1.0, reference_model=reference, budget={"n": N_STAT, "eps": eps, "alpha": eps / 4},
                   checks=["transfer"]).check("transfer")
    assert result.numbers["transfer"] <= first_acc - 15, (result.numbers["transfer"], first_acc)
    assert result.numbers["iterates"] == "final"


def test_transfer_against_itself_is_skipped(data, cache):
    """A reference with the audited model's weights (another object) cannot fail the check: skipped, not passed."""
    model, _, x, y = data
    report = audit(model, x, y, 1.0, reference_model=copy.deepcopy(model), budget="smoke", cache_dir=cache,
                   checks=["transfer"])
    result = report.check("transfer")
    assert result.skipped and not result.flagged and result.status == "skipped"
    assert report.skipped == ["transfer"] and report.to_frame().loc["transfer", "status"] == "skipped"


def test_scale_invariant_compares_equal_budgets(data, cache):
    """A healthy model whose PGD is cut to 3 steps while APGD keeps 30: APGD-DLR beats PGD-3 by budget alone, not
    by its loss; compared with APGD-CE (same steps) and C&W with PGD-3 on CE, nothing fires."""
    model, _, x, y = data
    budget = {"profile": "smoke", "pgd_steps": 3, "apgd_steps": 30}
    result = audit(model, x, y, 1.0, budget=budget, cache_dir=cache, checks=["scale-invariant"]).check(
        "scale-invariant")
    numbers = result.numbers
    assert not result.flagged, result.explanation
    assert numbers["apgd_dlr"] <= numbers["pgd20"] - 10               # the old comparison would have flagged
    assert numbers["pairs"]["apgd_dlr"]["vs"] == "apgd_ce" and numbers["pairs"]["cw_linf"]["vs"] == "pgd20"


class _GivenMasks(AttackRunner):
    """A runner whose attacks return given per-example masks: the black-box decision rule on its own."""

    def __init__(self, masks: dict[str, torch.Tensor]):
        n = len(next(iter(masks.values())))
        x = torch.zeros(n, 3, 4, 4)
        model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(48, 10))
        super().__init__(model, x, model(x).argmax(dim=1).detach(), budget={"n": n})
        self.masks = masks

    def named(self, name: str) -> torch.Tensor:
        return self.masks[name] & self.clean

    def targeted(self, among: torch.Tensor) -> torch.Tensor:
        return among & self.masks.get("targeted", torch.ones_like(among))


@pytest.mark.parametrize("square_only, flagged", [(1, False), (3, True)])
def test_black_box_needs_a_significant_count(square_only, flagged):
    """One example beyond the white-box set out of 64 is p = 0.12 against AutoAttack's 0.2 pp: not a verdict;
    three are p = 3e-4."""
    n = 64
    white = torch.arange(n) < 50
    square = white.clone()
    square[:square_only] = False
    masks = {name: white for name in ("pgd20", "apgd_ce", "apgd_dlr", "cw_linf")}
    result = BlackBox().run(_GivenMasks({**masks, "square": square}))
    assert result.flagged == flagged and result.numbers["square_only_broken"] == square_only


def test_black_box_white_box_set_breaks_what_only_targeted_attacks_break():
    """An example only the targeted attacks break is not Square's: it leaves the white-box set."""
    n = 64
    white = torch.arange(n) < 50
    square = white & (torch.arange(n) >= 5)                  # Square breaks 5 examples the untargeted attacks miss
    targeted = torch.arange(n) >= 5                          # ... and so do the targeted attacks
    masks = {name: white for name in ("pgd20", "apgd_ce", "apgd_dlr", "cw_linf")}
    runner = _GivenMasks({**masks, "square": square, "targeted": targeted})
    assert not BlackBox().run(runner).flagged
    assert BlackBox().run(_GivenMasks({**masks, "square": square})).flagged


def test_targeted_attacks_ignore_softmax_saturation(data):
    """Targeted margin PGD towards the likeliest wrong classes breaks the 1e4-planted model about as much as the
    plain one: what black-box's white-box set adds."""
    model, planted, x, y = data
    plain_runner, planted_runner = AttackRunner(model, x, y, "smoke"), AttackRunner(planted, x, y, "smoke")
    plain = plain_runner.targeted(plain_runner.clean)
    masked = planted_runner.targeted(planted_runner.clean)
    assert planted_runner.target_classes().shape == (N, 3)
    assert int(masked.sum()) <= int(plain.sum()) + 3 and int(masked.sum()) < int(planted_runner.clean.sum()) - 10


def test_significance_rules():
    """The stated rules: exact one-sided McNemar on discordant pairs, exact binomial against a tolerated rate."""
    from tempscale.audit.checks.base import above_rate, mcnemar_p, stronger
    assert mcnemar_p(5, 0) == pytest.approx(1 / 32) and mcnemar_p(4, 0) == pytest.approx(1 / 16)
    assert mcnemar_p(0, 0) == 1.0 and mcnemar_p(6, 6) > 0.5
    assert not above_rate(1, 64, 0.2, 0.05)["above"] and above_rate(2, 64, 0.2, 0.05)["above"]
    assert not above_rate(2, 200, 0.2, 0.05)["above"] and above_rate(3, 200, 0.2, 0.05)["above"]
    a, b = torch.zeros(100, dtype=torch.bool), torch.ones(100, dtype=torch.bool)
    a[:96] = True                                  # A breaks 4 examples B does not: 4 pp, but p = 1/16
    assert not stronger(a, b, 100, 2.0, 0.05)["stronger"]
    a[:90] = True
    a[90:] = False                                 # 10 examples, p ≈ 0.001
    assert stronger(a, b, 100, 2.0, 0.05)["stronger"] and not stronger(a, b, 100, 12.0, 0.05)["stronger"]
    assert resolve_budget("quick").significance == 0.05
    with pytest.raises(InvalidSpecError):
        resolve_budget({"significance": 1.5})
