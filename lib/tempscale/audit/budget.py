"""Every number the audit decides with: attack budgets, flagging thresholds and the float32 limits behind them.

Every value (budgets, trims and thresholds, each with its comment) lives in the profile tree
(`tempscale.profiles.Audit`); `AuditBudget` is one profile's section resolved to numbers. Thresholds are in
percentage points (pp) of the audited examples; a comparison also needs p < `AuditBudget.significance` in an exact
one-sided test (`checks.base.stronger` / `above_rate`).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from ..attacks import ATTACKS, attack_spec
from ..errors import InvalidSpecError
from ..profiles import Profile, get_profile
from .report import _jsonable

# float32's limits: where softmax saturates and where the rest of the CE gradient underflows (see the package docs).
_F32 = np.finfo(np.float32)
SATURATION_MARGIN = float(-np.log(_F32.epsneg / 2))           # ≈ 17.3: p_y rounds to 1.0 beyond this margin
UNDERFLOW_MARGIN = float(-np.log(_F32.smallest_subnormal))    # ≈ 103.3: e^{−m} underflows to 0.0 beyond this

CURVE_LOSSES: tuple[str, ...] = ("ce", "margin", "dlr", "rescaled")


@dataclass(frozen=True)
class AuditBudget:
    """A profile's audit settings resolved to numbers (what each field means: `tempscale.profiles.Audit`)."""

    n: int | None
    eps: float
    alpha: float
    pgd_steps: int
    long_steps: int
    restarts: int
    apgd_steps: int
    square_queries: int
    square_p_init: float
    eps_grid: tuple[float, ...]
    curve_losses: tuple[str, ...]
    unbounded_steps: int
    tiny_grad: float
    targets: int
    black_box_pp: float
    scale_pp: float
    iterations_pp: float
    transfer_pp: float
    vanishing_pp: float
    unbounded_pp: float
    noise_pp: float
    significance: float
    seed: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "eps_grid", tuple(sorted(float(e) for e in self.eps_grid)))
        object.__setattr__(self, "curve_losses", tuple(self.curve_losses))
        unknown = set(self.curve_losses) - set(CURVE_LOSSES)
        if unknown:
            raise InvalidSpecError(f"unknown curve loss(es) {sorted(unknown)}; use {', '.join(CURVE_LOSSES)}")
        if not self.eps_grid or self.eps_grid[0] <= 0:
            raise InvalidSpecError(f"eps_grid must hold positive radii, got {self.eps_grid}")
        for name in ("pgd_steps", "long_steps", "restarts", "apgd_steps", "square_queries", "unbounded_steps"):
            if getattr(self, name) < 1:
                raise InvalidSpecError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.targets < 0:
            raise InvalidSpecError(f"targets must be >= 0 (0: no targeted attacks), got {self.targets}")
        if not 0 < self.significance < 1:
            raise InvalidSpecError(f"significance must be in (0, 1), got {self.significance}")

    def to_dict(self) -> dict:
        return _jsonable(dataclasses.asdict(self))

    @classmethod
    def from_profile(cls, profile: Profile | str, full: bool = False, **overrides: Any) -> AuditBudget:
        """The profile's audit section (`full`: without its trims), with what it leaves open taken from the
        profile: n from ``n_eval``, ε and the PGD step from its threat model, APGD steps and Square's budget from its
        attack budgets (the same specs as the robustness notebook, so its cached results are reused); then
        `overrides`."""
        profile = get_profile(profile)
        fields = profile.audit.resolved(full)
        pgd20, apgd, square = (attack_spec(name, **profile.attacks.changes(name, ATTACKS[name]))
                               for name in ("pgd20", "apgd_ce", "square"))
        own = dict(n=profile.n_eval, eps=pgd20.eps, alpha=pgd20.alpha, apgd_steps=apgd.steps,
                   square_queries=square.n_queries, square_p_init=square.p_init)
        fields.update({k: v for k, v in own.items() if fields[k] is None})
        unknown = set(overrides) - set(fields)
        if unknown:
            raise InvalidSpecError(f"unknown audit budget field(s) {sorted(unknown)}; settable: {sorted(fields)}")
        return cls(**{**fields, **overrides})


BudgetLike = AuditBudget | Profile | str | Mapping[str, Any]   # what `resolve_budget` accepts


def resolve_budget(budget: BudgetLike) -> AuditBudget:
    """A budget from a profile name ("smoke", "quick", "paper"), a `Profile`, a dict (fields of `AuditBudget`,
    optionally with ``"profile"``: the base profile, default smoke) or an `AuditBudget`."""
    if isinstance(budget, AuditBudget):
        return budget
    if isinstance(budget, str):
        return AuditBudget.from_profile(budget)
    if isinstance(budget, Mapping):
        fields = dict(budget)
        return AuditBudget.from_profile(fields.pop("profile", "smoke"), **fields)
    if isinstance(budget, Profile):
        return AuditBudget.from_profile(budget)
    raise InvalidSpecError(f"budget must be a profile name, Profile, dict or AuditBudget, got {budget!r}")
