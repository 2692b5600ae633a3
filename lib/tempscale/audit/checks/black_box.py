"""``black-box``: Square (gradient-free) vs the per-example best of PGD-20 and APGD-CE.

Flagged when Square breaks more than `AuditBudget.black_box_pp` (AutoAttack's 0.2 pp) of the examples the white-box
attacks left robust: an attack without gradients cannot beat attacks with them unless the gradients are useless.
"""
from __future__ import annotations

from ..report import CheckResult
from ..runner import AttackRunner
from .base import Check, exceeds, pct, register_check


@register_check
class BlackBox(Check):
    name = "black-box"

    def run(self, runner: AttackRunner) -> CheckResult:
        r, b = runner, runner.budget
        pgd, apgd, square = r.named("pgd20"), r.named("apgd_ce"), r.named("square")
        white = pgd & apgd
        extra = white & ~square
        count = int(extra.sum())
        flagged = exceeds(count, r.n, b.black_box_pp, 1)
        numbers = {"clean": pct(r.clean), "pgd20": pct(pgd), "apgd_ce": pct(apgd), "white_box": pct(white),
                   "square": pct(square), "square_only_broken": count, "square_only_broken_pp": pct(count / r.n),
                   "worst": pct(white & square), "square_queries": b.square_queries, "threshold_pp": b.black_box_pp}
        explanation = (f"Square ({b.square_queries} queries, no gradients) leaves {pct(square):.1f}% correct vs "
                       f"{pct(white):.1f}% for the best of PGD-20/APGD-CE; it breaks {count} example(s) "
                       f"({pct(count / r.n):.1f} pp) the gradient attacks could not"
                       + (f" — more than AutoAttack's {b.black_box_pp} pp: the gradients, not the model, failed."
                          if flagged else f" (AutoAttack flags > {b.black_box_pp} pp)."))
        return CheckResult(self.name, flagged, numbers, explanation)
