"""``more-iterations``: PGD-20 vs PGD with more steps and with restarts.

Both run on PGD-20's survivors, so the result is the per-example worst case (and no example is broken by PGD-20
only). Flagged when the extra effort lowers accuracy by more than `AuditBudget.iterations_pp` and the exact
one-sided McNemar test on the discordant examples gives p < `AuditBudget.significance` (`base.stronger`; here the
discordant examples are all on one side, so p = 2^-k for k newly broken examples: k ≥ 5 at α = 0.05): PGD-20 had
not converged.
"""
from __future__ import annotations

from ..report import CheckResult
from ..runner import AttackRunner
from .base import Check, pct, register_check, stronger


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
        rule = stronger(worst, pgd, r.n, b.iterations_pp, b.significance)
        flagged = rule["stronger"]
        numbers = {"pgd20": pct(pgd), f"pgd{b.long_steps}": pct(longer), f"pgd20x{b.restarts}": pct(restarts),
                   "worst": pct(worst), "drop_pp": rule["gap_pp"], "newly_broken": rule["only_a"],
                   "p_value": rule["p_value"], "long_steps": b.long_steps, "restarts": b.restarts,
                   "threshold_pp": b.iterations_pp, "significance": b.significance}
        explanation = (f"PGD-20 leaves {pct(pgd):.1f}%; {b.long_steps} steps {pct(longer):.1f}%, {b.restarts} "
                       f"restarts {pct(restarts):.1f}% (worst case {pct(worst):.1f}%, −{rule['gap_pp']:.1f} pp, "
                       f"McNemar p = {rule['p_value']:.2g})"
                       + (" — PGD-20 had not converged." if flagged else
                          ": more effort changes little (which zero gradients would also explain)."))
        return CheckResult(self.name, flagged, numbers, explanation)
