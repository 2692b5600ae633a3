"""``black-box``: Square (gradient-free) vs the per-example best of every white-box attack: PGD-20, APGD-CE,
APGD-DLR, C&W-L∞ (margin) and targeted margin PGD towards each of the `AuditBudget.targets` likeliest wrong classes.

An attack without gradients cannot beat attacks with them unless the gradients are useless. AutoAttack tolerates
Square breaking 0.2 pp beyond its white-box attacks, a rule stated for a set that includes targeted attacks (APGD-T,
FAB-T), hence the targeted and margin attacks here. Flagged when Square breaks more than `AuditBudget.black_box_pp` %
of the examples the white-box set left robust AND that count is significant: exact one-sided binomial test against
the tolerated rate p0 = black_box_pp/100 at α = `AuditBudget.significance` (`base.above_rate`). At n = 200 and the
default 0.2 pp that takes ≥ 3 examples, at n = 64 ≥ 2: one example never decides.
"""
from __future__ import annotations

from ..report import CheckResult
from ..runner import AttackRunner
from .base import Check, above_rate, pct, register_check

WHITE_BOX_ATTACKS = ("pgd20", "apgd_ce", "apgd_dlr", "cw_linf")


@register_check
class BlackBox(Check):
    name = "black-box"

    def run(self, runner: AttackRunner) -> CheckResult:
        r, b = runner, runner.budget
        masks = {name: r.named(name) for name in WHITE_BOX_ATTACKS}
        white = r.white_box()
        r.linf["white_box"] = white          # the targeted attacks' results reach the worst case through this mask
        square = r.named("square")
        extra = white & ~square
        rule = above_rate(int(extra.sum()), r.n, b.black_box_pp, b.significance)
        flagged = rule["above"]
        count, k = rule["count"], r.target_classes().shape[1]
        numbers = {"clean": pct(r.clean), **{name: pct(m) for name, m in masks.items()},
                   "white_box": pct(white), "white_box_attacks": [*WHITE_BOX_ATTACKS, f"targeted x{k}"],
                   "targets": k, "square": pct(square), "square_only_broken": count,
                   "square_only_broken_pp": rule["pct"], "p_value": rule["p_value"], "worst": pct(white & square),
                   "square_queries": b.square_queries, "threshold_pp": b.black_box_pp, "significance": b.significance}
        explanation = (f"Square ({b.square_queries} queries, no gradients) leaves {pct(square):.1f}% correct vs "
                       f"{pct(white):.1f}% for the best of PGD-20, APGD-CE, APGD-DLR, C&W-L∞ and {k} targeted "
                       f"attacks; it breaks {count} example(s) ({rule['pct']:.1f} pp) they could not "
                       f"(p = {rule['p_value']:.2g} against AutoAttack's {b.black_box_pp} pp)"
                       + (" — significantly more: the gradients, not the model, failed." if flagged else
                          f"; flagged only above {b.black_box_pp} pp with p < {b.significance}."))
        return CheckResult(self.name, flagged, numbers, explanation)
