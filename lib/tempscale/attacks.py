"""Adversarial attacks with every budget explicit, on the model's raw logits (τ = 1).

The paper trains with CE(z/τ, y) but evaluates and attacks the plain logits z (Sec. V-A), so nothing here knows τ;
`pgd(..., logit_scale=1/τ)` exists only for audits that want to attack the training-time loss on purpose.

Named attacks (`ATTACKS`, `attack_spec(name, **overrides)`) carry the paper's budgets as defaults:

=================  ==========================================================================================
``clean``          no attack: plain prediction
``pgd20``          L∞ PGD, ε 8/255, step 2/255, 20 steps, uniform random start, cross-entropy
``cw_linf``        the paper's "C&W" column: the same PGD on the C&W margin loss  max_{j≠y} z_j − z_y
``cw_l2``          C&W-L2 (torchattacks' CW, margin fixed) with Carlini & Wagner's binary search over c: 9 searches
                   from c 0.01, Adam lr 0.01, 1000 steps each, κ 0; minimum-L2 adversarial per example, scored
                   at the L2 radius ``eps`` 0.5 (RobustBench's L2 threat model) and by its median L2 distance
``apgd_ce``        APGD on CE, L∞ 8/255, 100 steps, 1 restart (torchattacks defaults to 10 steps: overridden)
``apgd_dlr``       APGD on the DLR loss, same budget
``square``         Square, L∞ 8/255, 5000 queries, p_init 0.8, no schedule rescaling (the autoattack settings)
``autoattack``     the official AutoAttack (`pyautoattack`, Croce & Hein's code): ``version="standard"`` (APGD-CE,
                   APGD-T, FAB-T, Square; 100 iterations, 5000 queries, 9 target classes) when the spec's budget
                   is the standard one, else ``version="custom"`` with the same four attacks *constructed* with the
                   spec's budget; ``backend="torchattacks"`` runs the fallback composed from torchattacks' parts
``pgd20_targeted`` pgd20 towards a seeded random wrong class (`default_targets`), CE
=================  ==========================================================================================

Conventions every attack follows, so numbers from different attacks can be combined per example (`worst_case`):

* the clean point x (δ = 0) is a candidate: an example misclassified without attack is never counted robust;
* our PGD keeps, per example, the first iterate that is misclassified (best-so-far), so more steps or restarts
  can only lower accuracy, never raise it; examples never fooled get the final iterate (for logit analyses);
* outputs lie in [0, 1] and, for L∞ attacks, inside the ε-ball; C&W-L2 is a minimum-norm attack: its output may
  lie outside the L2 radius ``eps``, and an example counts as robust when it is not fooled within that radius;
* every run is deterministic under `spec.seed` and leaves the caller's random state, the model's train/eval
  modes and its parameters' ``requires_grad`` exactly as they were.

torchattacks 3.5.1 is used where it is right; these defects were found in its source and are worked around here:

* ``CW.f`` builds the "other" and "true" logits as ``max((1 − onehot)·z)`` / ``max(onehot·z)``: the masked entries
  become 0, not −∞, so whenever the logits involved are negative the margin is wrong (often exactly 0, which also
  kills the gradient). `_MarginFixedCW` overrides ``f`` with `margin_loss`, which masks with −∞.
* ``CW.inverse_tanh_space`` maps pixels that are exactly 0 or 1 to w = ∓∞, so those pixels can never move
  (a large share of real images, e.g. digit backgrounds). Fixed by shrinking into the open interval as Carlini's
  reference code does (×(1 − 1e-6)).
* ``CW`` has no binary search over c (documented by torchattacks). A fixed c measures the logit scale, not
  robustness (one linear model with one decision boundary scored 0.89 / 0.89 / 0.73 / 0.00 at logit scales
  0.1 / 1 / 10 / 100 with c = 0.01), so `_run_cw_l2` runs torchattacks' optimisation once per binary-search step with
  a per-example c (`_MarginFixedCW.example_c`), updating c as Carlini's reference ``l2_attack.py`` does. The
  thesis' protocol (one fixed c, no radius) is ``attack_spec("cw_l2", binary_steps=1, eps=1e9)``.
* ``APGD``/``APGDT``/``FAB`` default to 10 iterations (the original uses 100); ``Square`` defaults to
  ``resc_schedule=True`` (autoattack uses False); its ``AutoAttack`` inherits those short budgets. All budgets are
  therefore set explicitly from the spec.
* every torchattacks attack calls ``torch.manual_seed`` on the global generator; `_attack_context` forks the RNG.

The official AutoAttack (`pyautoattack` 0.2.0, the code of fra31/auto-attack with ``logging`` for prints) is the
default backend of ``autoattack``. Its APGD computes its step-size checkpoints (``n_iter_2``, ``n_iter_min``,
``size_decr``) in the constructor, so a smaller budget must construct new attacks (`official_adversary`); setting
``n_iter`` afterwards would keep the 100-step checkpoints (``n_iter_2`` = 22 at 10 steps: the step never halves).
Its flags (``checks.py``: zero gradients, Square success after the white-box attacks, randomness, dynamic models,
probability outputs, too many target classes) are re-issued as `AutoAttackFlagWarning`; two side effects of
``checks.check_dynamic`` are undone here: it counts traced calls in a module-level dict that it never resets (after one
dynamic model every later model would be flagged) and it ends with ``sys.settrace(None)`` (which would switch off a
coverage tracer or debugger). The torchattacks composition stays as the named fallback
``attack_spec("autoattack", backend="torchattacks")``; `tests/test_official_autoattack.py` compares it, and our
APGD-CE, APGD-DLR and Square, with the official code per example.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import sys
import warnings
from dataclasses import dataclass
from importlib import metadata
from typing import Callable, Iterator, Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F

from .errors import InvalidSpecError
from .inference import frozen_eval, model_device
from .vocab import Attack, parse

METHODS = ("clean", "pgd", "cw_l2", "apgd", "square", "autoattack")
NORMS = ("Linf", "L2", "none")
PGD_LOSSES = ("ce", "margin", "dlr")
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

_ALLOWED_NORMS = {"clean": ("none",), "pgd": ("Linf",), "cw_l2": ("L2",), "apgd": ("Linf", "L2"),
                  "square": ("Linf", "L2"), "autoattack": ("Linf", "L2")}
_ALLOWED_LOSSES = {"clean": ("none",), "pgd": PGD_LOSSES, "cw_l2": ("cw",), "apgd": ("ce", "dlr"),
                   "square": ("margin",), "autoattack": ("none",)}
AUTOATTACK_BACKENDS = ("official", "torchattacks")
# The standard AutoAttack's attacks and budget (pyautoattack's `AutoAttack._set_version("standard")`, L∞ and L2).
STANDARD_AUTOATTACK = dict(attacks=("apgd-ce", "apgd-t", "fab-t", "square"), steps=100, n_queries=5000,
                           p_init=0.8, restarts=1, n_targets=9)


class AutoAttackFlagWarning(UserWarning):
    """A flag raised by the official AutoAttack's own checks (``pyautoattack.checks``) during a run."""


# --- specs ------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AttackSpec:
    """One attack with its whole budget. Fields that do not apply to `method` keep their neutral value (0/False).

    `name` labels results; `method` chooses the algorithm. Numbers are normalised to float/int on construction so
    that ``eps=0`` and ``eps=0.0`` give the same `key()`. For C&W-L2 ``eps`` is the L2 radius it is scored at.
    """

    name: str
    method: str
    norm: str = "none"
    eps: float = 0.0
    alpha: float = 0.0          # PGD step size
    steps: int = 0              # PGD / APGD / AutoAttack iterations, C&W optimiser steps
    restarts: int = 1
    random_start: bool = False
    loss: str = "none"
    targeted: bool = False
    n_queries: int = 0          # Square (and the Square stage of AutoAttack)
    p_init: float = 0.0         # Square's initial fraction of pixels changed
    c: float = 0.0              # C&W trade-off constant: the binary search's starting value
    binary_steps: int = 0       # C&W binary-search steps over c (Carlini & Wagner: 9)
    kappa: float = 0.0          # C&W confidence κ
    lr: float = 0.0             # C&W Adam learning rate
    backend: str = ""           # AutoAttack only: "official" (pyautoattack) or "torchattacks" (the fallback)
    seed: int = 0

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            caster = {"float": float, "int": int, "bool": bool, "str": str}[field.type]
            if field.type in ("int", "float") and isinstance(value, bool):
                raise InvalidSpecError(f"{field.name} must be a number, got {value!r}")
            if field.type == "bool" and value not in (True, False):
                raise InvalidSpecError(f"{field.name} must be True or False, got {value!r}")
            object.__setattr__(self, field.name, caster(value))
        _validate(self)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def key(self) -> str:
        """Short stable hash of the canonical JSON (sorted keys): the spec's identity. The code that runs it is
        fingerprinted separately (`attack_code_fingerprint`), beside it in the evaluation cache's key."""
        payload = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(payload.encode()).hexdigest()[:12]


def _validate(spec: AttackSpec) -> None:
    def require(ok: bool, message: str) -> None:
        if not ok:
            raise InvalidSpecError(f"attack {spec.name!r}: {message}")

    require(spec.method in METHODS, f"unknown method {spec.method!r}; choose one of {', '.join(METHODS)}")
    require(spec.norm in _ALLOWED_NORMS[spec.method],
            f"norm {spec.norm!r} is not available for {spec.method}; use {' or '.join(_ALLOWED_NORMS[spec.method])}")
    require(spec.loss in _ALLOWED_LOSSES[spec.method],
            f"loss {spec.loss!r} is not available for {spec.method}; use {' or '.join(_ALLOWED_LOSSES[spec.method])}")
    for name in ("eps", "alpha", "steps", "n_queries", "c", "binary_steps", "kappa", "lr", "seed"):
        require(getattr(spec, name) >= 0, f"{name} must be >= 0, got {getattr(spec, name)}")
    require(spec.restarts >= 1, f"restarts must be >= 1, got {spec.restarts}")
    require(not spec.targeted or spec.method == "pgd", "only pgd supports targeted=True")
    require(spec.restarts == 1 or spec.random_start or spec.method != "pgd",
            "restarts > 1 without random_start would repeat the same run")
    require(spec.method != "square" or 0 < spec.p_init <= 1, f"p_init must be in (0, 1], got {spec.p_init}")
    require(spec.method != "autoattack" or 0 < spec.p_init <= 1, f"p_init must be in (0, 1], got {spec.p_init}")
    backends = AUTOATTACK_BACKENDS if spec.method == "autoattack" else ("",)
    require(spec.backend in backends, f"backend {spec.backend!r} is not available for {spec.method}; "
                                      f"use {' or '.join(map(repr, backends))}")
    if spec.method == "cw_l2":
        require(spec.eps > 0, f"eps (the L2 radius C&W-L2 is scored at) must be > 0, got {spec.eps}")
        require(spec.binary_steps >= 1 and spec.c > 0, f"C&W-L2 needs binary_steps >= 1 and an initial c > 0, "
                                                      f"got {spec.binary_steps} and {spec.c}")


_LINF = dict(norm="Linf", eps=8 / 255)
_PGD20 = dict(method="pgd", **_LINF, alpha=2 / 255, steps=20, random_start=True)

ATTACKS: dict[str, AttackSpec] = {spec.name: spec for spec in (
    AttackSpec("clean", "clean"),
    AttackSpec("pgd20", **_PGD20, loss="ce"),
    AttackSpec("cw_linf", **_PGD20, loss="margin"),
    AttackSpec("cw_l2", "cw_l2", norm="L2", eps=0.5, loss="cw", steps=1000, lr=0.01, c=0.01, binary_steps=9,
               kappa=0.0),
    AttackSpec("apgd_ce", "apgd", **_LINF, steps=100, loss="ce"),
    AttackSpec("apgd_dlr", "apgd", **_LINF, steps=100, loss="dlr"),
    AttackSpec("square", "square", **_LINF, n_queries=5000, p_init=0.8, loss="margin"),
    AttackSpec("autoattack", "autoattack", **_LINF, steps=100, n_queries=5000, p_init=0.8, backend="official"),
    AttackSpec("pgd20_targeted", **_PGD20, loss="ce", targeted=True),
)}


def attack_names() -> list[str]:
    return list(ATTACKS)


def attack_spec(name: str, **overrides) -> AttackSpec:
    """The registered attack `name` with the paper's budget, any field replaced by `overrides` (validated)."""
    name = parse(Attack, name, "attack")
    unknown = set(overrides) - {f.name for f in dataclasses.fields(AttackSpec)}
    if unknown:
        raise InvalidSpecError(f"unknown attack setting(s) {', '.join(sorted(unknown))} for {name!r}; "
                               f"settable: {', '.join(f.name for f in dataclasses.fields(AttackSpec))}")
    return dataclasses.replace(ATTACKS[name], **overrides)


def attack_backend(spec: AttackSpec) -> str:
    """Which implementation runs `spec`: recorded with every result (and part of the cache identity)."""
    if spec.method == "clean":
        return "none (clean prediction)"
    if spec.method == "pgd":
        return "tempscale.attacks.pgd"
    if spec.method == "autoattack" and spec.backend == "official":
        version = ("version='standard'" if _standard_budget(spec) else
                   f"version='custom': APGD-CE, APGD-T, FAB-T, Square constructed with {spec.steps} iterations, "
                   f"{spec.n_queries} queries, p_init {spec.p_init:g}")
        return f"pyautoattack {metadata.version('pyautoattack')} (official AutoAttack, {version})"
    note = {"cw_l2": " (CW with fixed margin and tanh inverse, binary search over c)",
            "autoattack": " (APGD-CE, APGD-T, FAB-T, Square composed with explicit budgets)"}.get(spec.method, "")
    return f"torchattacks {metadata.version('torchattacks')}{note}"


def _standard_budget(spec: AttackSpec, num_classes: int = 10) -> bool:
    """Whether `spec` is the standard AutoAttack (on a model with `num_classes`: 9 targets need ≥ 10 classes)."""
    s = STANDARD_AUTOATTACK
    return (spec.norm in ("Linf", "L2") and spec.steps == s["steps"] and spec.n_queries == s["n_queries"]
            and spec.p_init == s["p_init"] and spec.restarts == s["restarts"] and num_classes > s["n_targets"])


# --- losses -----------------------------------------------------------------------------------------------------

def margin_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """C&W margin per example: max_{j≠y} z_j − z_y (> 0 iff misclassified).

    The true class is masked with −∞, not multiplied by a 0/1 mask: with a 0 mask the "largest other logit" would
    be max(0, …), wrong whenever all other logits are negative (torchattacks' CW does exactly that).
    """
    true = logits.gather(1, y[:, None]).squeeze(1)
    others = logits.masked_fill(F.one_hot(y, logits.shape[1]).bool(), float("-inf")).amax(dim=1)
    return others - true


def dlr_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Difference of logits ratio (Croce & Hein 2020), to maximise: −(z_y − max_{j≠y} z_j) / (z_π1 − z_π3)."""
    if logits.shape[1] < 3:
        raise InvalidSpecError("the DLR loss needs at least 3 classes")
    top = logits.sort(dim=1, descending=True).values
    return margin_loss(logits, y) / (top[:, 0] - top[:, 2] + 1e-12)


def _ce_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits, y, reduction="none")


_LOSSES: dict[str, LossFn] = {"ce": _ce_loss, "margin": margin_loss, "dlr": dlr_loss}


def _resolve_loss(loss: str | LossFn) -> LossFn:
    if callable(loss):
        return loss
    if loss not in _LOSSES:
        raise InvalidSpecError(f"unknown PGD loss {loss!r}; choose one of {', '.join(_LOSSES)} or pass a callable")
    return _LOSSES[loss]


# --- running attacks safely ---------------------------------------------------------------------------------------

@contextlib.contextmanager
def _attack_context(model: nn.Module) -> Iterator[None]:
    """`frozen_eval` plus gradients on and a forked RNG; everything restored afterwards.

    Frozen parameters: torchattacks' CW calls ``backward()``, which would otherwise fill the parameters' ``.grad``.
    Forked RNG: torchattacks reseeds the global generators.
    """
    cuda_devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    with frozen_eval(model), torch.random.fork_rng(devices=cuda_devices), torch.enable_grad():
        yield


@torch.no_grad()
def _predict(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return model(x).argmax(dim=1)


def _check_inputs(x: torch.Tensor, y: torch.Tensor) -> None:
    if x.ndim != 4 or y.ndim != 1 or len(x) != len(y):
        raise InvalidSpecError(f"expected images (B, C, H, W) and labels (B,), "
                               f"got {tuple(x.shape)} and {tuple(y.shape)}")
    if len(x) and (x.min() < 0 or x.max() > 1):
        raise InvalidSpecError("images must lie in [0, 1]; input normalisation belongs inside the model")


def _seeded_generator(*parts: int) -> torch.Generator:
    """A CPU generator seeded from several integers (seed, restart, …); CPU so results match across devices."""
    digest = hashlib.sha256(json.dumps(parts).encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") >> 1)


def default_targets(y: torch.Tensor, num_classes: int, seed: int) -> torch.Tensor:
    """Target classes for targeted attacks: per example a uniformly random class ≠ y, from a generator seeded by
    `seed` (so the same seed and batch give the same targets on any device)."""
    offset = torch.randint(1, num_classes, (len(y),), generator=_seeded_generator(seed, 7))
    return (y.cpu() + offset).remainder(num_classes).to(y.device)


# --- PGD ----------------------------------------------------------------------------------------------------------

def pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float = 8 / 255, alpha: float = 2 / 255,
        steps: int = 20, loss: str | LossFn = "ce", random_start: bool = True, restarts: int = 1,
        targeted: bool = False, target: torch.Tensor | None = None, logit_scale: float = 1.0,
        seed: int = 0) -> torch.Tensor:
    """L∞ PGD (Madry et al.) returning adversarial images in [0, 1] within ‖x_adv − x‖∞ ≤ eps.

    `y` are always the true labels. Untargeted: ascend loss(logit_scale·z, y). Targeted: descend
    loss(logit_scale·z, target), with `target` defaulting to `default_targets(y, K, seed)`. `loss` is "ce",
    "margin" (C&W), "dlr" or any callable (logits, labels) -> per-example loss to maximise.

    Per example the result is the first iterate (over restarts and steps, x itself included) that is misclassified
    (targeted: the first that reaches the target, failing that the first misclassified one), otherwise the last
    iterate of the last restart. Hence, for a fixed seed, more steps or restarts never make an example robust again.
    Restarts after the first only run on examples not yet misclassified. Random starts are drawn on
    the CPU from a generator seeded by (seed, restart), so the caller's RNG is untouched.
    """
    _check_inputs(x, y)
    if eps < 0 or alpha < 0 or steps < 0 or restarts < 1:
        raise InvalidSpecError(f"pgd needs eps, alpha, steps >= 0 and restarts >= 1 "
                               f"(got eps={eps}, alpha={alpha}, steps={steps}, restarts={restarts})")
    loss_fn = _resolve_loss(loss)
    with _attack_context(model):
        x, y = x.detach(), y.to(x.device)
        logits = model(x).detach()
        if targeted and target is None:
            target = default_targets(y, logits.shape[1], seed)
        labels = target.to(x.device) if targeted else y
        sign = -1.0 if targeted else 1.0

        def objective(z: torch.Tensor, lab: torch.Tensor) -> torch.Tensor:
            return sign * loss_fn(z * logit_scale, lab)

        best = x.clone()
        fooled = logits.argmax(dim=1) != y
        for restart in range(restarts):
            todo = (~fooled).nonzero().squeeze(1)
            if todo.numel() == 0:
                break
            start = x + _uniform_noise(x, eps, seed, restart) if random_start else x
            start = start[todo].clamp(0, 1)
            x_run, found = _pgd_run(model, x[todo], y[todo], labels[todo], start, eps, alpha, steps, objective,
                                    targeted)
            best[todo] = x_run
            fooled[todo] = found
    return best


def _uniform_noise(x: torch.Tensor, eps: float, seed: int, restart: int) -> torch.Tensor:
    noise = torch.empty(x.shape, dtype=x.dtype).uniform_(-eps, eps, generator=_seeded_generator(seed, restart))
    return noise.to(x.device)


def _project(x_adv: torch.Tensor, x: torch.Tensor, eps: float) -> torch.Tensor:
    return torch.min(torch.max(x_adv, x - eps), x + eps).clamp(0, 1)


def _pgd_run(model, x, y_true, labels, x_adv, eps, alpha, steps, objective, targeted):
    """One PGD run from `x_adv`; returns (kept iterate, misclassified-at-some-iterate mask).

    Kept per example: the first iterate classified as the target (targeted runs), else the first misclassified
    one, else the last. The prediction comes from the forward pass PGD does anyway: best-so-far costs one forward.
    An example whose kept iterate can no longer change (untargeted: misclassified once; targeted: on its target
    once) leaves the batch, as AutoAttack's attacks drop broken points: the rest is attacked alone, which is
    where most of the time goes once a weak model is broken in a few steps.
    """
    found = torch.zeros(len(x), dtype=torch.bool, device=x.device)
    hit = torch.zeros_like(found)
    kept = x_adv.clone()
    x_adv = x_adv.detach().clone()
    for step in range(steps + 1):
        last = step == steps
        active = (~(hit if targeted else found)).nonzero().squeeze(1)
        if active.numel() == 0:
            break
        x_active = x_adv[active].requires_grad_(not last)
        with torch.set_grad_enabled(not last):
            logits = model(x_active)
        pred = logits.detach().argmax(dim=1)
        wrong = pred != y_true[active]
        on_target = wrong & (pred == labels[active]) if targeted else torch.zeros_like(wrong)
        take = (wrong & ~found[active] & ~hit[active]) | (on_target & ~hit[active])
        kept[active[take]] = x_active.detach()[take]
        found[active] |= wrong
        hit[active] |= on_target
        if last:
            break
        grad, = torch.autograd.grad(objective(logits, labels[active]).sum(), x_active)
        x_adv[active] = _project(x_active.detach() + alpha * grad.sign(), x[active], eps)
    kept[~found] = x_adv[~found]
    return kept, found


# --- torchattacks-backed attacks ---------------------------------------------------------------------------------

def _torchattacks():
    import torchattacks  # imported lazily: it is slow to import and most callers only need pgd
    return torchattacks


def _margin_fixed_cw_class():
    """torchattacks.CW with the two defects fixed (see the module docstring); built lazily (lazy import)."""
    base = _torchattacks().CW

    class _MarginFixedCW(base):
        """torchattacks' C&W-L2 optimisation for one c, with the margin and tanh-inverse fixed.

        Like torchattacks' CW it keeps, per example, the smallest-L2 misclassified iterate and returns x where none
        was found; it stops early when the total cost rises between checks (every steps // 10 steps). With
        `example_c` set (a tensor, one c per example, and ``c = 1``) each example's margin term is weighted by its
        own c: what the binary search in `_run_cw_l2` needs. Adam updates each pixel on its own, so the examples of
        a batch only share the early stop.
        """

        example_c: torch.Tensor | None = None

        def f(self, outputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            margin = margin_loss(outputs, labels)       # max_{j≠label} z_j − z_label
            term = torch.clamp(margin if self.targeted else -margin, min=-self.kappa)
            return term if self.example_c is None else term * self.example_c

        def inverse_tanh_space(self, x: torch.Tensor) -> torch.Tensor:
            return torch.atanh((x * 2 - 1).clamp(-1, 1) * (1 - 1e-6))

    return _MarginFixedCW


_CW_NO_BOUND = 1e10     # Carlini's "no upper bound on c found yet" (l2_attack.py: upper_bound = 1e10, test < 1e9)


def _run_cw_l2(model, x, y, spec):
    """C&W-L2 with Carlini & Wagner's binary search over c, per example, as in their ``l2_attack.py``.

    Each of the `spec.binary_steps` searches runs torchattacks' optimisation (`spec.steps` Adam steps from x) with
    every example's current c. A search that fools an example sets c's upper bound, one that does not its lower
    bound; c moves to the middle, or ×10 while no upper bound is known. Per example the result is the smallest-L2
    misclassified image over all searches (x itself when the clean image is already misclassified), x if none.
    """
    attack = _margin_fixed_cw_class()(model, c=1.0, kappa=spec.kappa, steps=spec.steps, lr=spec.lr)
    n = len(x)
    const = torch.full((n,), spec.c, device=x.device)
    lower, upper = torch.zeros_like(const), torch.full_like(const, _CW_NO_BOUND)
    best = x.clone()
    best_l2 = torch.full_like(const, math.inf)
    best_l2[_predict(model, x) != y] = 0.0                  # δ = 0 is a candidate: no search can beat it
    for _ in range(spec.binary_steps):
        attack.example_c = const
        candidate = attack(x, y).detach()
        fooled = _predict(model, candidate) != y
        l2 = (candidate - x).flatten(1).norm(dim=1)
        better = fooled & (l2 < best_l2)
        best[better], best_l2[better] = candidate[better], l2[better]
        upper = torch.where(fooled, torch.minimum(upper, const), upper)
        lower = torch.where(fooled, lower, torch.maximum(lower, const))
        bounded = upper < _CW_NO_BOUND / 10
        const = torch.where(bounded, (lower + upper) / 2, const * 10)
    return best


def _run_apgd(model, x, y, spec):
    attack = _torchattacks().APGD(model, norm=spec.norm, eps=spec.eps, steps=spec.steps, n_restarts=spec.restarts,
                                  seed=spec.seed, loss=spec.loss, rho=0.75)
    return attack(x, y)


def _square(model, spec):
    return _torchattacks().Square(model, norm=spec.norm, eps=spec.eps, n_queries=spec.n_queries,
                                  n_restarts=spec.restarts, p_init=spec.p_init, loss="margin",
                                  resc_schedule=False, seed=spec.seed)


def _run_square(model, x, y, spec):
    return _square(model, spec)(x, y)


def _run_autoattack(model, x, y, spec):
    num_classes = model(x[:1]).shape[1]
    if num_classes < 4:
        raise InvalidSpecError("AutoAttack's targeted DLR loss needs at least 4 classes")
    if spec.backend == "torchattacks":
        return _run_composed_autoattack(model, x, y, spec, min(STANDARD_AUTOATTACK["n_targets"], num_classes - 1))
    adversary, flags = official_adversary(model, spec, num_classes, x.device)
    with official_checks_context():
        x_adv, _ = adversary.run_standard_evaluation(x, y, batch_size=len(x))
    for flag in flags.messages:
        warnings.warn(f"official AutoAttack flag: {flag}", AutoAttackFlagWarning, stacklevel=2)
    return x_adv


# --- the official AutoAttack (pyautoattack) -----------------------------------------------------------------------

class OfficialFlagLog:
    """Stands in for the `logging.Logger` pyautoattack writes to: keeps its warnings (the flags of its
    ``checks.py``), drops its progress messages. Used instead of the "auto-attack" logger so that no global logging
    configuration is touched."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def warning(self, msg, *args, **kwargs) -> None:
        self.messages.append(str(msg) % args if args else str(msg))

    def debug(self, *args, **kwargs) -> None:
        pass

    info = debug


@contextlib.contextmanager
def official_checks_context() -> Iterator[None]:
    """Undo the two side effects of ``pyautoattack.checks.check_dynamic``: its module-level call counts (never reset
    by the library, so one dynamic model would flag every later one) start at zero, and the trace function it
    replaces (a coverage tracer, a debugger) is restored afterwards."""
    from pyautoattack import checks

    for name in checks.funcs:
        checks.funcs[name] = 0
    tracer = sys.gettrace()
    try:
        yield
    finally:
        sys.settrace(tracer)


def official_adversary(model: nn.Module, spec: AttackSpec, num_classes: int, device) -> tuple:
    """(pyautoattack `AutoAttack`, its `OfficialFlagLog`) for `spec`.

    ``version="standard"`` when the spec's budget is the standard one (and the model has ≥ 10 classes, for 9
    target classes); otherwise ``version="custom"`` with the standard four attacks constructed with the spec's budget
    (n_iter, queries, p_init, min(9, K − 1) target classes) and the standard version's other settings (one restart,
    ρ = 0.75, no Square schedule rescaling), so APGD's step-size checkpoints are those of `spec.steps` iterations.
    """
    from pyautoattack import AutoAttack
    from pyautoattack.autopgd_base import APGDAttack, APGDAttack_targeted
    from pyautoattack.fab_pt import FABAttack_PT
    from pyautoattack.square import SquareAttack

    log = OfficialFlagLog()
    common = dict(norm=spec.norm, eps=spec.eps, seed=spec.seed, device=device)
    if _standard_budget(spec, num_classes):
        adversary = AutoAttack(model, version="standard", **common)
        adversary.apgd.logger = adversary.apgd_targeted.logger = log
    else:
        targets = min(STANDARD_AUTOATTACK["n_targets"], num_classes - 1)
        adversary = AutoAttack(model, attacks=list(STANDARD_AUTOATTACK["attacks"]), version="custom", **common)
        adversary.apgd = APGDAttack(model, n_iter=spec.steps, n_restarts=1, eot_iter=1, rho=0.75, logger=log,
                                    **common)
        adversary.apgd_targeted = APGDAttack_targeted(model, n_iter=spec.steps, n_restarts=1, eot_iter=1, rho=0.75,
                                                      n_target_classes=targets, logger=log, **common)
        adversary.fab = FABAttack_PT(model, n_iter=spec.steps, n_restarts=1, n_target_classes=targets, **common)
        adversary.square = SquareAttack(model, n_queries=spec.n_queries, p_init=spec.p_init, n_restarts=1,
                                        resc_schedule=False, **common)
    adversary.logger = log
    return adversary, log


def _run_composed_autoattack(model, x, y, spec, n_targets):
    """Standard AutoAttack from torchattacks' parts, budgets as in the original: each attack only sees the examples
    all previous ones failed on, exactly as `pyautoattack.AutoAttack.run_standard_evaluation` does."""
    ta = _torchattacks()
    common = dict(norm=spec.norm, eps=spec.eps, seed=spec.seed)
    attacks = [
        ta.APGD(model, **common, steps=spec.steps, n_restarts=1, loss="ce", rho=0.75),
        ta.APGDT(model, **common, steps=spec.steps, n_restarts=1, n_classes=n_targets + 1, rho=0.75),
        ta.FAB(model, **common, steps=spec.steps, n_restarts=1, multi_targeted=True, n_classes=n_targets + 1),
        _square(model, dataclasses.replace(spec, restarts=1)),
    ]
    x_adv = x.clone()
    robust = _predict(model, x) == y
    for attack in attacks:
        idx = robust.nonzero().squeeze(1)
        if idx.numel() == 0:
            break
        candidate = attack(x[idx], y[idx])
        fooled = _predict(model, candidate) != y[idx]
        x_adv[idx[fooled]] = candidate[fooled]
        robust[idx[fooled]] = False
    return x_adv


def _run_pgd(model, x, y, spec):
    return pgd(model, x, y, eps=spec.eps, alpha=spec.alpha, steps=spec.steps, loss=spec.loss,
               random_start=spec.random_start, restarts=spec.restarts, targeted=spec.targeted, seed=spec.seed)


def _run_clean(model, x, y, spec):
    return x.clone()


class _Dispatch(dict):
    """method → runner. `fingerprint_by_key`: the evaluation cache fingerprints the runner a spec dispatches to
    (`attack_code_roots`), not every runner in the table, so editing one attack does not invalidate the others."""

    fingerprint_by_key = True


_RUNNERS = _Dispatch(clean=_run_clean, pgd=_run_pgd, cw_l2=_run_cw_l2, apgd=_run_apgd, square=_run_square,
                     autoattack=_run_autoattack)


# --- public entry points ------------------------------------------------------------------------------------------

def run_attack(model: nn.Module, x: torch.Tensor, y: torch.Tensor, spec: AttackSpec | str) -> torch.Tensor:
    """Adversarial images for (x, y) under `spec` (a spec or a registered name), on the model's device."""
    spec = attack_spec(spec) if isinstance(spec, str) else spec
    _check_inputs(x, y)
    device = model_device(model)
    x, y = x.detach().to(device), y.to(device)
    if len(x) == 0:
        return x.clone()
    with _attack_context(model):
        return _RUNNERS[spec.method](model, x, y, spec).detach()


def _outcome(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
             spec: AttackSpec) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(still correct, L2 distance or None) per example, on the CPU; see `correct_under`."""
    x_adv = run_attack(model, x, y, spec)
    x, y = x.detach().to(x_adv.device), y.to(x_adv.device)
    with _attack_context(model):
        fooled = _predict(model, x_adv) != y
    if not minimum_norm(spec):
        return (~fooled).cpu(), None
    distance = (x_adv - x).flatten(1).norm(dim=1).masked_fill(~fooled, math.inf).cpu()
    return ~(distance <= spec.eps), distance


def minimum_norm(spec: AttackSpec) -> bool:
    """Whether `spec` is a minimum-norm attack, scored at its radius ``eps`` and reporting per-example distances."""
    return spec.method == "cw_l2"


def correct_under(model: nn.Module, x: torch.Tensor, y: torch.Tensor, spec: AttackSpec | str,
                  with_distance: bool = False):
    """Per example (bool, on the CPU): still classified correctly after the attack (clean: plain prediction).

    For a minimum-norm attack (C&W-L2) "correct" means not fooled within the L2 radius ``spec.eps``. With
    `with_distance` returns (correct, distance): the L2 norm of the perturbation that fools each example (0 for a
    misclassified clean image, ∞ where the attack failed), or None for attacks that are not minimum-norm.
    """
    spec = attack_spec(spec) if isinstance(spec, str) else spec
    correct, distance = _outcome(model, x, y, spec)
    return (correct, distance) if with_distance else correct


def attack_code_roots(spec: AttackSpec) -> list:
    """The functions that run `spec` (`_outcome` and the method's runner), as this module binds them now: the
    evaluation cache fingerprints their source and everything they reach (`robustness.code_fingerprint`)."""
    module = sys.modules[__name__]
    return [module._outcome, module._RUNNERS[spec.method]]



def worst_case(masks: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Per-example AND over attacks: an example is robust only if it survives every attack.

    This is the honest worst case; the minimum of the per-attack accuracies over-states robustness whenever
    different attacks fool different examples.
    """
    if not masks:
        raise InvalidSpecError("worst_case needs at least one attack's per-example results")
    shapes = {name: tuple(mask.shape) for name, mask in masks.items()}
    if len(set(shapes.values())) != 1 or any(mask.dtype != torch.bool for mask in masks.values()):
        raise InvalidSpecError(f"worst_case needs boolean masks of one shape, got {shapes}")
    return torch.stack([mask.cpu() for mask in masks.values()]).all(dim=0)
