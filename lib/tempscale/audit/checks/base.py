"""What a check is, the registry `audit()` loops over, and the arithmetic every check's evidence shares.

A check is a `Check` subclass with a `name` and a `run(runner)` that returns a `CheckResult`; decorating it with
`@register_check` (and importing its module, as ``tempscale.audit`` does for its own) puts it into every audit.
Registration order is the order checks run and are reported in.
"""
from __future__ import annotations

from typing import ClassVar, Iterable

import torch

from ...errors import InvalidSpecError
from ..report import CheckResult
from ..runner import AttackRunner


class Check:
    """One gradient-masking test on the model, data and budget an `AttackRunner` carries."""

    name: ClassVar[str] = ""

    def run(self, runner: AttackRunner) -> CheckResult:
        raise NotImplementedError


_REGISTRY: dict[str, Check] = {}


def register_check(cls: type[Check]) -> type[Check]:
    """Class decorator: add the check to every `audit()`, after those registered before it."""
    if not cls.name:
        raise InvalidSpecError(f"{cls.__qualname__} needs a `name` to be registered as a check")
    known = _REGISTRY.get(cls.name)
    # Re-registering the same class (a reloaded module) replaces it; two classes may not share a name.
    if known is not None and type(known).__qualname__ != cls.__qualname__:
        raise InvalidSpecError(f"check name {cls.name!r} is taken by {type(known).__qualname__}")
    _REGISTRY[cls.name] = cls()
    return cls


def unregister_check(name: str) -> None:
    """Remove a registered check (a test's temporary one)."""
    _REGISTRY.pop(name)


def check_names() -> tuple[str, ...]:
    """The registered checks' names, in registration order."""
    return tuple(_REGISTRY)


def select_checks(names: Iterable[str] | None = None) -> list[Check]:
    """The registered checks named in `names` (all when None; one name may be given as a string), in registration
    order."""
    if isinstance(names, str):
        names = [names]
    wanted = set(_REGISTRY if names is None else names)
    unknown = wanted - set(_REGISTRY)
    if unknown:
        raise InvalidSpecError(f"unknown check(s) {sorted(unknown)}; choose from {', '.join(_REGISTRY)}")
    return [check for name, check in _REGISTRY.items() if name in wanted]


# --- the arithmetic of evidence ---------------------------------------------------------------------------------------

def pct(mask_or_fraction: torch.Tensor | float) -> float:
    """A per-example mask's share of True, or a fraction, in percent."""
    if isinstance(mask_or_fraction, torch.Tensor):
        return 100.0 * float(mask_or_fraction.float().mean()) if mask_or_fraction.numel() else 0.0
    return 100.0 * float(mask_or_fraction)


def exceeds(count: int, n: int, pp: float, min_count: int) -> bool:
    """A gap of `count` examples out of `n` is more than `pp` percentage points and spans ≥ `min_count` examples."""
    return n > 0 and 100.0 * count / n > pp and count >= min_count


def eps_label(eps: float) -> str:
    """ε as "8/255" when it is a whole number of 255ths, else as a number."""
    value = eps * 255
    return f"{value:.0f}/255" if abs(value - round(value)) < 1e-6 else f"{eps:.4g}"
