"""``standard``: temperature-scaled cross-entropy, the paper's training loss (Eq. 3)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn as nn

from ..losses import temperature_ce
from .base import Method, register_method

if TYPE_CHECKING:
    from ..spec import RunSpec


def standard_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, spec: RunSpec) -> torch.Tensor:
    """Eq. 3: CE(z / τ, y)."""
    return temperature_ce(model(x), y, spec.tau)


@register_method
class Standard(Method):
    name = "standard"
    description = "temperature-scaled cross-entropy (Eq. 3)"

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, spec: RunSpec) -> torch.Tensor:
        return standard_loss(model, x, y, spec)
