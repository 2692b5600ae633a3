"""Gradient-masking audit: is a model's robustness to PGD real, or are its gradients just useless to PGD?

Why: the paper's high-τ models keep 90%+ accuracy under PGD-20 at ε = 8/255, yet the thesis' own tables show
Square (gradient-free) at ≈ 1% and C&W-L2 near 1% on the same models. Training at a high softmax temperature and
attacking at τ = 1 is defensive distillation's recipe (Papernot et al. 2016), which Carlini & Wagner (2016, 2017)
broke: the logits grow τ-fold, softmax(z) saturates in float32, the cross-entropy gradient vanishes, and PGD stops
moving although the model is not robust. Each check is one of the standard tests for that failure (Carlini et al.
2019, "On Evaluating Adversarial Robustness"; Croce & Hein 2020, AutoAttack), one module each under ``checks/``
(its docstring says what it compares and when it flags): ``black-box``, ``scale-invariant``, ``vanishing-gradients``,
``eps-sweep``, ``more-iterations``, ``transfer``. `audit()` runs every registered check, as AutoAttack runs its
``attacks_to_run``; a new check is a `Check` subclass decorated with `register_check` in a module imported below.

Layout: `budget` (`AuditBudget`: a profile's audit section resolved to numbers), `runner` (`AttackRunner`:
the audited model, data and budget, and every attack on them computed once), `report` (`CheckResult`,
`AuditReport`, and the grid-level table and conclusions of notebook 10), ``checks/``.

Definitions, so the numbers can be checked:

* All fractions are over the audited examples; gradient statistics are over the clean, correctly classified ones
  (misclassified inputs need no attack).
* *exactly zero*: every component of ∂CE(z, y)/∂x is 0.0 in float32. *vanishing*: max_i |∂CE/∂x_i| < 1e-30
  (`AuditBudget.tiny_grad`), i.e. within 8 decades of float32's smallest normal number (1.2e-38): any further
  product underflows, and no step-size rule that scales with the gradient can move. (Sign-gradient PGD still moves
  on a gradient of 1e-40; it stops only at exact zeros, which is why margins are reported too.)
* *saturated*: max_j softmax(z)_j rounds to exactly 1.0 in float32. For a correct prediction this happens once the
  margin m = z_y − max_{j≠y} z_j exceeds about −ln(2⁻²⁵) ≈ 17.3 (`SATURATION_MARGIN`); then ∂CE/∂z_y = p_y − 1 = 0 and
  the gradient keeps no pull away from the true class, only a push of size ≈ e^{−m} towards the others, which itself
  underflows to 0 beyond m ≈ 103 (`UNDERFLOW_MARGIN`, −ln of the smallest float32 subnormal).
* Every attack follows `tempscale.attacks`' conventions (a misclassified clean input is never robust; best-so-far
  iterates), and every result that fits an `AttackSpec` goes through `tempscale.robustness.evaluate`, cached per
  batch under `cache_dir` (the run's ``evals/`` folder): a rerun does not attack again. Attacks that only need the
  examples an earlier attack left robust (larger ε, more steps, restarts, targeted attacks) run on those examples
  only; the unbounded attack and the noise baseline run on every example. Exceptions: the transfer check's images
  are the reference attack's final iterates, and the targeted attacks are memoised in the process only.
* *Significance* (small n must not decide a verdict by one example), α = `AuditBudget.significance` (0.05):
  - attack A *breaks more than* attack B on the same examples (scale-invariant, more-iterations, transfer, the
    noise baseline of eps-sweep) when A's accuracy is more than the check's pp threshold below B's AND the exact
    one-sided McNemar test on the discordant examples is significant: with a = #broken by A only and b = #broken by
    B only, p = P(Binomial(a + b, ½) ≥ a) < α (`checks.base.stronger`); several pairs in one check share α
    (Bonferroni);
  - a count that should be ≈ 0 (Square's breaks beyond the white-box set, the unbounded attack's survivors, CE-PGD
    above chance at the largest ε) *exceeds* its tolerated rate p0 (the check's pp / 100, or chance) when it is
    above p0·n AND P(Binomial(n, p0) ≥ count) < α (`checks.base.above_rate`); at p0 = 0.2% that takes ≥ 3 examples
    of 200 and ≥ 2 of 64;
  - vanishing-gradients measures a share, not a difference: more than `vanishing_pp` % of the correct inputs.
* *skipped*: a check that cannot run (transfer without a reference, or with a reference that has the audited
  model's weights) neither flags nor passes; reports list it under ``skipped`` and the verdict table shows it.

Budgets (steps, Square queries, ε grid, n) come from a profile (`AuditBudget.from_profile`): ``smoke`` for the tests,
``quick`` on the profile's eval set, threat model and attack budgets (the DLR curve over ε trimmed: `Audit.trims`)
so that a CPU audits the whole τ grid, ``paper`` with the profile's full AutoAttack-scale budgets.

Public API: `audit` → `AuditReport` (``verdict``, ``flagged``, ``accuracy``, ``to_frame()``, ``to_dict()``),
`audit_grid` (one report per τ), `audit_run` (the CLI's JSON), `verdict_table` / `summarize` (notebook 10's table and
conclusions), `gradient_statistics`, `robustness_curve`, `ScaledLogits`, `AuditBudget` / `resolve_budget`, `CHECKS`.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Iterable, Mapping

import torch
import torch.nn as nn

from ..attacks import worst_case
from ..experiments import eval_set
from ..profiles import Profile, get_profile
from ..runs import Run
from ..tables import format_tau
from .budget import SATURATION_MARGIN, UNDERFLOW_MARGIN, AuditBudget, BudgetLike, resolve_budget
from .checks.base import Check, check_names, eps_label, pct, register_check, select_checks, unregister_check
from .report import (NO_MASKING, SUSPECTED, AuditReport, CheckResult, grid_accuracy, grid_gradients, grid_metrics,
                     summarize, verdict_table)
from .runner import AttackRunner, ScaledLogits

# The built-in checks: importing a module registers its check, and registration order is the audit's order.
# isort: off
from .checks import black_box            # noqa: F401
from .checks import scale_invariant      # noqa: F401
from .checks import vanishing_gradients  # noqa: F401
from .checks import eps_sweep            # noqa: F401
from .checks import more_iterations      # noqa: F401
from .checks import transfer             # noqa: F401
from .checks import official_flags       # noqa: F401
# isort: on
from .checks.eps_sweep import robustness_curve
from .checks.transfer import transfer_examples
from .checks.vanishing_gradients import gradient_statistics

CHECKS: tuple[str, ...] = check_names()

__all__ = [
    "CHECKS", "NO_MASKING", "SATURATION_MARGIN", "SUSPECTED", "UNDERFLOW_MARGIN",
    "AttackRunner", "AuditBudget", "AuditReport", "Check", "CheckResult", "ScaledLogits", "audit", "audit_grid",
    "audit_run", "check_names", "eps_label", "gradient_statistics", "grid_accuracy", "grid_gradients", "grid_metrics",
    "reference_for", "register_check", "resolve_budget", "robustness_curve", "summarize", "transfer_examples",
    "unregister_check", "verdict_table",
]


def audit(model: nn.Module, x: torch.Tensor, y: torch.Tensor, tau_train: float,
          reference_model: nn.Module | None = None, budget: BudgetLike = "smoke",
          cache_dir: str | Path | None = None, checks: Iterable[str] | None = None, batch_size: int = 256,
          progress: bool = False, transfer_note: str | None = None) -> AuditReport:
    """Run the registered gradient-masking checks (or the subset `checks`) on the first ``budget.n`` examples.

    `tau_train` is the temperature the model was trained at (for "PGD on z/τ"). The verdict is
    "no masking detected" or "gradient masking suspected: <flagged checks>".
    """
    started = time.perf_counter()
    budget = resolve_budget(budget)
    selected = select_checks(checks)
    runner = AttackRunner(model, x, y, budget, cache_dir, tau_train=tau_train, reference_model=reference_model,
                          transfer_note=transfer_note, batch_size=batch_size, progress=progress)
    results, seconds = [], {}
    for check in selected:
        began = time.perf_counter()
        results.append(check.run(runner))
        seconds[check.name] = time.perf_counter() - began
    accuracy = {"clean": pct(runner.clean), **{k: pct(v) for k, v in runner.linf.items()}}
    if runner.linf:
        accuracy["worst_case"] = pct(worst_case(dict(runner.linf)))
    report = AuditReport(results, runner.tau_train, runner.n, budget, accuracy, time.perf_counter() - started)
    report.notes.append("seconds per check: " + ", ".join(f"{k} {v:.1f}" for k, v in seconds.items()))
    report.notes.append("accuracy: % of the audited examples correct under each attack at L∞ ε = "
                        f"{eps_label(budget.eps)}; worst_case is the per-example AND over all of them")
    return report


def reference_for(run: Run) -> tuple[Run | None, str | None]:
    """The stored τ = 1 run with the audited run's other settings, or (None, reason)."""
    if float(run.spec.tau) == 1.0:
        return None, "the audited model is the τ = 1 reference itself"
    reference = Run(run.spec.replace(tau=1.0), run.root, getattr(run, "data_dir", None),
                    data_fingerprint=getattr(run, "data_fingerprint", None))
    if not reference.is_complete:
        return None, f"no stored τ = 1 run with the same settings ({reference.dir.name}); train it to enable transfer"
    return reference, None


def audit_grid(runs: Mapping[float, Run], x: torch.Tensor, y: torch.Tensor, budget: BudgetLike,
               log: Callable[[str], None] | None = print) -> dict[float, AuditReport]:
    """One report per τ of a grid of runs, on the same (x, y). The transfer reference is the grid's τ = 1 run, else
    the stored τ = 1 run with the grid's settings; the τ = 1 model's own transfer check is skipped (same weights).
    Attack results are cached under each run's ``evals/`` folder. `log` gets one line per model (verdict and
    seconds)."""
    log = log or (lambda line: None)
    if 1.0 in runs:
        reference, note = runs[1.0], None
    else:
        reference, note = reference_for(next(iter(runs.values())))
        log(f"transfer check: {note or f'reference {reference.dir.name}'}")
    reference_model = reference.load_model() if reference is not None else None
    reports = {}
    # Highest τ first: notebook 02 attacks the grid from the lowest τ, so when the two run side by side (as
    # ./run_all.sh starts them) each computes the attacks they share for its own end of the grid and reads the
    # other's from the cache, instead of waiting on the same evaluation's lock. The order changes no number.
    for tau in sorted(runs, reverse=True):
        reports[tau] = audit(runs[tau].load_model(), x, y, tau_train=tau, reference_model=reference_model,
                             budget=budget, cache_dir=runs[tau].eval_dir, transfer_note=note)
        log(f"{format_tau(tau):>9}: {reports[tau].verdict}  ({reports[tau].elapsed_s:.0f} s)")
    return {tau: reports[tau] for tau in runs}


def audit_run(run: Run, profile: Profile | str, n_eval: int | None = None, data_dir: str | Path | None = None,
              device: str | torch.device | None = None, reference_run: Run | None = None,
              checks: Iterable[str] | None = None, progress: bool = False) -> dict:
    """Audit one stored run on its profile's eval set (JSON-able dict: the CLI's ``audit`` command).

    The reference for the transfer check is `reference_run`, else the stored τ = 1 run with the same settings; if
    there is none, transfer is skipped with a note. Attack results are cached under ``run.eval_dir``.
    """
    profile = get_profile(profile) if isinstance(profile, str) else profile
    budget = AuditBudget.from_profile(profile, **({"n": n_eval} if n_eval is not None else {}))
    device = device or "cpu"
    model = run.load_model(device)
    x, y = eval_set(profile, run, budget.n, data_dir)
    note = None
    if reference_run is None:
        reference_run, note = reference_for(run)
    reference_model = reference_run.load_model(device) if reference_run is not None else None
    report = audit(model, x, y, float(run.spec.tau), reference_model=reference_model, budget=budget,
                   cache_dir=run.eval_dir, checks=checks, progress=progress, transfer_note=note)
    out = report.to_dict()
    out["reference_run"] = str(reference_run.dir) if reference_run is not None else None
    return out
