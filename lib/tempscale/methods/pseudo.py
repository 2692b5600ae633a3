"""``ldd_pseudo``: a plain student trained on the hard pseudo-labels of a stored teacher (thesis Sec. 4.3.3,
Table 4.6), optionally plus a high-temperature CE on the true labels (the thesis' "S_iter2/3").

Pseudo-labels are the teacher's argmax on each (augmented) training batch, computed on the fly with the teacher
frozen in eval mode. Every student starts from scratch: S_iter1 = pseudo-labels only, E epochs; S_iter2 =
pseudo-labels + CE(z/τ_high, y) for E epochs; S_iter3 = the same loss for 2E epochs (the thesis: 200 and 400 epochs;
whether S_iter2/3 start from S_iter1 is not stated). The teacher is named by its run folder (whose name carries its
spec hash) and opened through the run store; it is needed to train, not to load.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn as nn

from ..inference import frozen_eval
from ..losses import check_tau, temperature_ce
from ..paths import runs_dir
from .base import Method, MethodArgs, arg, load_stored_model, register_method
from .ldd import LDDPair

if TYPE_CHECKING:
    from ..spec import RunSpec

PSEUDO_PARTS = ("teacher", "student")


@dataclass(frozen=True, kw_only=True)
class PseudoArgs(MethodArgs):
    teacher_run: str = arg(doc="the labeller's run folder name (resolved under tempscale.paths.runs_dir())")
    true_label_tau: float | None = arg(None, "τ of the added CE on the true labels; None: pseudo-labels only",
                                       check=check_tau)
    part: str = arg("teacher", "which network of an LDD pair labels", choices=PSEUDO_PARTS)


def ldd_pseudo_args(teacher_run, true_label_tau: float | None = None, part: str = "teacher") -> dict:
    """method_args for "ldd_pseudo": `teacher_run` is a Run, a run folder or its name (stored by name); a
    `true_label_tau` adds CE(z/τ, y_true) (S_iter2/3); `part` picks an LDD pair's teacher (default) or student."""
    name = Path(getattr(teacher_run, "dir", teacher_run)).name
    return PseudoArgs(teacher_run=name, true_label_tau=true_label_tau, part=part).to_dict()


_LABELLERS: dict[tuple[str, str, str], nn.Module] = {}


def load_labeller(teacher_run: str, part: str = "teacher", device: str | torch.device = "cpu") -> nn.Module:
    """The network whose argmax gives the pseudo-labels (cached per process); a bare folder name is looked up
    under `tempscale.paths.runs_dir()`."""
    path = Path(teacher_run) if Path(teacher_run).is_absolute() else runs_dir() / teacher_run
    key = (str(path), part, str(device))
    if key not in _LABELLERS:
        model = load_stored_model(path, device)
        _LABELLERS[key] = getattr(model, part) if isinstance(model, LDDPair) else model
    return _LABELLERS[key]


def pseudo_label_loss(z: torch.Tensor, pseudo: torch.Tensor, y: torch.Tensor, tau: float = 1.0,
                      true_label_tau: float | None = None) -> torch.Tensor:
    """CE(z/τ, pseudo) [+ CE(z/τ_true, y)]: Sec. 4.3.3's students."""
    loss = temperature_ce(z.float(), pseudo, tau)
    if true_label_tau is not None:
        loss = loss + temperature_ce(z.float(), y, true_label_tau)
    return loss


@register_method
class PseudoLabelStudent(Method):
    name = "ldd_pseudo"
    description = "student on a stored teacher's pseudo-labels [+ high-τ CE on true labels] (thesis Table 4.6)"
    Args = PseudoArgs

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, spec: RunSpec) -> torch.Tensor:
        a = self.args(spec)
        labeller = load_labeller(a.teacher_run, a.part, x.device)
        with frozen_eval(labeller), torch.no_grad():
            pseudo = labeller(x).argmax(1)
        return pseudo_label_loss(model(x), pseudo, y, spec.tau, a.true_label_tau)


__all__ = ["PSEUDO_PARTS", "PseudoArgs", "ldd_pseudo_args", "load_labeller", "pseudo_label_loss",
           "PseudoLabelStudent"]
