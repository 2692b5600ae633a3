"""The `AttackRunner`: everything a check needs about one audited model, and every attack on it computed once."""
from __future__ import annotations

import hashlib
import math
import time
from pathlib import Path

import torch
import torch.nn as nn

from ..attacks import AttackSpec, attack_spec, pgd
from ..errors import InvalidSpecError
from ..inference import batched_logits, model_device
from ..robustness import batch_seed, evaluate
from .budget import BudgetLike, resolve_budget


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


class AttackRunner:
    """One audited model on its first ``budget.n`` examples, and its per-example robustness under many attacks, each
    computed once.

    It carries what the checks need: the model, data, budget, the temperature the model was trained at
    (`tau_train`, for "PGD on z/τ"), the reference model of the transfer check (or `transfer_note`: why there is
    none) and the cache folder. Standalone attacks (``among=None``) run on the whole set through
    `robustness.evaluate` with the registered specs, so they share the run store's cache with the robustness
    notebook. ``among`` restricts an attack to the examples of a mask (e.g. PGD-20's survivors); the returned mask is
    then ``among & survived``. ``scale`` attacks `ScaledLogits(model, scale)`. Targeted attacks (`targeted`) call
    `tempscale.attacks.pgd` directly. Every L∞-ball result at the audit's ε that gets a label is remembered in
    `linf`, for the overall worst case.
    """

    def __init__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                 budget: BudgetLike = "smoke",
                 cache_dir: str | Path | None = None, *, tau_train: float = 1.0,
                 reference_model: nn.Module | None = None, transfer_note: str | None = None,
                 batch_size: int = 256, progress: bool = False):
        self.budget = resolve_budget(budget)
        n = len(y) if self.budget.n is None else min(self.budget.n, len(y))
        self.model, self.x, self.y = model, x[:n].detach().cpu(), y[:n].detach().cpu()
        self.tau_train = float(tau_train)
        self.reference_model, self.transfer_note = reference_model, transfer_note
        self.cache_dir, self.batch_size, self.progress = cache_dir, batch_size, progress
        self.logits = batched_logits(model, self.x, batch_size)
        self.clean = self.logits.argmax(dim=1) == self.y
        self.num_classes = self.logits.shape[1]
        self.attack_seconds = 0.0
        self.linf: dict[str, torch.Tensor] = {}       # label → per-example robust mask, L∞ ε = budget.eps
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
        """Per-example mask: correct on the clean input and after `spec` (on the examples of `among` only)."""
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

    def spec(self, name: str) -> AttackSpec:
        """A registered attack with the budget's ε, steps and queries (the profile's budgets, so the robustness
        notebook's cached results are reused)."""
        b = self.budget
        pgd = dict(eps=b.eps, alpha=b.alpha, steps=b.pgd_steps, seed=b.seed)
        overrides = {"pgd20": pgd, "cw_linf": pgd,
                     "apgd_ce": dict(eps=b.eps, steps=b.apgd_steps, seed=b.seed),
                     "apgd_dlr": dict(eps=b.eps, steps=b.apgd_steps, seed=b.seed),
                     "square": dict(eps=b.eps, n_queries=b.square_queries, p_init=b.square_p_init, seed=b.seed)}
        return attack_spec(name, **overrides[name])

    def named(self, name: str) -> torch.Tensor:
        return self.robust(self.spec(name), label=name)

    def paper_attacks(self) -> torch.Tensor:
        """Per-example best of the paper's white-box attacks on CE at τ = 1: PGD-20 and APGD-CE."""
        return self.named("pgd20") & self.named("apgd_ce")

    def white_box(self) -> torch.Tensor:
        """Per-example best of every white-box attack, the set AutoAttack's Square rule assumes: PGD-20, APGD-CE,
        APGD-DLR, C&W-L∞ (margin) and the targeted attacks (`targeted`, on the examples the others left)."""
        untargeted = self.paper_attacks() & self.named("apgd_dlr") & self.named("cw_linf")
        return untargeted & self.targeted(untargeted)

    def target_classes(self) -> torch.Tensor:
        """Per example, the `budget.targets` wrong classes with the largest clean logits, most likely first."""
        k = min(self.budget.targets, self.num_classes - 1)
        wrong = self.logits.masked_fill(nn.functional.one_hot(self.y, self.num_classes).bool(), float("-inf"))
        return wrong.argsort(dim=1, descending=True)[:, :k]

    def targeted(self, among: torch.Tensor) -> torch.Tensor:
        """Per-example mask: correct after targeted PGD on the C&W margin (PGD-20's ε, step and steps, random start)
        towards each of `target_classes`, run on the examples of `among` only (AutoAttack's APGD-T likewise takes
        the top wrong classes). Batch seeds follow `robustness.evaluate`; memoised per process, not cached on disk
        (an `AttackSpec` cannot name per-example targets)."""
        b, alive = self.budget, among.cpu().bool() & self.clean
        key = ("targeted", b.targets, b.eps, b.alpha, b.pgd_steps, b.seed,
               hashlib.sha256(alive.numpy().tobytes()).hexdigest())
        if key in self._memo:
            return self._memo[key]
        began, device, targets = time.perf_counter(), model_device(self.model), self.target_classes()
        for rank in range(targets.shape[1]):
            idx = alive.nonzero().squeeze(1)
            for start in range(0, idx.numel(), self.batch_size):
                rows = idx[start:start + self.batch_size]
                x_adv = pgd(self.model, self.x[rows].to(device), self.y[rows].to(device), eps=b.eps, alpha=b.alpha,
                            steps=b.pgd_steps, loss="margin", random_start=True, targeted=True,
                            target=targets[rows, rank].to(device), seed=batch_seed(b.seed + rank + 1, start))
                alive[rows] = batched_logits(self.model, x_adv, self.batch_size).argmax(dim=1) == self.y[rows]
        self.attack_seconds += time.perf_counter() - began
        self._memo[key] = alive
        return alive

    def pgd_spec(self, eps: float, loss: str = "ce", steps: int | None = None, restarts: int = 1,
                 random_start: bool = True, alpha: float | None = None, name: str | None = None) -> AttackSpec:
        b = self.budget
        steps = b.pgd_steps if steps is None else steps
        alpha = b.alpha * eps / b.eps if alpha is None else alpha
        name = name or f"audit-pgd{steps}-{loss}"
        return AttackSpec(name, "pgd", norm="Linf", eps=eps, alpha=alpha, steps=steps, restarts=restarts,
                          random_start=random_start, loss=loss, seed=b.seed)

    def rescale_candidates(self) -> dict[str, float]:
        """Logit scales to try for "PGD on rescaled logits": 1/τ_train (the training-time logits z/τ) and 1/std(z)
        (unit-spread logits, whatever the model was trained at); scales within 1% of 1 or of each other dropped."""
        std = float(self.logits.std()) if self.logits.numel() > 1 else 1.0
        candidates = {"1/tau": 1.0 / self.tau_train, "1/std": 1.0 / std if std > 0 else 1.0}
        kept: dict[str, float] = {}
        for label, scale in candidates.items():
            if not math.isfinite(scale) or scale <= 0 or abs(math.log(scale)) < 0.01:
                continue
            if any(abs(math.log(scale / other)) < 0.01 for other in kept.values()):
                continue
            kept[label] = scale
        return kept
