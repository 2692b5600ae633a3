"""Model-state helpers shared by every evaluation path: training, attacks, the audit, analyses, methods, GradCAM.

Each helper leaves the model exactly as it found it: every module's train/eval flag and every parameter's
``requires_grad`` (and, with `preserved_state(grads=True)`, its ``.grad``) are restored on exit, also after an error.
"""
from __future__ import annotations

import contextlib
from typing import Callable, Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F

from .errors import InvalidSpecError

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def check_device(device: str | torch.device | None) -> torch.device | None:
    """The device named by `device` if this machine has it (None stays None), else a one-line InvalidSpecError."""
    if device is None or device == "":
        return None
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise InvalidSpecError(f"unknown device {device!r}; use cpu, cuda or cuda:<index>") from None
    if dev.type == "cpu":
        return dev
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise InvalidSpecError(f"device {device!r} asked for, but this machine has no usable CUDA GPU; "
                                   "use --device cpu")
        if dev.index is not None and dev.index >= count:
            raise InvalidSpecError(f"device {device!r} does not exist; this machine has cuda:0..cuda:{count - 1}")
        return dev
    if dev.type == "mps" and torch.backends.mps.is_available():
        return dev
    raise InvalidSpecError(f"device {device!r} is not available here; use cpu or cuda")


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """The device asked for (checked: it must exist here), else CUDA when available, else the CPU."""
    return check_device(device) or torch.device("cuda" if torch.cuda.is_available() else "cpu")


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (or buffer); CPU for a model with neither."""
    tensor = next(iter(model.parameters()), None)
    if tensor is None:
        tensor = next(iter(model.buffers()), None)
    return tensor.device if tensor is not None else torch.device("cpu")


@contextlib.contextmanager
def preserved_state(model: nn.Module, grads: bool = False) -> Iterator[None]:
    """Restore every module's mode and every parameter's ``requires_grad`` (and ``.grad`` when `grads`) on exit."""
    modes = [(module, module.training) for module in model.modules()]
    params = [(param, param.requires_grad, param.grad) for param in model.parameters()]
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training
        for param, requires_grad, grad in params:
            param.requires_grad_(requires_grad)
            if grads:
                param.grad = grad


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode (BatchNorm running statistics, no dropout) inside, the previous modes afterwards."""
    with preserved_state(model):
        model.eval()
        yield


@contextlib.contextmanager
def frozen_eval(model: nn.Module) -> Iterator[None]:
    """Eval mode and parameters without gradients (attacks need input gradients only); both restored afterwards."""
    with eval_mode(model):
        for param in model.parameters():
            param.requires_grad_(False)
        yield


def batches(n: int, batch_size: int | None) -> Iterator[slice]:
    """Slices covering range(n) in order; one slice when `batch_size` is None."""
    size = n if batch_size is None else batch_size
    for start in range(0, n, max(size, 1)):
        yield slice(start, min(start + size, n))


@torch.no_grad()
def batched_logits(model: nn.Module, x: torch.Tensor, batch_size: int | None = 256) -> torch.Tensor:
    """Logits at τ = 1 for every row of x (float32, CPU), in eval mode, without gradients."""
    device = model_device(model)
    with eval_mode(model):
        parts = [model(x[part].to(device)).float().cpu() for part in batches(len(x), batch_size)]
    return torch.cat(parts) if parts else torch.zeros(0)


def batched_features(model: nn.Module, x: torch.Tensor,
                     batch_size: int | None = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """(f(x), logits) per row of x in eval mode; logits go through the same head, so logits == f @ W.T + b."""
    feats, logits = [], []
    with eval_mode(model), torch.inference_mode():
        for part in batches(len(x), batch_size):
            f = model.features(x[part])
            feats.append(f)
            logits.append(model.head(f))
    return torch.cat(feats), torch.cat(logits)


def predict(model: nn.Module, x: torch.Tensor, batch_size: int | None = 256) -> torch.Tensor:
    """Predicted classes (argmax of the logits; τ-invariant), CPU."""
    return batched_logits(model, x, batch_size).argmax(dim=1)


def _ce_sum(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits, y, reduction="sum")


def input_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss: LossFn = _ce_sum,
                   batch_size: int | None = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """(∂loss/∂x, logits) per example at τ = 1, float32 on the CPU, with the model frozen in eval mode.

    `loss(logits, y)` must sum over the batch (the default: summed cross-entropy), so each row of the gradient is
    that example's own ∂L_n/∂x_n.
    """
    device = model_device(model)
    grads, logits = [], []
    with frozen_eval(model), torch.enable_grad():
        for part in batches(len(x), batch_size):
            xb = x[part].detach().to(device).float().requires_grad_(True)
            out = model(xb).float()
            grad, = torch.autograd.grad(loss(out, y[part].to(device)), xb)
            grads.append(grad.cpu())
            logits.append(out.detach().cpu())
    if not grads:
        return torch.zeros_like(x), torch.zeros(0)
    return torch.cat(grads), torch.cat(logits)
