"""``transfer``: PGD-20 examples crafted on a reference model (the τ = 1 run) applied to the audited model.

A black-box attack cannot beat a white-box one on an honest model. Flagged when transfer is ≥
`AuditBudget.transfer_pp` below the white-box attacks; skipped, with the runner's note, when there is no reference.
"""
from __future__ import annotations

import dataclasses

import torch
import torch.nn as nn

from ...attacks import AttackSpec, run_attack
from ...inference import batched_logits
from ...robustness import batch_seed, data_fingerprint, model_fingerprint
from ..report import CheckResult
from ..runner import AttackRunner
from .base import Check, exceeds, pct, register_check

_TRANSFER_MEMO: dict[tuple, torch.Tensor] = {}
_MEMO_SIZE = 8


def transfer_examples(reference_model: nn.Module, x: torch.Tensor, y: torch.Tensor, spec: AttackSpec,
                      batch_size: int = 256) -> torch.Tensor:
    """Adversarial images crafted on `reference_model` (batched, seeds as in `robustness.evaluate`), memoised in
    this process by (model weights, data, spec): auditing every τ against one reference crafts them once."""
    key = (model_fingerprint(reference_model), data_fingerprint(x, y), spec.key(), batch_size)
    if key not in _TRANSFER_MEMO:
        parts = []
        for start in range(0, len(x), batch_size):
            batch_spec = dataclasses.replace(spec, seed=batch_seed(spec.seed, start))
            parts.append(run_attack(reference_model, x[start:start + batch_size], y[start:start + batch_size],
                                    batch_spec).cpu())
        if len(_TRANSFER_MEMO) >= _MEMO_SIZE:
            _TRANSFER_MEMO.pop(next(iter(_TRANSFER_MEMO)))
        _TRANSFER_MEMO[key] = torch.cat(parts) if parts else x.clone()
    return _TRANSFER_MEMO[key]


@register_check
class Transfer(Check):
    name = "transfer"

    def run(self, runner: AttackRunner) -> CheckResult:
        r, b = runner, runner.budget
        reference = r.reference_model
        if reference is None:
            why = r.transfer_note or "no reference model given"
            return CheckResult(self.name, False, {"skipped": True, "reason": why}, f"Skipped: {why}.")
        x_adv = transfer_examples(reference, r.x, r.y, r.spec("pgd20"), r.batch_size)
        transfer = (batched_logits(r.model, x_adv, r.batch_size).argmax(dim=1) == r.y) & r.clean
        r.linf["transfer"] = transfer
        source = batched_logits(reference, x_adv, r.batch_size).argmax(dim=1) == r.y
        white = r.white_box()
        gap = int(white.sum()) - int(transfer.sum())
        flagged = exceeds(gap, r.n, b.transfer_pp, b.min_examples)
        numbers = {"transfer": pct(transfer), "white_box": pct(white), "reference_under_own_attack": pct(source),
                   "reference_clean": pct(batched_logits(reference, r.x, r.batch_size).argmax(dim=1) == r.y),
                   "transfer_only_broken": int((white & ~transfer).sum()), "gap_pp": pct(gap / r.n),
                   "threshold_pp": b.transfer_pp}
        explanation = (f"PGD-20 examples crafted on the reference model leave {pct(transfer):.1f}% correct on this "
                       f"model vs {pct(white):.1f}% under its own white-box attacks"
                       + (f" — transfer beats white-box by {pct(gap / r.n):.1f} pp: this model's own gradients "
                          f"mislead the attack." if flagged else "."))
        return CheckResult(self.name, flagged, numbers, explanation)
