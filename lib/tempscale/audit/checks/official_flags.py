"""``official-checks``: the flags of the official AutoAttack's own ``checks.py`` (pyautoattack), beside ours.

Croce & Hein's AutoAttack warns when its evaluation may be unreliable (their ``flags_doc.md``). Each official check
function is called here on the audited model, with what it needs:

* *zero gradients* (``check_zero_gradients``): the official APGD on the DLR loss, one iteration from its seeded random
  start in the ε-ball, on the clean, correctly classified examples: it warns when some input gradient is exactly 0;
* *Square after white-box* (``check_square_sr``): robust accuracy after APGD-CE, then APGD-DLR, then Square, per
  example and cumulative as AutoAttack counts it; it warns when Square lowers it by more than 0.2 pp (the standard
  AutoAttack runs APGD-T and FAB-T in place of APGD-DLR; the audit's APGD runs are reused, at the budget's steps);
* *randomness* (``check_randomized``): five forward passes that must agree;
* *dynamic model* (``check_dynamic``): a traced forward pass must not compute gradients;
* *probability outputs* (``check_range_output``) and *too many target classes* (``check_n_classes``, for the
  standard attacks with min(9, K − 1) targets, the project's choice).

The randomness, dynamic and output checks see the first 250 examples, as AutoAttack's default batch. Flagged when any
of them warns. They are warnings by design: each says a standard AutoAttack evaluation may be unreliable, not that
gradients are masked; notably they stay quiet on plain logit scaling (APGD's DLR loss is scale-invariant), which the
project's own checks cover.
"""
from __future__ import annotations

import re
from importlib import metadata

import torch
import torch.nn as nn

from ...attacks import STANDARD_AUTOATTACK, OfficialFlagLog, _attack_context, official_checks_context
from ..report import CheckResult
from ..runner import AttackRunner
from .base import Check, pct, register_check

OFFICIAL_BATCH = 250        # AutoAttack's default batch size: its model checks look at one batch
FLAG_LABELS = {"zero_gradients": "zero gradients", "square": "Square after white-box", "randomized": "randomness",
               "dynamic": "dynamic model", "probability_outputs": "probability outputs",
               "n_classes": "target classes"}


def official_flags(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, seed: int,
                   accuracy_sequence: dict[str, float] | None = None) -> dict[str, list[str]]:
    """The official checks' warnings per flag (an empty list: quiet), see the module docstring.

    `accuracy_sequence` is AutoAttack's cumulative robust accuracy dict ({"clean": …, <attack>: …, "square": …},
    fractions) for the Square check; without it that check is not run (no key).
    """
    from pyautoattack import checks
    from pyautoattack.autopgd_base import APGDAttack

    device = next(iter(model.parameters()), torch.zeros(0)).device
    x, y = x.to(device), y.to(device)
    batch_x, batch_y = x[:OFFICIAL_BATCH], y[:OFFICIAL_BATCH]
    logs = {name: OfficialFlagLog() for name in FLAG_LABELS}
    with _attack_context(model), official_checks_context():
        checks.check_randomized(model, batch_x, batch_y, bs=len(batch_x), logger=logs["randomized"])
        n_classes = checks.check_range_output(model, batch_x, logger=logs["probability_outputs"])
        checks.check_dynamic(model, batch_x, False, logger=logs["dynamic"])
        targets = min(STANDARD_AUTOATTACK["n_targets"], n_classes - 1)
        checks.check_n_classes(n_classes, list(STANDARD_AUTOATTACK["attacks"]), targets, targets,
                               logger=logs["n_classes"])
        if n_classes >= 3 and len(x):
            APGDAttack(model, n_iter=1, loss="dlr", eps=eps, seed=seed, device=device,
                       logger=logs["zero_gradients"]).perturb(x, y)
        if accuracy_sequence is not None:
            checks.check_square_sr(accuracy_sequence, logger=logs["square"])
    out = {name: log.messages for name, log in logs.items()}
    if accuracy_sequence is None:
        del out["square"]
    return out


def _zero_gradient_count(messages: list[str]) -> int:
    found = [int(m.group(1)) for m in (re.search(r"there are (\d+) points", msg) for msg in messages) if m]
    return sum(found)


@register_check
class OfficialChecks(Check):
    name = "official-checks"

    def run(self, runner: AttackRunner) -> CheckResult:
        r, b = runner, runner.budget
        apgd_ce, apgd_dlr, square = r.named("apgd_ce"), r.named("apgd_dlr"), r.named("square")
        sequence = {"clean": pct(r.clean) / 100, "apgd-ce": pct(apgd_ce) / 100,
                    "apgd-dlr": pct(apgd_ce & apgd_dlr) / 100, "square": pct(apgd_ce & apgd_dlr & square) / 100}
        flags = official_flags(r.model, r.x, r.y, b.eps, b.seed, sequence)
        fired = [name for name, messages in flags.items() if messages]
        numbers = {**{name: bool(messages) for name, messages in flags.items()},
                   "zero_gradient_points": _zero_gradient_count(flags["zero_gradients"]),
                   "zero_gradient_examined": int(r.clean.sum()),
                   "square_drop_pp": 100 * (sequence["apgd-dlr"] - sequence["square"]),
                   "accuracy_sequence_pct": {k: 100 * v for k, v in sequence.items()},
                   "pyautoattack": metadata.version("pyautoattack"), "messages": flags}
        summary = "; ".join(f"{FLAG_LABELS[name]}: {'FLAG' if flags[name] else 'quiet'}" for name in flags)
        explanation = (f"The official AutoAttack checks (pyautoattack {numbers['pyautoattack']}, warnings by design: "
                       f"each marks an evaluation AutoAttack itself would not trust) — {summary}. Zero DLR gradients "
                       f"at APGD's start: {numbers['zero_gradient_points']} of {numbers['zero_gradient_examined']} "
                       f"points; Square after APGD-CE and APGD-DLR lowers the accuracy by "
                       f"{numbers['square_drop_pp']:.1f} pp (AutoAttack warns beyond 0.2 pp)"
                       + (f" — flagged: {', '.join(FLAG_LABELS[name] for name in fired)}." if fired else "."))
        return CheckResult(self.name, bool(fired), numbers, explanation)
