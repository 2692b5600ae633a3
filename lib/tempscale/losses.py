"""Temperature-scaled cross-entropy (Eq. 3) and its closed-form gradients (Eqs. 4–9).

τ enters training only: L = CE(z / τ, y) with z = W f(x) + b. Evaluation and attacks use τ = 1.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .errors import InvalidSpecError


# z / τ must stay finite in float32 and bf16: beyond these bounds logits overflow or every gradient vanishes.
TAU_MIN, TAU_MAX = 1e-6, 1e6


def check_tau(tau: float) -> float:
    """τ must be a finite positive number: τ → 0 is argmax, τ ≤ 0 flips or breaks the softmax."""
    if isinstance(tau, bool) or not isinstance(tau, (int, float)) or not math.isfinite(tau) or tau <= 0:
        raise InvalidSpecError(f"temperature τ must be a finite number > 0 (in {TAU_MIN:g}..{TAU_MAX:g}), "
                               f"got {tau!r}")
    if not TAU_MIN <= tau <= TAU_MAX:
        raise InvalidSpecError(f"temperature τ must be in {TAU_MIN:g}..{TAU_MAX:g} (float32 logits overflow or "
                               f"underflow outside), got {tau!r}")
    return float(tau)


def temperature_ce(logits: torch.Tensor, targets: torch.Tensor, tau: float, reduction: str = "mean") -> torch.Tensor:
    """Eq. 3: cross-entropy of softmax(z / τ)."""
    return F.cross_entropy(logits / check_tau(tau), targets, reduction=reduction)


def softmax_tau(logits: torch.Tensor, tau: float) -> torch.Tensor:
    """P^τ (Eq. 1)."""
    return torch.softmax(logits / check_tau(tau), dim=-1)


def closed_form_gradients(features: torch.Tensor, prototypes: torch.Tensor, bias: torch.Tensor | None,
                          targets: torch.Tensor, tau: float) -> dict[str, torch.Tensor]:
    """The paper's per-sample gradients of CE(z/τ, y), z = W f + b, written out (Eqs. 4–6).

    Returns per-sample tensors:
      - ``dW``  (B, K, D): row i is (1/τ)(P_i^τ − 1) f for the true class (Eq. 4), (1/τ) P_j^τ f otherwise (Eq. 5);
      - ``df``  (B, D):    (1/τ)[Σ_{j≠i} P_j^τ w_j − (1 − P_i^τ) w_i]  (Eq. 6);
      - ``weights`` (B,):  1 − P_i^τ, the weight each sample gets in the batch sums (Eqs. 7–9).
    Summing dW / df over the batch gives Eqs. 7–9.
    """
    logits = features @ prototypes.T + (bias if bias is not None else 0)
    p = softmax_tau(logits, tau)
    coeff = p - F.one_hot(targets, p.shape[-1]).to(p.dtype)       # P_j − δ_ij
    dW = coeff.unsqueeze(-1) * features.unsqueeze(1) / tau
    df = coeff @ prototypes / tau
    weights = 1 - p.gather(1, targets[:, None]).squeeze(1)
    return {"dW": dW, "df": df, "weights": weights, "probs": p}
