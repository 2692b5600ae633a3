"""``transfer``: PGD-20 examples crafted on a reference model (the τ = 1 run) applied to the audited model.

A black-box attack cannot beat a white-box one on an honest model. The transferred images are the reference attack's
*final* iterates (torchattacks' PGD: CE, random start, PGD-20's ε, step and steps), not the first iterate that fools
the reference: that one lies just past the reference's boundary, the least transferable point of the run.

Flagged when transfer beats the paper's white-box attacks on the audited model (PGD-20 and APGD-CE, both on CE at
τ = 1: the attacks whose robustness is in question) by more than `AuditBudget.transfer_pp` AND the exact one-sided
McNemar test on the discordant examples gives p < `AuditBudget.significance` (`base.stronger`). Skipped (reported as
skipped, not passed) when there is no reference, with the runner's note, or when the reference has the audited
model's weights: a model cannot be its own black box.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ...attacks import AttackSpec
from ...inference import batched_logits, model_device
from ...robustness import batch_seed, data_fingerprint, model_fingerprint
from ..report import CheckResult
from ..runner import AttackRunner
from .base import Check, pct, register_check, stronger

_TRANSFER_MEMO: dict[tuple, torch.Tensor] = {}
_MEMO_SIZE = 8


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    """Same state-dict names, shapes and values (the same model, whatever the Python objects)."""
    if a is b:
        return True
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(sa[k].shape == sb[k].shape and torch.equal(sa[k].cpu(), sb[k].cpu())
                                          for k in sa)


def _final_iterate_pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, spec: AttackSpec,
                       seed: int) -> torch.Tensor:
    """torchattacks' L∞ PGD on CE (its result is the last iterate), with the random start drawn from `seed`."""
    import torchattacks  # lazily: slow to import

    device = model_device(model)
    attack = torchattacks.PGD(model, eps=spec.eps, alpha=spec.alpha, steps=spec.steps,
                              random_start=spec.random_start)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        return attack(x.to(device), y.to(device)).detach().cpu()


def transfer_examples(reference_model: nn.Module, x: torch.Tensor, y: torch.Tensor, spec: AttackSpec,
                      batch_size: int = 256) -> torch.Tensor:
    """Final PGD iterates crafted on `reference_model` (batched; batch seeds as in `robustness.evaluate`),
    memoised in this process by (model weights, data, spec): auditing every τ against one reference crafts them
    once."""
    key = (model_fingerprint(reference_model), data_fingerprint(x, y), spec.key(), batch_size, "final")
    if key not in _TRANSFER_MEMO:
        was_training = reference_model.training
        reference_model.eval()
        try:
            parts = [_final_iterate_pgd(reference_model, x[start:start + batch_size], y[start:start + batch_size],
                                        spec, batch_seed(spec.seed, start)) for start in range(0, len(x), batch_size)]
        finally:
            reference_model.train(was_training)
        if len(_TRANSFER_MEMO) >= _MEMO_SIZE:
            _TRANSFER_MEMO.pop(next(iter(_TRANSFER_MEMO)))
        _TRANSFER_MEMO[key] = torch.cat(parts) if parts else x.clone()
    return _TRANSFER_MEMO[key]


def _skipped(name: str, why: str) -> CheckResult:
    return CheckResult(name, False, {"skipped": True, "reason": why}, f"Skipped: {why}.", skipped=True)


@register_check
class Transfer(Check):
    name = "transfer"

    def run(self, runner: AttackRunner) -> CheckResult:
        r, b = runner, runner.budget
        reference = r.reference_model
        if reference is None:
            return _skipped(self.name, r.transfer_note or "no reference model given")
        if same_weights(reference, r.model):
            return _skipped(self.name, "the reference model has the audited model's weights (transfer to itself "
                                       "cannot fail)")
        x_adv = transfer_examples(reference, r.x, r.y, r.spec("pgd20"), r.batch_size)
        transfer = (batched_logits(r.model, x_adv, r.batch_size).argmax(dim=1) == r.y) & r.clean
        r.linf["transfer"] = transfer
        source = batched_logits(reference, x_adv, r.batch_size).argmax(dim=1) == r.y
        white = r.paper_attacks()
        rule = stronger(transfer, white, r.n, b.transfer_pp, b.significance)
        flagged = rule["stronger"]
        numbers = {"skipped": False, "transfer": pct(transfer), "white_box": pct(white),
                   "reference_under_own_attack": pct(source),
                   "reference_clean": pct(batched_logits(reference, r.x, r.batch_size).argmax(dim=1) == r.y),
                   "transfer_only_broken": rule["only_a"], "white_box_only_broken": rule["only_b"],
                   "gap_pp": rule["gap_pp"], "p_value": rule["p_value"], "iterates": "final",
                   "threshold_pp": b.transfer_pp, "significance": b.significance}
        explanation = (f"PGD-20 final iterates crafted on the reference model leave {pct(transfer):.1f}% correct on "
                       f"this model vs {pct(white):.1f}% under its own PGD-20/APGD-CE (McNemar p = "
                       f"{rule['p_value']:.2g})"
                       + (f" — transfer beats white-box by {rule['gap_pp']:.1f} pp: this model's own gradients "
                          f"mislead the attack." if flagged else "."))
        return CheckResult(self.name, flagged, numbers, explanation)
