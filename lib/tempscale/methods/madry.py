"""``madry``: Madry adversarial training with τ on the clean term (paper Eq. 12, Table III).

    L_AT = CE(F(x)/τ, y) + CE(F(x_adv), y),   x_adv by L∞ PGD on the τ = 1 CE.

Choices the paper leaves open (all recorded in the spec through method_args, built by `madry_args`):

* The training budget is not stated. `MADRY_PAPER` is the common Madry CIFAR setting: ε = 8/255, step 2/255,
  10 steps, uniform random start.
* ``craft_mode="eval"`` (default) crafts x_adv with the model in eval mode (BatchNorm uses its running statistics and
  the PGD passes do not update them), then the two loss terms run in train mode. ``"train"`` keeps batch statistics
  while crafting (as several public implementations do); the PGD passes then also move the running statistics.
* The two terms use two forward passes (x, then x_adv), each with its own BatchNorm batch statistics: the literal
  reading of Eq. 12 (one concatenated batch would mix clean and adversarial statistics).
* The training PGD keeps the LAST iterate (Madry et al.), unlike `tempscale.attacks.pgd`, which keeps the first
  misclassified iterate (right for evaluation, an early-stopped and weaker adversary for training).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import InvalidSpecError
from ..inference import preserved_state
from ..losses import temperature_ce
from .base import Method, MethodArgs, arg, register_method

if TYPE_CHECKING:
    from ..spec import RunSpec

CRAFT_MODES = ("eval", "train")


@dataclass(frozen=True, kw_only=True)
class MadryArgs(MethodArgs):
    """The training PGD's budget; the paper does not state it, so it is always explicit in method_args."""

    eps: float = arg(8 / 255, "L∞ radius of the training PGD", minimum=0)
    alpha: float = arg(2 / 255, "training-PGD step size", minimum=0)
    steps: int = arg(10, "training-PGD steps", minimum=1)
    random_start: bool = arg(True, "start from a uniform point of the ε-ball")
    craft_mode: str = arg("eval", "model mode while crafting x_adv (see the module docstring)", choices=CRAFT_MODES)


MADRY_PAPER = MadryArgs().to_dict()


def madry_args(**overrides) -> dict:
    """Complete method_args for "madry": `MADRY_PAPER` with any field replaced (checked)."""
    return MadryArgs.with_changes(**overrides)


def craft_adversarial(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, alpha: float, steps: int,
                      random_start: bool = True, craft_mode: str = "eval") -> torch.Tensor:
    """Training-time L∞ PGD (Madry et al.) on CE(F(x), y) at τ = 1; returns the LAST iterate, in [0, 1] and
    within ‖x_adv − x‖∞ ≤ eps. The random start uses the global RNG (the trainer seeds it per epoch, so resumed
    runs repeat it). The model's train/eval modes and its parameters' requires_grad are restored afterwards;
    parameter .grad fields are never touched."""
    if craft_mode not in CRAFT_MODES:
        raise InvalidSpecError(f"craft_mode must be one of {CRAFT_MODES}, got {craft_mode!r}")
    x = x.detach()
    with preserved_state(model):
        if craft_mode == "eval":
            model.eval()
        for param in model.parameters():
            param.requires_grad_(False)
        x_adv = x.clone()
        if random_start:
            x_adv = (x_adv + torch.empty_like(x).uniform_(-eps, eps)).clamp(0, 1)
        with torch.enable_grad():
            for _ in range(steps):
                x_adv.requires_grad_(True)
                loss = F.cross_entropy(model(x_adv).float(), y)
                grad, = torch.autograd.grad(loss, x_adv)
                x_adv = x_adv.detach() + alpha * grad.sign()
                x_adv = torch.min(torch.max(x_adv, x - eps), x + eps).clamp(0, 1)
    return x_adv.detach()


class ATLoss(NamedTuple):
    total: torch.Tensor        # clean + adversarial
    clean: torch.Tensor        # CE(F(x)/τ, y)
    adversarial: torch.Tensor  # CE(F(x_adv), y)


def madry_loss(model: nn.Module, x: torch.Tensor, x_adv: torch.Tensor, y: torch.Tensor, tau: float) -> ATLoss:
    """Eq. 12: L_AT = CE(F(x)/τ, y) + CE(F(x_adv), y), with its two terms (two forward passes, current mode)."""
    clean = temperature_ce(model(x).float(), y, tau)
    adversarial = F.cross_entropy(model(x_adv).float(), y)
    return ATLoss(clean + adversarial, clean, adversarial)


@register_method
class Madry(Method):
    name = "madry"
    description = "Madry adversarial training with τ on the clean term: CE(F(x)/τ, y) + CE(F(x_adv), y) (Eq. 12)"
    Args = MadryArgs

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, spec: RunSpec) -> torch.Tensor:
        a = self.args(spec)
        x_adv = craft_adversarial(model, x, y, a.eps, a.alpha, a.steps, a.random_start, a.craft_mode)
        if x.is_contiguous(memory_format=torch.channels_last):
            x_adv = x_adv.contiguous(memory_format=torch.channels_last)
        return madry_loss(model, x, x_adv, y, spec.tau).total


__all__ = ["MADRY_PAPER", "CRAFT_MODES", "MadryArgs", "madry_args", "craft_adversarial", "ATLoss", "madry_loss",
           "Madry"]
