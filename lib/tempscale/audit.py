"""Gradient-masking audit: is a model's robustness to PGD real, or are its gradients just useless to PGD?

Why: the paper's high-τ models keep 90%+ accuracy under PGD-20 at ε = 8/255, yet the thesis' own tables show
Square (gradient-free) at ≈ 1% and C&W-L2 near 1% on the same models. Training at a high softmax temperature and
attacking at τ = 1 is defensive distillation's recipe (Papernot et al. 2016), which Carlini & Wagner (2016, 2017)
broke: the logits grow τ-fold, softmax(z) saturates in float32, the cross-entropy gradient vanishes, and PGD stops
moving although the model is not robust. Each check below is one of the standard tests for that failure
(Carlini et al. 2019, "On Evaluating Adversarial Robustness"; Croce & Hein 2020, AutoAttack):

* ``black-box`` — Square (gradient-free) vs the per-example best of PGD-20 and APGD-CE. Flagged when Square breaks
  more than 0.2 pp of the examples the white-box attacks left robust (AutoAttack's rule).
* ``scale-invariant`` — APGD-DLR, PGD on the C&W margin (cw-linf) and PGD-20 on logits rescaled by 1/τ_train and by
  1/std(z) (a searched scale). Flagged when any is ≥ 2 pp below PGD-20 on CE.
* ``vanishing-gradients`` — the input gradient of CE at τ = 1 on clean, correctly classified inputs: fraction exactly
  0, fraction "vanishing" (max |∂L/∂x| < 1e-30, see below), plus the softmax saturation behind it (max softmax
  probability == 1.0 in float32) and the logit margins z_y − max_{j≠y} z_j. Flagged when more than 1% of the inputs
  have vanishing gradients.
* ``eps-sweep`` — PGD accuracy at growing ε (8 … 128/255) for CE at τ = 1 and for the scale-invariant losses, and an
  unbounded CE attack (ε = 1: the whole image box; from the clean image, no random start, on the examples CE-PGD left
  at the largest ε). Flagged when CE-PGD stays above chance at the largest ε, or the unbounded attack leaves more
  than 1% correct.
* ``more-iterations`` — PGD-20 vs PGD with more steps and with restarts (run on PGD-20's survivors, so the result is
  the per-example worst case). Flagged when the extra effort lowers accuracy by ≥ 5 pp.
* ``transfer`` — PGD-20 examples crafted on a reference model (the τ = 1 run) applied to the audited model. Flagged
  when transfer is ≥ 2 pp below the white-box attacks (a black-box attack cannot beat a white-box one on an honest
  model). Skipped, with a note, when no reference is given.

Every threshold is a field of `AuditBudget`; "≥ k pp" also requires at least `min_examples` examples.

Definitions, so the numbers can be checked:

* All fractions are over the audited examples; gradient statistics are over the clean, correctly classified ones
  (misclassified inputs need no attack).
* *exactly zero*: every component of ∂CE(z, y)/∂x is 0.0 in float32. *vanishing*: max_i |∂CE/∂x_i| < 1e-30
  (`AuditBudget.tiny_grad`), i.e. within 8 decades of float32's smallest normal number (1.2e-38): any further
  product underflows, and no step-size rule that scales with the gradient can move. (Sign-gradient PGD still moves
  on a gradient of 1e-40; it stops only at exact zeros, which is why margins are reported too.)
* *saturated*: max_j softmax(z)_j rounds to exactly 1.0 in float32. For a correct prediction this happens once the
  margin m = z_y − max_{j≠y} z_j exceeds about −ln(2⁻²⁵) ≈ 17.3 (`SATURATION_MARGIN`); then ∂CE/∂z_y = p_y − 1 = 0 and
  the gradient keeps no pull away from the true class, only a push of size ≈ e^{−m} towards the others, which itself
  underflows to 0 beyond m ≈ 103 (`UNDERFLOW_MARGIN`, −ln of the smallest float32 subnormal).
* Every attack follows `tempscale.attacks`' conventions (a misclassified clean input is never robust; best-so-far
  iterates), and every result that fits an `AttackSpec` goes through `tempscale.robustness.evaluate`, cached per
  batch under `cache_dir` (the run's ``evals/`` folder): a rerun does not attack again. Attacks that only need the
  examples an earlier attack left robust (larger ε, more steps, restarts) run on those examples only.

Budgets (steps, Square queries, ε grid, n) come from a profile (`AuditBudget.from_profile`): ``smoke`` takes
seconds, ``quick`` (trimmed: 200 images, APGD 50 steps, Square 300 queries) about half a minute of CPU per model on a
2-core CPU, ``paper`` the profile's full AutoAttack-scale budgets. Measured times are listed above `AUDIT_BUDGETS`.

Public API: `audit` → `AuditReport` (``verdict``, ``flagged``, ``accuracy``, ``to_frame()``, ``to_dict()``),
`audit_run` (the CLI's JSON), the single checks ``check_*`` → `CheckResult`, `gradient_statistics`,
`robustness_curve`, `ScaledLogits`, `AuditBudget` / `resolve_budget`, `CHECKS`.
"""
from __future__ import annotations

import dataclasses
import hashlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .attacks import ATTACKS, AttackSpec, attack_spec, frozen_eval, model_device, run_attack, worst_case
from .errors import InvalidSpecError

CHECKS: tuple[str, ...] = ("black-box", "scale-invariant", "vanishing-gradients", "eps-sweep", "more-iterations",
                           "transfer")
NO_MASKING = "no masking detected"
SUSPECTED = "gradient masking suspected"

_F32 = np.finfo(np.float32)
SATURATION_MARGIN = float(-np.log(_F32.epsneg / 2))           # ≈ 17.3: p_y rounds to 1.0 beyond this margin
UNDERFLOW_MARGIN = float(-np.log(_F32.smallest_subnormal))    # ≈ 103.3: e^{−m} underflows to 0.0 beyond this


# --- budgets --------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AuditBudget:
    """Every knob of the audit. Thresholds are in percentage points (pp) of the audited examples."""

    n: int | None = None                    # examples audited (the first n); None: all given
    eps: float = 8 / 255                    # the threat model the paper reports (L∞)
    alpha: float = 2 / 255                  # PGD step at `eps`; other ε use alpha·ε/eps
    pgd_steps: int = 20                     # the paper's PGD-20
    long_steps: int = 100                   # "more iterations": PGD-100
    restarts: int = 5                       # "more restarts": PGD-20 with this many random starts
    apgd_steps: int = 100                   # APGD-CE / APGD-DLR iterations (the original's 100)
    square_queries: int = 5000              # AutoAttack's Square budget
    square_p_init: float = 0.8
    eps_grid: tuple[float, ...] = (8 / 255, 16 / 255, 32 / 255, 64 / 255, 128 / 255)
    curve_losses: tuple[str, ...] = ("ce", "margin", "dlr", "rescaled")   # PGD losses swept over `eps_grid`
    unbounded_steps: int = 100              # PGD at ε = 1 from the clean image, step 2.5/steps
    tiny_grad: float = 1e-30                # "vanishing" gradient: max |∂L/∂x| below this
    black_box_pp: float = 0.2               # AutoAttack's rule for Square after the white-box attacks
    scale_pp: float = 2.0                   # a scale-invariant attack this far below PGD-20 (CE) is "clearly below"
    iterations_pp: float = 5.0               # "a big change": PGD-20 had clearly not converged
    transfer_pp: float = 2.0
    vanishing_pp: float = 1.0               # % of correct inputs with vanishing gradients
    unbounded_pp: float = 1.0               # the unbounded attack must leave at most this % correct
    min_examples: int = 2                   # a gap must also span this many examples (black-box, vanishing: 1)
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "eps_grid", tuple(sorted(float(e) for e in self.eps_grid)))
        object.__setattr__(self, "curve_losses", tuple(self.curve_losses))
        unknown = set(self.curve_losses) - {"ce", "margin", "dlr", "rescaled"}
        if unknown:
            raise InvalidSpecError(f"unknown curve loss(es) {sorted(unknown)}; use ce, margin, dlr, rescaled")
        if not self.eps_grid or self.eps_grid[0] <= 0:
            raise InvalidSpecError(f"eps_grid must hold positive radii, got {self.eps_grid}")
        for name in ("pgd_steps", "long_steps", "restarts", "apgd_steps", "square_queries", "unbounded_steps"):
            if getattr(self, name) < 1:
                raise InvalidSpecError(f"{name} must be >= 1, got {getattr(self, name)}")

    def to_dict(self) -> dict:
        return _jsonable(dataclasses.asdict(self))

    @classmethod
    def from_profile(cls, profile, full: bool = False, **overrides) -> "AuditBudget":
        """The audit budget of a profile (a `Profile` or its name): n from ``n_eval``, APGD steps and Square queries
        from ``attack_overrides`` (the same specs as the robustness notebook, so its cached results are reused), then
        the audit's own settings and trims for that profile from `AUDIT_BUDGETS` unless `full`, then `overrides`."""
        from .profiles import get_profile

        profile = get_profile(profile) if isinstance(profile, str) else profile
        attack = profile.attack_overrides
        fields = dict(
            n=profile.n_eval,
            apgd_steps=attack.get("apgd-ce", {}).get("steps", ATTACKS["apgd-ce"].steps),
            square_queries=attack.get("square", {}).get("n_queries", ATTACKS["square"].n_queries),
            square_p_init=attack.get("square", {}).get("p_init", ATTACKS["square"].p_init),
        )
        audit_only = AUDIT_BUDGETS.get(profile.name, {})
        fields.update({k: v for k, v in audit_only.items() if not full or k not in TRIMS})
        fields.update(overrides)
        return cls(**fields)


# Audit settings per profile. Those in `TRIMS` cut the profile's own attack budgets so that notebook 10 audits every τ
# of the quick grid in minutes; `AuditBudget.from_profile(..., full=True)` keeps the profile's budgets instead.
# Measured on the shared 2-core CPU (1 thread, load ≈ 6), per model: smoke ≈ 10 s (64 images); quick with the
# profile's full budgets (450 images, APGD 100 steps, Square 1000 queries, dlr curve) 110-170 s of CPU (150-330 s
# wall); quick trimmed as below (200 images, APGD 50, Square 300) ≈ 28 s of CPU (50-70 s wall) per model.
TRIMS = frozenset({"n", "apgd_steps", "square_queries", "curve_losses"})
AUDIT_BUDGETS: dict[str, dict] = {
    "smoke": dict(long_steps=40, restarts=2, eps_grid=(8 / 255, 32 / 255, 128 / 255),
                  curve_losses=("ce", "margin", "rescaled"), unbounded_steps=20),
    "quick": dict(n=200, apgd_steps=50, square_queries=300, long_steps=50, restarts=2,
                  eps_grid=(8 / 255, 16 / 255, 32 / 255, 64 / 255, 128 / 255),
                  curve_losses=("ce", "margin", "rescaled"), unbounded_steps=50),
    "paper": dict(long_steps=100, restarts=5, unbounded_steps=100),
}


def resolve_budget(budget) -> AuditBudget:
    """A budget from a profile name ("smoke", "quick", "paper"), a `Profile`, a dict (fields of `AuditBudget`,
    optionally with ``"profile"``: the base profile, default smoke) or an `AuditBudget`."""
    if isinstance(budget, AuditBudget):
        return budget
    if isinstance(budget, str):
        return AuditBudget.from_profile(budget)
    if isinstance(budget, Mapping):
        fields = dict(budget)
        base = fields.pop("profile", "smoke")
        unknown = set(fields) - {f.name for f in dataclasses.fields(AuditBudget)}
        if unknown:
            raise InvalidSpecError(f"unknown audit budget field(s) {sorted(unknown)}")
        return AuditBudget.from_profile(base, **fields)
    if hasattr(budget, "attack_overrides"):
        return AuditBudget.from_profile(budget)
    raise InvalidSpecError(f"budget must be a profile name, Profile, dict or AuditBudget, got {budget!r}")


# --- results --------------------------------------------------------------------------------------------------------

@dataclass
class CheckResult:
    """One check: whether it flags gradient masking, the numbers behind it and a sentence made from them."""

    name: str
    flagged: bool
    numbers: dict
    explanation: str

    def to_dict(self) -> dict:
        return {"name": self.name, "flagged": bool(self.flagged), "numbers": _jsonable(self.numbers),
                "explanation": self.explanation}


@dataclass
class AuditReport:
    """All checks on one model. `verdict` names the flagged checks; `accuracy` holds every attack's accuracy (%)."""

    checks: list[CheckResult]
    tau_train: float
    n: int
    budget: AuditBudget
    accuracy: dict[str, float] = field(default_factory=dict)
    elapsed_s: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def flagged(self) -> list[str]:
        return [check.name for check in self.checks if check.flagged]

    @property
    def suspected(self) -> bool:
        return bool(self.flagged)

    @property
    def verdict(self) -> str:
        return f"{SUSPECTED}: {', '.join(self.flagged)}" if self.flagged else NO_MASKING

    def check(self, name: str) -> CheckResult:
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(f"check {name!r} was not run; ran {[c.name for c in self.checks]}")

    def to_frame(self):
        """The evidence table: one row per check (flagged, the sentence with its numbers)."""
        import pandas as pd

        rows = [{"check": c.name, "flagged": c.flagged, "evidence": c.explanation} for c in self.checks]
        frame = pd.DataFrame(rows, columns=["check", "flagged", "evidence"]).set_index("check")
        frame.attrs["verdict"] = self.verdict
        return frame

    def to_dict(self) -> dict:
        return _jsonable({"verdict": self.verdict, "suspected": self.suspected, "flagged": self.flagged,
                          "tau_train": self.tau_train, "n": self.n, "accuracy": self.accuracy,
                          "checks": {c.name: c.to_dict() for c in self.checks}, "budget": self.budget.to_dict(),
                          "elapsed_s": self.elapsed_s, "notes": self.notes})


def _jsonable(obj):
    """Plain JSON types all the way down (tensors and numpy scalars become numbers, keys strings)."""
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return _jsonable(obj.tolist())
    if isinstance(obj, (np.generic,)):
        return obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


# --- helpers --------------------------------------------------------------------------------------------------------

class ScaledLogits(nn.Module):
    """``model(x) · scale``: the same predictions, logits (and hence softmax saturation) rescaled.

    Used to attack CE on z/τ_train (scale 1/τ) and, in the tests, to plant masking (scale 1e4). The scale is a buffer,
    so cached evaluations of the wrapper never mix with the plain model's.
    """

    def __init__(self, model: nn.Module, scale: float):
        super().__init__()
        if not scale > 0 or not math.isfinite(scale):
            raise InvalidSpecError(f"logit scale must be a positive finite number, got {scale}")
        self.model = model
        self.register_buffer("scale", torch.tensor(float(scale), device=model_device(model)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x) * self.scale


def _pct(mask_or_fraction) -> float:
    if isinstance(mask_or_fraction, torch.Tensor):
        return 100.0 * float(mask_or_fraction.float().mean()) if mask_or_fraction.numel() else 0.0
    return 100.0 * float(mask_or_fraction)


def _exceeds(count: int, n: int, pp: float, min_count: int) -> bool:
    """A gap of `count` examples out of `n` is more than `pp` percentage points and spans ≥ `min_count` examples."""
    return n > 0 and 100.0 * count / n > pp and count >= min_count


def _eps_label(eps: float) -> str:
    value = eps * 255
    return f"{value:.0f}/255" if abs(value - round(value)) < 1e-6 else f"{eps:.4g}"


@torch.no_grad()
def _logits(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    device = model_device(model)
    was_training = model.training
    model.eval()
    try:
        return torch.cat([model(x[i:i + batch_size].to(device)).float().cpu() for i in range(0, len(x), batch_size)])
    finally:
        model.train(was_training)


class AttackRunner:
    """Per-example robustness of one (model, x, y) under many attacks, each computed once.

    Standalone attacks (``among=None``) run on the whole set through `robustness.evaluate` with the registered
    specs, so they share the run store's cache with the robustness notebook. ``among`` restricts an attack to the
    examples of a mask (e.g. PGD-20's survivors); the returned mask is then ``among & survived``. ``scale`` attacks
    `ScaledLogits(model, scale)`. Every L∞-ball result at the audit's ε is remembered for the overall worst case.
    """

    def __init__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, budget: AuditBudget,
                 cache_dir: str | Path | None = None, batch_size: int = 256, progress: bool = False):
        self.model, self.x, self.y = model, x.detach().cpu(), y.detach().cpu()
        self.budget, self.cache_dir, self.batch_size, self.progress = budget, cache_dir, batch_size, progress
        self.logits = _logits(model, self.x, batch_size)
        self.clean = self.logits.argmax(dim=1) == self.y
        self.num_classes = self.logits.shape[1]
        self.attack_seconds = 0.0
        self.linf: dict[str, torch.Tensor] = {}       # name → per-example robust mask, L∞ ε = budget.eps
        self._memo: dict[tuple, torch.Tensor] = {}
        self._scaled: dict[float, nn.Module] = {}

    @property
    def n(self) -> int:
        return len(self.y)

    def _model(self, scale: float) -> nn.Module:
        if scale == 1.0:
            return self.model
        if scale not in self._scaled:
            self._scaled[scale] = ScaledLogits(self.model, scale)
        return self._scaled[scale]

    def robust(self, spec: AttackSpec, among: torch.Tensor | None = None, scale: float = 1.0,
               label: str | None = None) -> torch.Tensor:
        from .robustness import evaluate

        subset = torch.ones(self.n, dtype=torch.bool) if among is None else among.cpu().bool()
        key = (spec.key(), float(scale), hashlib.sha256(subset.numpy().tobytes()).hexdigest())
        if key not in self._memo:
            out = torch.zeros(self.n, dtype=torch.bool)
            idx = subset.nonzero().squeeze(1)
            if idx.numel():
                x, y = (self.x, self.y) if among is None else (self.x[idx], self.y[idx])
                result = evaluate(self._model(scale), x, y, spec, cache_dir=self.cache_dir,
                                  batch_size=self.batch_size, progress=self.progress)
                out[idx] = result.correct
                self.attack_seconds += result.elapsed_s
            self._memo[key] = out & self.clean
        mask = self._memo[key]
        if label is not None and spec.norm == "Linf" and math.isclose(spec.eps, self.budget.eps):
            self.linf[label] = mask
        return mask

    # the attacks every check shares (the profile's budgets, so notebook 02's cache is reused)
    def spec(self, name: str) -> AttackSpec:
        b = self.budget
        pgd = dict(eps=b.eps, alpha=b.alpha, steps=b.pgd_steps, seed=b.seed)
        overrides = {"pgd20": pgd, "cw-linf": pgd,
                     "apgd-ce": dict(eps=b.eps, steps=b.apgd_steps, seed=b.seed),
                     "apgd-dlr": dict(eps=b.eps, steps=b.apgd_steps, seed=b.seed),
                     "square": dict(eps=b.eps, n_queries=b.square_queries, p_init=b.square_p_init, seed=b.seed)}
        return attack_spec(name, **overrides[name])

    def named(self, name: str) -> torch.Tensor:
        return self.robust(self.spec(name), label=name)

    def white_box(self) -> torch.Tensor:
        """Per-example best of the paper's white-box attacks: PGD-20 and APGD-CE (both on CE at τ = 1)."""
        return self.named("pgd20") & self.named("apgd-ce")

    def pgd_spec(self, eps: float, loss: str = "ce", steps: int | None = None, restarts: int = 1,
                 random_start: bool = True, alpha: float | None = None, name: str | None = None) -> AttackSpec:
        b = self.budget
        steps = b.pgd_steps if steps is None else steps
        alpha = b.alpha * eps / b.eps if alpha is None else alpha
        name = name or f"audit-pgd{steps}-{loss}"
        return AttackSpec(name, "pgd", norm="Linf", eps=eps, alpha=alpha, steps=steps, restarts=restarts,
                          random_start=random_start, loss=loss, seed=b.seed)

    def rescale_candidates(self, tau_train: float) -> dict[str, float]:
        """Logit scales to try for "PGD on rescaled logits": 1/τ_train (the training-time logits z/τ) and 1/std(z)
        (unit-spread logits, whatever the model was trained at); scales within 1% of 1 or of each other dropped."""
        std = float(self.logits.std()) if self.logits.numel() > 1 else 1.0
        candidates = {"1/tau": 1.0 / float(tau_train), "1/std": 1.0 / std if std > 0 else 1.0}
        kept: dict[str, float] = {}
        for label, scale in candidates.items():
            if not math.isfinite(scale) or scale <= 0 or abs(math.log(scale)) < 0.01:
                continue
            if any(abs(math.log(scale / other)) < 0.01 for other in kept.values()):
                continue
            kept[label] = scale
        return kept


# --- gradient statistics ---------------------------------------------------------------------------------------------

def gradient_statistics(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 256) -> dict:
    """Per example (CPU tensors): ``max_abs_grad`` = max_i |∂CE(z, y)/∂x_i| at τ = 1 in float32, ``margin`` =
    z_y − max_{j≠y} z_j, ``max_prob`` = max softmax(z) in float32, ``saturated`` = (max_prob == 1.0), ``correct``,
    and ``logits``."""
    from .attacks import margin_loss

    device = model_device(model)
    parts: dict[str, list[torch.Tensor]] = {k: [] for k in ("max_abs_grad", "margin", "max_prob", "logits")}
    with frozen_eval(model), torch.enable_grad():
        for start in range(0, len(x), batch_size):
            xb = x[start:start + batch_size].detach().to(device).float().requires_grad_(True)
            yb = y[start:start + batch_size].to(device)
            logits = model(xb).float()
            grad, = torch.autograd.grad(F.cross_entropy(logits, yb, reduction="sum"), xb)
            logits = logits.detach()
            parts["max_abs_grad"].append(grad.abs().flatten(1).amax(dim=1).cpu())
            parts["margin"].append((-margin_loss(logits, yb)).cpu())
            parts["max_prob"].append(torch.softmax(logits, dim=1).amax(dim=1).cpu())
            parts["logits"].append(logits.cpu())
    out = {k: torch.cat(v) if v else torch.zeros(0) for k, v in parts.items()}
    out["saturated"] = out["max_prob"] == 1.0
    out["correct"] = out["logits"].argmax(dim=1) == y.cpu() if len(y) else torch.zeros(0, dtype=torch.bool)
    return out


# --- the checks -----------------------------------------------------------------------------------------------------

def _runner(model, x, y, budget, cache_dir, runner) -> AttackRunner:
    if runner is not None:
        return runner
    budget = resolve_budget(budget)
    n = len(y) if budget.n is None else min(budget.n, len(y))
    return AttackRunner(model, x[:n], y[:n], budget, cache_dir)


def check_black_box(model=None, x=None, y=None, budget="smoke", cache_dir=None, *,
                    runner: AttackRunner | None = None) -> CheckResult:
    """Square (gradient-free) vs the per-example best of PGD-20 and APGD-CE; AutoAttack's 0.2 pp rule."""
    r = _runner(model, x, y, budget, cache_dir, runner)
    b = r.budget
    pgd, apgd, square = r.named("pgd20"), r.named("apgd-ce"), r.named("square")
    white = pgd & apgd
    extra = white & ~square
    count = int(extra.sum())
    flagged = _exceeds(count, r.n, b.black_box_pp, 1)
    numbers = {"clean": _pct(r.clean), "pgd20": _pct(pgd), "apgd_ce": _pct(apgd), "white_box": _pct(white),
               "square": _pct(square), "square_only_broken": count, "square_only_broken_pp": _pct(count / r.n),
               "worst": _pct(white & square), "square_queries": b.square_queries, "threshold_pp": b.black_box_pp}
    explanation = (f"Square ({b.square_queries} queries, no gradients) leaves {_pct(square):.1f}% correct vs "
                   f"{_pct(white):.1f}% for the best of PGD-20/APGD-CE; it breaks {count} example(s) "
                   f"({_pct(count / r.n):.1f} pp) the gradient attacks could not"
                   + (f" — more than AutoAttack's {b.black_box_pp} pp: the gradients, not the model, failed."
                      if flagged else f" (AutoAttack flags > {b.black_box_pp} pp)."))
    return CheckResult("black-box", flagged, numbers, explanation)


def check_scale_invariant(model=None, x=None, y=None, tau_train: float = 1.0, budget="smoke", cache_dir=None, *,
                          runner: AttackRunner | None = None) -> CheckResult:
    """APGD-DLR, PGD on the C&W margin and PGD-20 on rescaled logits vs PGD-20 on CE at τ = 1."""
    r = _runner(model, x, y, budget, cache_dir, runner)
    b = r.budget
    pgd = r.named("pgd20")
    attacks = {"apgd_dlr": r.named("apgd-dlr"), "cw_linf": r.named("cw-linf")}
    scales = r.rescale_candidates(tau_train)
    rescaled = {}
    for label, scale in scales.items():
        mask = r.robust(r.pgd_spec(b.eps, name="pgd20-rescaled"), scale=scale, label=f"pgd20 z*{label}")
        rescaled[label] = mask
        attacks[f"pgd20_rescaled_{label.replace('/', '_')}"] = mask
    if rescaled:
        attacks["pgd20_rescaled_best"] = worst_case(rescaled)
    gaps = {name: int(mask.sum()) - int(pgd.sum()) for name, mask in attacks.items()}   # < 0: below PGD-20
    below = {name: -gap for name, gap in gaps.items() if _exceeds(-gap, r.n, b.scale_pp, b.min_examples)}
    flagged = bool(below)
    best_name = min(attacks, key=lambda k: int(attacks[k].sum()))
    numbers = {"clean": _pct(r.clean), "pgd20": _pct(pgd), **{k: _pct(v) for k, v in attacks.items()},
               "scales": scales, "gap_pp": {k: _pct(-g / r.n) for k, g in gaps.items()},
               "only_broken_by_scale_invariant": int((pgd & ~worst_case(attacks)).sum()),
               "best_attack": best_name, "threshold_pp": b.scale_pp}
    scale_text = ", ".join(f"{k} = {v:.3g}" for k, v in scales.items()) or "none (scale ≈ 1)"
    explanation = (f"PGD-20 on CE leaves {_pct(pgd):.1f}%; scale-invariant attacks leave "
                   f"APGD-DLR {_pct(attacks['apgd_dlr']):.1f}%, C&W margin {_pct(attacks['cw_linf']):.1f}%"
                   + (f", CE on rescaled logits {_pct(attacks['pgd20_rescaled_best']):.1f}% (scales {scale_text})"
                      if rescaled else "")
                   + (f" — {', '.join(below)} ≥ {b.scale_pp} pp below PGD-20: the CE gradient at τ = 1 is what "
                      f"stops PGD, not the model." if flagged else
                      f"; none is {b.scale_pp} pp below PGD-20."))
    return CheckResult("scale-invariant", flagged, numbers, explanation)


def check_vanishing_gradients(model=None, x=None, y=None, budget="smoke", cache_dir=None, *,
                              runner: AttackRunner | None = None, stats: dict | None = None) -> CheckResult:
    """Zero / vanishing input gradients of CE at τ = 1, softmax saturation and logit margins (clean, correct)."""
    r = _runner(model, x, y, budget, cache_dir, runner)
    b = r.budget
    s = stats if stats is not None else gradient_statistics(r.model, r.x, r.y, r.batch_size)
    ok = s["correct"]
    m = int(ok.sum())
    grad, margin = s["max_abs_grad"][ok], s["margin"][ok]
    zero, tiny, saturated = int((grad == 0).sum()), int((grad < b.tiny_grad).sum()), int(s["saturated"][ok].sum())
    frac = (lambda k: 100.0 * k / m if m else 0.0)
    q = (lambda p: float(margin.quantile(p)) if m else float("nan"))
    flagged = _exceeds(tiny, m, b.vanishing_pp, 1)
    logits = s["logits"]
    numbers = {"n_correct": m, "zero_grad_pct": frac(zero), "vanishing_grad_pct": frac(tiny),
               "saturated_pct": frac(saturated), "zero_grad": zero, "vanishing_grad": tiny, "saturated": saturated,
               "margin_median": q(0.5), "margin_p10": q(0.1), "margin_p90": q(0.9),
               "margin_ge_saturation_pct": frac(int((margin >= SATURATION_MARGIN).sum())),
               "margin_ge_underflow_pct": frac(int((margin >= UNDERFLOW_MARGIN).sum())),
               "saturation_margin": SATURATION_MARGIN, "underflow_margin": UNDERFLOW_MARGIN,
               "logit_std": float(logits.std()) if logits.numel() > 1 else float("nan"),
               "logit_norm_median": float(logits.norm(dim=1).median()) if len(logits) else float("nan"),
               "grad_log10_median": float(grad.clamp_min(1e-45).log10().median()) if m else float("nan"),
               "tiny_grad": b.tiny_grad, "threshold_pp": b.vanishing_pp}
    explanation = (f"Of {m} correctly classified inputs, {frac(zero):.1f}% have an exactly zero CE input gradient "
                   f"and {frac(tiny):.1f}% a vanishing one (max |∂L/∂x| < {b.tiny_grad:g}); softmax is saturated "
                   f"(max p == 1.0 in float32) on {frac(saturated):.1f}%, median logit margin {q(0.5):.3g} "
                   f"(saturation beyond ≈ {SATURATION_MARGIN:.1f}, underflow beyond ≈ {UNDERFLOW_MARGIN:.0f})"
                   + (" — gradient-based attacks cannot start from these inputs." if flagged else "."))
    return CheckResult("vanishing-gradients", flagged, numbers, explanation)


def robustness_curve(runner: AttackRunner, loss: str, tau_train: float = 1.0) -> dict[float, torch.Tensor]:
    """ε → per-example robust mask for PGD (budget.pgd_steps, step alpha·ε/eps) on `loss` ("ce", "margin", "dlr",
    or "rescaled": CE on z/τ_train, or on z/std(z) when τ_train = 1). Each ε only attacks the examples that survived
    the previous one (a smaller ball lies inside a larger one), so the curve is monotone and cheap."""
    b = runner.budget
    scale, pgd_loss = 1.0, loss
    if loss == "rescaled":
        scales = runner.rescale_candidates(tau_train)
        scale = scales.get("1/tau", scales.get("1/std", 1.0))
        pgd_loss = "ce"
    curve, alive = {}, runner.clean
    for eps in b.eps_grid:
        if math.isclose(eps, b.eps):      # the audit's ε: the standalone attacks the other checks run (shared)
            if loss in ("ce", "margin"):
                alive = runner.named({"ce": "pgd20", "margin": "cw-linf"}[loss])
            else:
                name = "pgd20-rescaled" if loss == "rescaled" else f"audit-curve-{loss}"
                alive = runner.robust(runner.pgd_spec(eps, loss=pgd_loss, name=name), scale=scale,
                                      label=f"pgd20 {loss}" if loss == "dlr" else None)
        else:
            alive = runner.robust(runner.pgd_spec(eps, loss=pgd_loss, name=f"audit-curve-{loss}"), among=alive,
                                  scale=scale)
        curve[eps] = alive
    return curve


def check_eps_sweep(model=None, x=None, y=None, tau_train: float = 1.0, budget="smoke", cache_dir=None, *,
                    runner: AttackRunner | None = None) -> CheckResult:
    """Accuracy must fall to chance as ε grows, and an unbounded attack (ε = 1) must leave ≈ 0% correct."""
    r = _runner(model, x, y, budget, cache_dir, runner)
    b = r.budget
    curves = {loss: robustness_curve(r, loss, tau_train) for loss in b.curve_losses}
    unbounded_spec = r.pgd_spec(1.0, steps=b.unbounded_steps, random_start=False, alpha=2.5 / b.unbounded_steps,
                                name="audit-unbounded-ce")
    # An example CE-PGD already broke inside a smaller ball is broken in the whole box too: attack the rest only.
    unbounded = r.robust(unbounded_spec, among=curves["ce"][b.eps_grid[-1]] if "ce" in curves else None)
    chance = 100.0 / r.num_classes
    largest = b.eps_grid[-1]
    ce_last = _pct(curves["ce"][largest]) if "ce" in curves else float("nan")
    stuck = "ce" in curves and ce_last > chance
    loose = _exceeds(int(unbounded.sum()), r.n, b.unbounded_pp, 1)
    flagged = stuck or loose
    numbers = {"curves": {loss: {_eps_label(e): _pct(m) for e, m in curve.items()} for loss, curve in curves.items()},
               "unbounded_ce": _pct(unbounded), "unbounded_steps": b.unbounded_steps, "chance": chance,
               "largest_eps": _eps_label(largest), "ce_at_largest_eps": ce_last, "threshold_pp": b.unbounded_pp}
    parts = [f"PGD on CE leaves {ce_last:.1f}% at ε = {_eps_label(largest)} (chance {chance:.0f}%)"
             if "ce" in curves else "no CE curve"]
    others = [f"{loss} {_pct(curve[largest]):.1f}%" for loss, curve in curves.items() if loss != "ce"]
    if others:
        parts.append("scale-invariant losses at that ε: " + ", ".join(others))
    parts.append(f"the unbounded CE attack (ε = 1, {b.unbounded_steps} steps from the clean image) leaves "
                 f"{_pct(unbounded):.1f}%")
    reasons = ([f"CE-PGD stays above chance at ε = {_eps_label(largest)}"] if stuck else []) + \
              ([f"the unbounded attack leaves > {b.unbounded_pp}% correct"] if loose else [])
    explanation = "; ".join(parts) + (f" — {' and '.join(reasons)}: an attack that works must reach ~0%."
                                      if flagged else ".")
    return CheckResult("eps-sweep", flagged, numbers, explanation)


def check_more_iterations(model=None, x=None, y=None, budget="smoke", cache_dir=None, *,
                          runner: AttackRunner | None = None) -> CheckResult:
    """PGD-20 vs more steps and more restarts (on PGD-20's survivors: the per-example worst case)."""
    r = _runner(model, x, y, budget, cache_dir, runner)
    b = r.budget
    pgd = r.named("pgd20")
    longer = r.robust(r.pgd_spec(b.eps, steps=b.long_steps, name=f"audit-pgd{b.long_steps}"), among=pgd,
                      label=f"pgd{b.long_steps}")
    restarts = r.robust(r.pgd_spec(b.eps, restarts=b.restarts, name=f"audit-pgd{b.pgd_steps}x{b.restarts}"),
                        among=pgd, label=f"pgd{b.pgd_steps}x{b.restarts}")
    worst = longer & restarts
    drop = int(pgd.sum()) - int(worst.sum())
    flagged = _exceeds(drop, r.n, b.iterations_pp, b.min_examples)
    numbers = {"pgd20": _pct(pgd), f"pgd{b.long_steps}": _pct(longer), f"pgd20x{b.restarts}": _pct(restarts),
               "worst": _pct(worst), "drop_pp": _pct(drop / r.n), "long_steps": b.long_steps,
               "restarts": b.restarts, "threshold_pp": b.iterations_pp}
    explanation = (f"PGD-20 leaves {_pct(pgd):.1f}%; {b.long_steps} steps {_pct(longer):.1f}%, {b.restarts} restarts "
                   f"{_pct(restarts):.1f}% (worst case {_pct(worst):.1f}%, −{_pct(drop / r.n):.1f} pp)"
                   + (" — PGD-20 had not converged." if flagged else
                      ": more effort changes little (which zero gradients would also explain)."))
    return CheckResult("more-iterations", flagged, numbers, explanation)


_TRANSFER_MEMO: dict[tuple, torch.Tensor] = {}


def transfer_examples(reference_model: nn.Module, x: torch.Tensor, y: torch.Tensor, spec: AttackSpec,
                      batch_size: int = 256) -> torch.Tensor:
    """Adversarial images crafted on `reference_model` (batched, seeds as in `robustness.evaluate`), memoised in
    this process by (model weights, data, spec): auditing every τ against one reference crafts them once."""
    from .robustness import batch_seed, data_fingerprint, model_fingerprint

    key = (model_fingerprint(reference_model), data_fingerprint(x, y), spec.key(), batch_size)
    if key not in _TRANSFER_MEMO:
        parts = []
        for start in range(0, len(x), batch_size):
            batch_spec = dataclasses.replace(spec, seed=batch_seed(spec.seed, start))
            parts.append(run_attack(reference_model, x[start:start + batch_size], y[start:start + batch_size],
                                    batch_spec).cpu())
        if len(_TRANSFER_MEMO) >= 8:
            _TRANSFER_MEMO.pop(next(iter(_TRANSFER_MEMO)))
        _TRANSFER_MEMO[key] = torch.cat(parts) if parts else x.clone()
    return _TRANSFER_MEMO[key]


def check_transfer(model=None, x=None, y=None, reference_model: nn.Module | None = None, budget="smoke",
                   cache_dir=None, *, runner: AttackRunner | None = None, note: str | None = None) -> CheckResult:
    """PGD-20 examples crafted on the reference (τ = 1) model, applied to the audited model, vs white-box."""
    r = _runner(model, x, y, budget, cache_dir, runner)
    b = r.budget
    if reference_model is None:
        why = note or "no reference model given"
        return CheckResult("transfer", False, {"skipped": True, "reason": why}, f"Skipped: {why}.")
    spec = r.spec("pgd20")
    x_adv = transfer_examples(reference_model, r.x, r.y, spec, r.batch_size)
    transfer = (_logits(r.model, x_adv, r.batch_size).argmax(dim=1) == r.y) & r.clean
    r.linf["transfer"] = transfer
    source = (_logits(reference_model, x_adv, r.batch_size).argmax(dim=1) == r.y)
    white = r.white_box()
    gap = int(white.sum()) - int(transfer.sum())
    flagged = _exceeds(gap, r.n, b.transfer_pp, b.min_examples)
    numbers = {"transfer": _pct(transfer), "white_box": _pct(white), "reference_under_own_attack": _pct(source),
               "reference_clean": _pct(_logits(reference_model, r.x, r.batch_size).argmax(dim=1) == r.y),
               "transfer_only_broken": int((white & ~transfer).sum()), "gap_pp": _pct(gap / r.n),
               "threshold_pp": b.transfer_pp}
    explanation = (f"PGD-20 examples crafted on the reference model leave {_pct(transfer):.1f}% correct on this "
                   f"model vs {_pct(white):.1f}% under its own white-box attacks"
                   + (f" — transfer beats white-box by {_pct(gap / r.n):.1f} pp: this model's own gradients "
                      f"mislead the attack." if flagged else "."))
    return CheckResult("transfer", flagged, numbers, explanation)


# --- the audit ------------------------------------------------------------------------------------------------------

def audit(model: nn.Module, x: torch.Tensor, y: torch.Tensor, tau_train: float,
          reference_model: nn.Module | None = None, budget="smoke", cache_dir: str | Path | None = None,
          checks: Iterable[str] | None = None, batch_size: int = 256, progress: bool = False,
          transfer_note: str | None = None) -> AuditReport:
    """Run the gradient-masking checks (`CHECKS`, or the subset `checks`) on the first ``budget.n`` examples.

    `tau_train` is the temperature the model was trained at (for "PGD on z/τ"). The verdict is
    "no masking detected" or "gradient masking suspected: <flagged checks>".
    """
    started = time.perf_counter()
    budget = resolve_budget(budget)
    checks = tuple(CHECKS if checks is None else checks)
    unknown = set(checks) - set(CHECKS)
    if unknown:
        raise InvalidSpecError(f"unknown check(s) {sorted(unknown)}; choose from {', '.join(CHECKS)}")
    n = len(y) if budget.n is None else min(budget.n, len(y))
    runner = AttackRunner(model, x[:n], y[:n], budget, cache_dir, batch_size=batch_size, progress=progress)
    runs = {
        "black-box": lambda: check_black_box(runner=runner),
        "scale-invariant": lambda: check_scale_invariant(tau_train=tau_train, runner=runner),
        "vanishing-gradients": lambda: check_vanishing_gradients(runner=runner),
        "eps-sweep": lambda: check_eps_sweep(tau_train=tau_train, runner=runner),
        "more-iterations": lambda: check_more_iterations(runner=runner),
        "transfer": lambda: check_transfer(reference_model=reference_model, runner=runner, note=transfer_note),
    }
    results, timings = [], {}
    for name in CHECKS:
        if name in checks:
            began = time.perf_counter()
            results.append(runs[name]())
            timings[name] = time.perf_counter() - began
    accuracy = {"clean": _pct(runner.clean), **{k: _pct(v) for k, v in runner.linf.items()}}
    if runner.linf:
        accuracy["worst_case"] = _pct(worst_case(dict(runner.linf)))
    report = AuditReport(results, float(tau_train), n, budget, accuracy, time.perf_counter() - started)
    report.notes.append("seconds per check: " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))
    report.notes.append("accuracy: % of the audited examples correct under each attack at L∞ ε = "
                        f"{_eps_label(budget.eps)}; worst_case is the per-example AND over all of them")
    return report


def reference_for(run):
    """The stored τ = 1 run with the audited run's other settings, or (None, reason)."""
    from .runs import Run

    if float(run.spec.tau) == 1.0:
        return None, "the audited model is the τ = 1 reference itself"
    reference = Run(run.spec.replace(tau=1.0), run.root)
    if not reference.is_complete:
        return None, f"no stored τ = 1 run with the same settings ({reference.dir.name}); train it to enable transfer"
    return reference, None


def audit_run(run, profile, n_eval: int | None = None, data_dir=None, device=None, reference_run=None,
              checks: Iterable[str] | None = None, progress: bool = False) -> dict:
    """Audit one stored run on its profile's eval set (JSON-able dict: the CLI's ``audit`` command).

    The reference for the transfer check is `reference_run`, else the stored τ = 1 run with the same settings; if
    there is none, transfer is skipped with a note. Attack results are cached under ``run.eval_dir``.
    """
    from .experiments import eval_set
    from .profiles import get_profile

    profile = get_profile(profile) if isinstance(profile, str) else profile
    budget = AuditBudget.from_profile(profile, **({"n": n_eval} if n_eval is not None else {}))
    device = device or "cpu"
    model = run.load_model(device)
    x, y = eval_set(profile, run, budget.n, data_dir)
    note = None
    if reference_run is None:
        reference_run, note = reference_for(run)
    reference_model = reference_run.load_model(device) if reference_run is not None else None
    report = audit(model, x, y, float(run.spec.tau), reference_model=reference_model, budget=budget,
                   cache_dir=run.eval_dir, checks=checks, progress=progress, transfer_note=note)
    out = report.to_dict()
    out["reference_run"] = str(reference_run.dir) if reference_run is not None else None
    return out
