"""``eps-sweep``: PGD accuracy at growing ε for CE at τ = 1 and for the scale-invariant losses, a noise-only
baseline at each ε, and an unbounded CE attack (ε = 1: the whole image box) from the clean image.

An attack that works must reach chance as ε grows, ≈ 0% without a bound, and beat random noise. Per ε of the grid:

* the CE curve P_ε: correct after CE-PGD at every grid radius ≤ ε (each radius attacks the previous survivors);
* the noise baseline N_ε: correct at PGD's random start alone: uniform noise in the ε-ball from the same seed, no
  gradient step (PGD with 0 steps, on every example).

Flagged when any of these holds (α = `AuditBudget.significance`):

1. *stuck*: the CE curve at the largest ε keeps significantly more than chance (exact one-sided binomial test of the
   robust count against p0 = 1/classes, p < α, and above chance);
2. *unbounded*: the unbounded attack (`AuditBudget.unbounded_steps` steps of size 2.5/steps from the clean image, no
   random start, on every correctly classified example) leaves more than `AuditBudget.unbounded_pp` % correct and the
   count is significant against that tolerated rate (binomial, p < α);
3. *noise*: PGD does no better than noise: noise alone breaks more than `AuditBudget.noise_pp` % of the examples at
   some ε, and at no ε of the grid does PGD break significantly more than noise (exact one-sided McNemar test on
   the discordant examples of P_ε vs N_ε, p < α); or at some ε noise breaks significantly more than PGD (McNemar,
   p < α / grid size): the gradient steps lead away from the errors noise finds.

A model with zero input gradients that noise breaks at large ε trips 2 and 3 even though its CE curve reaches 0%.
"""
from __future__ import annotations

import math

import torch

from ..report import CheckResult
from ..runner import AttackRunner
from .base import Check, above_rate, eps_label, pct, register_check, stronger

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


def noise_baseline(runner: AttackRunner) -> dict[float, torch.Tensor]:
    """ε → per-example mask: correct at uniform noise in the ε-ball (PGD's random start, same seed, 0 steps)."""
    return {eps: runner.robust(runner.pgd_spec(eps, steps=0, name="audit-noise")) for eps in runner.budget.eps_grid}


def compare_with_noise(runner: AttackRunner, ce: dict[float, torch.Tensor],
                       noise: dict[float, torch.Tensor]) -> dict:
    """The noise arm of the check (rule 3 of the module docstring), with its per-ε numbers."""
    r, b = runner, runner.budget
    per_eps, beats, loses, breaks = {}, False, False, False
    for eps in b.eps_grid:
        pgd_better = stronger(ce[eps], noise[eps], r.n, 0.0, b.significance)
        noise_better = stronger(noise[eps], ce[eps], r.n, 0.0, b.significance / len(b.eps_grid))
        broken_by_noise = pct(r.clean & ~noise[eps])
        beats, loses = beats or pgd_better["stronger"], loses or noise_better["stronger"]
        breaks = breaks or broken_by_noise > b.noise_pp
        per_eps[eps_label(eps)] = {"noise": pct(noise[eps]), "pgd": pct(ce[eps]), "broken_by_noise": broken_by_noise,
                                   "pgd_only": pgd_better["only_a"], "noise_only": pgd_better["only_b"],
                                   "p_pgd_better": pgd_better["p_value"], "p_noise_better": noise_better["p_value"]}
    return {"per_eps": per_eps, "pgd_beats_noise_somewhere": beats, "noise_beats_pgd_somewhere": loses,
            "noise_breaks": breaks, "no_better_than_noise": (breaks and not beats) or loses}


@register_check
class EpsSweep(Check):
    name = "eps-sweep"

    def run(self, runner: AttackRunner) -> CheckResult:
        r, b = runner, runner.budget
        curves = {loss: robustness_curve(r, loss) for loss in b.curve_losses}
        ce = curves["ce"] if "ce" in curves else robustness_curve(r, "ce")
        noise = noise_baseline(r)
        versus_noise = compare_with_noise(r, ce, noise)
        unbounded_spec = r.pgd_spec(1.0, steps=b.unbounded_steps, random_start=False,
                                    alpha=2.5 / b.unbounded_steps, name="audit-unbounded-ce")
        # On every example: a random start (or a smaller ball's success) must not stand in for the gradient.
        unbounded = r.robust(unbounded_spec)
        chance = 100.0 / r.num_classes
        largest = b.eps_grid[-1]
        ce_last = pct(ce[largest])
        stuck = above_rate(int(ce[largest].sum()), r.n, chance, b.significance)
        loose = above_rate(int(unbounded.sum()), r.n, b.unbounded_pp, b.significance)
        reasons = {"stuck": stuck["above"], "unbounded": loose["above"],
                   "noise": versus_noise["no_better_than_noise"]}
        flagged = any(reasons.values())
        numbers = {"curves": {loss: {eps_label(e): pct(m) for e, m in curve.items()}
                              for loss, curve in curves.items()},
                   "noise": {eps_label(e): pct(m) for e, m in noise.items()}, "versus_noise": versus_noise,
                   "unbounded_ce": pct(unbounded), "unbounded_steps": b.unbounded_steps, "chance": chance,
                   "largest_eps": eps_label(largest), "ce_at_largest_eps": ce_last, "p_stuck": stuck["p_value"],
                   "p_unbounded": loose["p_value"], "reasons": reasons, "threshold_pp": b.unbounded_pp,
                   "noise_pp": b.noise_pp, "significance": b.significance}
        parts = [f"PGD on CE leaves {ce_last:.1f}% at ε = {eps_label(largest)} (chance {chance:.0f}%)"]
        others = [f"{loss} {pct(curve[largest]):.1f}%" for loss, curve in curves.items() if loss != "ce"]
        if others:
            parts.append("scale-invariant losses at that ε: " + ", ".join(others))
        parts.append("noise alone leaves " + ", ".join(f"{pct(m):.0f}%" for m in noise.values())
                     + f" at ε = {', '.join(eps_label(e) for e in noise)} (PGD on CE: "
                     + ", ".join(f"{pct(m):.0f}%" for m in ce.values()) + ")")
        parts.append(f"the unbounded CE attack (ε = 1, {b.unbounded_steps} steps from the clean image) leaves "
                     f"{pct(unbounded):.1f}%")
        because = {"stuck": f"CE-PGD stays significantly above chance at ε = {eps_label(largest)}",
                   "unbounded": f"the unbounded attack leaves > {b.unbounded_pp}% correct (p = {loose['p_value']:.2g})",
                   "noise": ("noise beats PGD at some ε" if versus_noise["noise_beats_pgd_somewhere"] else
                             "PGD breaks no more than noise at any ε (McNemar)")}
        explanation = "; ".join(parts) + (
            f" — {' and '.join(because[k] for k, v in reasons.items() if v)}: an attack that works must reach ~0% "
            f"and beat noise." if flagged else ".")
        return CheckResult(self.name, flagged, numbers, explanation)
