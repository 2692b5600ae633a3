"""``more-iterations``: PGD-20 vs PGD with more steps and with restarts.

Both run on PGD-20's survivors, so the result is the per-example worst case. Flagged when the extra effort lowers
accuracy by ≥ `AuditBudget.iterations_pp`: PGD-20 had not converged.
"""
from __future__ import annotations

from ..report import CheckResult
from ..runner import AttackRunner
from .base import Check, exceeds, pct, register_check


@register_check
class MoreIterations(Check):
    name = "more-iterations"

    def run(self, runner: AttackRunner) -> CheckResult:
        r, b = runner, runner.budget
        pgd = r.named("pgd20")
        longer = r.robust(r.pgd_spec(b.eps, steps=b.long_steps, name=f"audit-pgd{b.long_steps}"), among=pgd,
                          label=f"pgd{b.long_steps}")
        restarts = r.robust(r.pgd_spec(b.eps, restarts=b.restarts, name=f"audit-pgd{b.pgd_steps}x{b.restarts}"),
                            among=pgd, label=f"pgd{b.pgd_steps}x{b.restarts}")
        worst = longer & restarts
        drop = int(pgd.sum()) - int(worst.sum())
        flagged = exceeds(drop, r.n, b.iterations_pp, b.min_examples)
        numbers = {"pgd20": pct(pgd), f"pgd{b.long_steps}": pct(longer), f"pgd20x{b.restarts}": pct(restarts),
                   "worst": pct(worst), "drop_pp": pct(drop / r.n), "long_steps": b.long_steps,
                   "restarts": b.restarts, "threshold_pp": b.iterations_pp}
        explanation = (f"PGD-20 leaves {pct(pgd):.1f}%; {b.long_steps} steps {pct(longer):.1f}%, {b.restarts} "
                       f"restarts {pct(restarts):.1f}% (worst case {pct(worst):.1f}%, −{pct(drop / r.n):.1f} pp)"
                       + (" — PGD-20 had not converged." if flagged else
                          ": more effort changes little (which zero gradients would also explain)."))
        return CheckResult(self.name, flagged, numbers, explanation)
