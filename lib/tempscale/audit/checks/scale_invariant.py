"""``scale-invariant``: each scale-invariant attack vs its cross-entropy twin at the same budget.

Multiplying the logits by a constant changes no prediction, so on an honest model a scale-invariant loss finds
nothing that CE, given the same attack and steps, does not. The pairs (A vs B, same algorithm, steps and seed):

* APGD-DLR vs APGD-CE (`AuditBudget.apgd_steps` each);
* C&W-L∞ (PGD on the margin) vs PGD-20 on CE (`AuditBudget.pgd_steps` each);
* PGD-20 on CE of the logits rescaled by 1/τ_train and by 1/std(z) (each scale) vs PGD-20 on CE.

Comparing APGD-DLR with PGD-20 would confound the loss with the budget: on a healthy model APGD's extra steps alone
beat PGD-20. A pair says "A stronger" when A's accuracy is more than `AuditBudget.scale_pp` below B's and the exact
one-sided McNemar test on the discordant examples gives p < α/k (`base.stronger`; α = `AuditBudget.significance`,
Bonferroni over the k pairs). Flagged when any pair does.
"""
from __future__ import annotations

from ...attacks import worst_case
from ..report import CheckResult
from ..runner import AttackRunner
from .base import Check, pct, register_check, stronger


@register_check
class ScaleInvariant(Check):
    name = "scale-invariant"

    def run(self, runner: AttackRunner) -> CheckResult:
        r, b = runner, runner.budget
        pgd, apgd_ce = r.named("pgd20"), r.named("apgd_ce")
        attacks = {"apgd_dlr": r.named("apgd_dlr"), "cw_linf": r.named("cw_linf")}
        twins = {"apgd_dlr": "apgd_ce", "cw_linf": "pgd20"}
        scales = r.rescale_candidates()
        rescaled = {}
        for label, scale in scales.items():
            mask = r.robust(r.pgd_spec(b.eps, name="pgd20_rescaled"), scale=scale, label=f"pgd20 z*{label}")
            rescaled[label] = attacks[f"pgd20_rescaled_{label.replace('/', '_')}"] = mask
            twins[f"pgd20_rescaled_{label.replace('/', '_')}"] = "pgd20"
        baselines = {"pgd20": pgd, "apgd_ce": apgd_ce}
        alpha = b.significance / len(twins)
        pairs = {name: {"vs": twins[name], **stronger(attacks[name], baselines[twins[name]], r.n, b.scale_pp, alpha)}
                 for name in twins}
        below = [name for name, pair in pairs.items() if pair["stronger"]]
        flagged = bool(below)
        if rescaled:
            attacks["pgd20_rescaled_best"] = worst_case(rescaled)
        best_name = min(attacks, key=lambda k: int(attacks[k].sum()))
        numbers = {"clean": pct(r.clean), "pgd20": pct(pgd), "apgd_ce": pct(apgd_ce),
                   **{k: pct(v) for k, v in attacks.items()}, "scales": scales, "pairs": pairs,
                   "gap_pp": {k: pair["gap_pp"] for k, pair in pairs.items()},
                   "only_broken_by_scale_invariant": int((pgd & apgd_ce & ~worst_case(attacks)).sum()),
                   "best_attack": best_name, "threshold_pp": b.scale_pp, "significance": b.significance,
                   "pair_significance": alpha}
        scale_text = ", ".join(f"{k} = {v:.3g}" for k, v in scales.items()) or "none (scale ≈ 1)"
        explanation = (f"At equal budgets: APGD-DLR {pct(attacks['apgd_dlr']):.1f}% vs APGD-CE {pct(apgd_ce):.1f}%, "
                       f"C&W margin {pct(attacks['cw_linf']):.1f}% vs PGD-20 on CE {pct(pgd):.1f}%"
                       + (f", CE on rescaled logits {pct(attacks['pgd20_rescaled_best']):.1f}% (best of scales "
                          f"{scale_text}) vs PGD-20" if rescaled else "")
                       + (f" — {', '.join(f'{k} below ' + pairs[k]['vs'] for k in below)} by > {b.scale_pp} pp "
                          f"(McNemar p < {alpha:.2g}): the CE gradient at τ = 1 stops the attack, not the model."
                          if flagged else
                          f"; no scale-invariant attack is > {b.scale_pp} pp below its CE twin with McNemar "
                          f"p < {alpha:.2g}."))
        return CheckResult(self.name, flagged, numbers, explanation)
