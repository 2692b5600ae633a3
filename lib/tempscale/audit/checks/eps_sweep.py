"""``eps-sweep``: PGD accuracy at growing ε for CE at τ = 1 and for the scale-invariant losses, and an unbounded CE
attack (ε = 1: the whole image box; from the clean image, no random start).

An attack that works must reach chance as ε grows and ≈ 0% without a bound. Flagged when CE-PGD stays above chance
at the largest ε, or the unbounded attack leaves more than `AuditBudget.unbounded_pp` % correct.
"""
from __future__ import annotations

import math

import torch

from ..report import CheckResult
from ..runner import AttackRunner
from .base import Check, eps_label, exceeds, pct, register_check

# At the audit's own ε the curve reuses the standalone attacks the other checks run (one attack, one cache entry).
_SHARED_AT_AUDIT_EPS = {"ce": "pgd20", "margin": "cw_linf"}


def robustness_curve(runner: AttackRunner, loss: str) -> dict[float, torch.Tensor]:
    """ε → per-example robust mask for PGD (budget.pgd_steps, step alpha·ε/eps) on `loss` ("ce", "margin", "dlr",
    or "rescaled": CE on z/τ_train, or on z/std(z) when τ_train = 1). Each ε only attacks the examples that survived
    the previous one (a smaller ball lies inside a larger one), so the curve is monotone and cheap."""
    b = runner.budget
    scale, pgd_loss = 1.0, loss
    if loss == "rescaled":
        scales = runner.rescale_candidates()
        scale = scales.get("1/tau", scales.get("1/std", 1.0))
        pgd_loss = "ce"
    curve, alive = {}, runner.clean
    for eps in b.eps_grid:
        if math.isclose(eps, b.eps):
            if loss in _SHARED_AT_AUDIT_EPS:
                alive = runner.named(_SHARED_AT_AUDIT_EPS[loss])
            else:
                name = "pgd20_rescaled" if loss == "rescaled" else f"audit-curve-{loss}"
                alive = runner.robust(runner.pgd_spec(eps, loss=pgd_loss, name=name), scale=scale,
                                      label=f"pgd20 {loss}" if loss == "dlr" else None)
        else:
            alive = runner.robust(runner.pgd_spec(eps, loss=pgd_loss, name=f"audit-curve-{loss}"), among=alive,
                                  scale=scale)
        curve[eps] = alive
    return curve


@register_check
class EpsSweep(Check):
    name = "eps-sweep"

    def run(self, runner: AttackRunner) -> CheckResult:
        r, b = runner, runner.budget
        curves = {loss: robustness_curve(r, loss) for loss in b.curve_losses}
        unbounded_spec = r.pgd_spec(1.0, steps=b.unbounded_steps, random_start=False,
                                    alpha=2.5 / b.unbounded_steps, name="audit-unbounded-ce")
        # An example CE-PGD already broke inside a smaller ball is broken in the whole box too: attack the rest only.
        unbounded = r.robust(unbounded_spec, among=curves["ce"][b.eps_grid[-1]] if "ce" in curves else None)
        chance = 100.0 / r.num_classes
        largest = b.eps_grid[-1]
        ce_last = pct(curves["ce"][largest]) if "ce" in curves else float("nan")
        stuck = "ce" in curves and ce_last > chance
        loose = exceeds(int(unbounded.sum()), r.n, b.unbounded_pp, 1)
        flagged = stuck or loose
        numbers = {"curves": {loss: {eps_label(e): pct(m) for e, m in curve.items()}
                              for loss, curve in curves.items()},
                   "unbounded_ce": pct(unbounded), "unbounded_steps": b.unbounded_steps, "chance": chance,
                   "largest_eps": eps_label(largest), "ce_at_largest_eps": ce_last, "threshold_pp": b.unbounded_pp}
        parts = [f"PGD on CE leaves {ce_last:.1f}% at ε = {eps_label(largest)} (chance {chance:.0f}%)"
                 if "ce" in curves else "no CE curve"]
        others = [f"{loss} {pct(curve[largest]):.1f}%" for loss, curve in curves.items() if loss != "ce"]
        if others:
            parts.append("scale-invariant losses at that ε: " + ", ".join(others))
        parts.append(f"the unbounded CE attack (ε = 1, {b.unbounded_steps} steps from the clean image) leaves "
                     f"{pct(unbounded):.1f}%")
        reasons = ([f"CE-PGD stays above chance at ε = {eps_label(largest)}"] if stuck else []) + \
                  ([f"the unbounded attack leaves > {b.unbounded_pp}% correct"] if loose else [])
        explanation = "; ".join(parts) + (f" — {' and '.join(reasons)}: an attack that works must reach ~0%."
                                          if flagged else ".")
        return CheckResult(self.name, flagged, numbers, explanation)
