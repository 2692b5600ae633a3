"""What a check is, the registry `audit()` loops over, and the arithmetic every check's evidence shares.

A check is a `Check` subclass with a `name` and a `run(runner)` that returns a `CheckResult`; decorating it with
`@register_check` (and importing its module, as ``tempscale.audit`` does for its own) puts it into every audit.
Registration order is the order checks run and are reported in.

Every comparison a check decides on goes through `stronger` (two attacks on the same examples: pp gap and an exact
one-sided McNemar test at α = `AuditBudget.significance`) or `above_rate` (a count that should be ≈ 0: pp threshold
and an exact one-sided binomial test against that tolerated rate), so that one example never decides a verdict.
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


def exceeds(count: int, n: int, pp: float, min_count: int = 1) -> bool:
    """A share of `count` examples out of `n` is more than `pp` percentage points and spans ≥ `min_count` examples
    (for measurements, not comparisons: e.g. the share of inputs with vanishing gradients)."""
    return n > 0 and 100.0 * count / n > pp and count >= min_count


def one_sided_p(successes: int, trials: int, p0: float) -> float:
    """Exact one-sided binomial p-value P(X ≥ successes) for X ~ Binomial(trials, p0) (1.0 when trials = 0)."""
    if trials <= 0 or successes <= 0:
        return 1.0
    from scipy.stats import binomtest   # here: scipy.stats takes half a second to import, in every kernel

    return float(binomtest(successes, trials, p0, alternative="greater").pvalue)


def mcnemar_p(only_a: int, only_b: int) -> float:
    """Exact one-sided McNemar p-value that attack A breaks more examples than attack B, from the discordant pairs
    only: `only_a` examples broken by A and not by B, `only_b` the reverse. Under "A is no stronger than B" each
    discordant example is A's with probability ½, so p = P(Binomial(only_a + only_b, ½) ≥ only_a)."""
    return one_sided_p(only_a, only_a + only_b, 0.5)


def stronger(a_robust: torch.Tensor, b_robust: torch.Tensor, n: int, pp: float, alpha: float) -> dict:
    """The audit's rule for "attack A breaks more than attack B" on the same examples (per-example robust masks):
    A's accuracy is more than `pp` percentage points below B's AND the exact one-sided McNemar test on the
    discordant pairs has p < `alpha`. Returns the counts, the gap, p and the decision (``stronger``)."""
    only_a = int((b_robust & ~a_robust).sum())     # broken by A, not by B
    only_b = int((a_robust & ~b_robust).sum())
    gap = only_a - only_b                          # = robust(B) − robust(A), in examples
    p = mcnemar_p(only_a, only_b)
    decided = n > 0 and 100.0 * gap / n > pp and p < alpha
    return {"only_a": only_a, "only_b": only_b, "gap_pp": 100.0 * gap / n if n else 0.0, "p_value": p,
            "stronger": bool(decided)}


def above_rate(count: int, n: int, pp: float, alpha: float) -> dict:
    """The audit's rule for "more than `pp` % of the examples" when the expected share is (near) zero: `count`/`n` is
    above `pp` % AND the exact one-sided binomial test against the tolerated rate p0 = `pp`/100 has p < `alpha`."""
    p = one_sided_p(count, n, pp / 100.0) if pp > 0 else (0.0 if count > 0 else 1.0)
    decided = n > 0 and 100.0 * count / n > pp and p < alpha
    return {"count": count, "pct": 100.0 * count / n if n else 0.0, "p_value": p, "above": bool(decided)}


def eps_label(eps: float) -> str:
    """ε as "8/255" when it is a whole number of 255ths, else as a number."""
    value = eps * 255
    return f"{value:.0f}/255" if abs(value - round(value)) < 1e-6 else f"{eps:.4g}"
