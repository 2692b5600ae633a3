"""``scale-invariant``: APGD-DLR, PGD on the C&W margin (cw_linf) and PGD-20 on logits rescaled by 1/τ_train and by
1/std(z) (a searched scale), vs PGD-20 on CE at τ = 1.

Multiplying the logits by a constant changes no prediction, so an honest model loses nothing to these attacks that
PGD on CE did not already find. Flagged when any is ≥ `AuditBudget.scale_pp` below PGD-20 on CE.
"""
from __future__ import annotations

from ...attacks import worst_case
from ..report import CheckResult
from ..runner import AttackRunner
from .base import Check, exceeds, pct, register_check


@register_check
class ScaleInvariant(Check):
    name = "scale-invariant"

    def run(self, runner: AttackRunner) -> CheckResult:
        r, b = runner, runner.budget
        pgd = r.named("pgd20")
        attacks = {"apgd_dlr": r.named("apgd_dlr"), "cw_linf": r.named("cw_linf")}
        scales = r.rescale_candidates()
        rescaled = {}
        for label, scale in scales.items():
            mask = r.robust(r.pgd_spec(b.eps, name="pgd20_rescaled"), scale=scale, label=f"pgd20 z*{label}")
            rescaled[label] = mask
            attacks[f"pgd20_rescaled_{label.replace('/', '_')}"] = mask
        if rescaled:
            attacks["pgd20_rescaled_best"] = worst_case(rescaled)
        gaps = {name: int(mask.sum()) - int(pgd.sum()) for name, mask in attacks.items()}   # < 0: below PGD-20
        below = {name: -gap for name, gap in gaps.items() if exceeds(-gap, r.n, b.scale_pp, b.min_examples)}
        flagged = bool(below)
        best_name = min(attacks, key=lambda k: int(attacks[k].sum()))
        numbers = {"clean": pct(r.clean), "pgd20": pct(pgd), **{k: pct(v) for k, v in attacks.items()},
                   "scales": scales, "gap_pp": {k: pct(-g / r.n) for k, g in gaps.items()},
                   "only_broken_by_scale_invariant": int((pgd & ~worst_case(attacks)).sum()),
                   "best_attack": best_name, "threshold_pp": b.scale_pp}
        scale_text = ", ".join(f"{k} = {v:.3g}" for k, v in scales.items()) or "none (scale ≈ 1)"
        explanation = (f"PGD-20 on CE leaves {pct(pgd):.1f}%; scale-invariant attacks leave "
                       f"APGD-DLR {pct(attacks['apgd_dlr']):.1f}%, C&W margin {pct(attacks['cw_linf']):.1f}%"
                       + (f", CE on rescaled logits {pct(attacks['pgd20_rescaled_best']):.1f}% (scales {scale_text})"
                          if rescaled else "")
                       + (f" — {', '.join(below)} ≥ {b.scale_pp} pp below PGD-20: the CE gradient at τ = 1 is what "
                          f"stops PGD, not the model." if flagged else
                          f"; none is {b.scale_pp} pp below PGD-20."))
        return CheckResult(self.name, flagged, numbers, explanation)
