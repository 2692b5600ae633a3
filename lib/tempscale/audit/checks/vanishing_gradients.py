"""``vanishing-gradients``: the input gradient of CE at τ = 1 on the clean, correctly classified inputs.

Reports the fraction of exactly zero and of vanishing gradients (max |∂L/∂x| < `AuditBudget.tiny_grad`), the softmax
saturation behind them (max softmax probability == 1.0 in float32) and the logit margins z_y − max_{j≠y} z_j against
`SATURATION_MARGIN` and `UNDERFLOW_MARGIN`. Flagged when more than `AuditBudget.vanishing_pp` % of those inputs have
vanishing gradients: gradient-based attacks cannot start from them. This is a measured share, exact per input, not a
comparison of two attacks, so no significance test applies (`base.exceeds`, at least one input).
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ...attacks import margin_loss
from ...inference import input_gradient
from ..budget import SATURATION_MARGIN, UNDERFLOW_MARGIN
from ..report import CheckResult
from ..runner import AttackRunner
from .base import Check, exceeds, register_check


def gradient_statistics(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 256) -> dict:
    """Per example (CPU tensors): ``max_abs_grad`` = max_i |∂CE(z, y)/∂x_i| at τ = 1 in float32, ``margin`` =
    z_y − max_{j≠y} z_j, ``max_prob`` = max softmax(z) in float32, ``saturated`` = (max_prob == 1.0), ``correct``,
    and ``logits``."""
    y = y.cpu()
    if not len(y):
        empty = torch.zeros(0)
        return {"max_abs_grad": empty, "margin": empty, "max_prob": empty, "logits": empty,
                "saturated": torch.zeros(0, dtype=torch.bool), "correct": torch.zeros(0, dtype=torch.bool)}
    grad, logits = input_gradient(model, x, y, batch_size=batch_size)
    out = {"max_abs_grad": grad.abs().flatten(1).amax(dim=1), "margin": -margin_loss(logits, y),
           "max_prob": torch.softmax(logits, dim=1).amax(dim=1), "logits": logits}
    out["saturated"] = out["max_prob"] == 1.0
    out["correct"] = logits.argmax(dim=1) == y
    return out


@register_check
class VanishingGradients(Check):
    name = "vanishing-gradients"

    def run(self, runner: AttackRunner) -> CheckResult:
        r, b = runner, runner.budget
        s = gradient_statistics(r.model, r.x, r.y, r.batch_size)
        ok = s["correct"]
        m = int(ok.sum())
        grad, margin = s["max_abs_grad"][ok], s["margin"][ok]
        zero, tiny, saturated = int((grad == 0).sum()), int((grad < b.tiny_grad).sum()), int(s["saturated"][ok].sum())

        def frac(k: int) -> float:
            return 100.0 * k / m if m else 0.0

        def q(p: float) -> float:
            return float(margin.quantile(p)) if m else float("nan")

        flagged = exceeds(tiny, m, b.vanishing_pp, 1)
        logits = s["logits"]
        numbers = {"n_correct": m, "zero_grad_pct": frac(zero), "vanishing_grad_pct": frac(tiny),
                   "saturated_pct": frac(saturated), "zero_grad": zero, "vanishing_grad": tiny,
                   "saturated": saturated, "margin_median": q(0.5), "margin_p10": q(0.1), "margin_p90": q(0.9),
                   "margin_ge_saturation_pct": frac(int((margin >= SATURATION_MARGIN).sum())),
                   "margin_ge_underflow_pct": frac(int((margin >= UNDERFLOW_MARGIN).sum())),
                   "saturation_margin": SATURATION_MARGIN, "underflow_margin": UNDERFLOW_MARGIN,
                   "logit_std": float(logits.std()) if logits.numel() > 1 else float("nan"),
                   "logit_norm_median": float(logits.norm(dim=1).median()) if len(logits) else float("nan"),
                   "grad_log10_median": float(grad.clamp_min(1e-45).log10().median()) if m else float("nan"),
                   "tiny_grad": b.tiny_grad, "threshold_pp": b.vanishing_pp}
        explanation = (f"Of {m} correctly classified inputs, {frac(zero):.1f}% have an exactly zero CE input "
                       f"gradient and {frac(tiny):.1f}% a vanishing one (max |∂L/∂x| < {b.tiny_grad:g}); softmax is "
                       f"saturated (max p == 1.0 in float32) on {frac(saturated):.1f}%, median logit margin "
                       f"{q(0.5):.3g} (saturation beyond ≈ {SATURATION_MARGIN:.1f}, underflow beyond ≈ "
                       f"{UNDERFLOW_MARGIN:.0f})"
                       + (" — gradient-based attacks cannot start from these inputs." if flagged else "."))
        return CheckResult(self.name, flagged, numbers, explanation, per_example=s)
