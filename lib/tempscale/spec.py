"""What a trained model depends on: the run spec, hashed into the run's identity.

Two equal specs are the same run; `RunSpec.key()` hashes the canonical JSON of every field.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from .data import check_dataset_name
from .errors import InvalidSpecError
from .losses import check_tau
from .methods.base import METHODS
from .models import check_arch

OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("cosine", "constant")
AUGMENTATIONS = ("none", "crop", "crop+flip")


@dataclass(frozen=True)
class RunSpec:
    """Everything a trained model depends on. Two equal specs are the same run."""

    dataset: str = "digits"
    arch: str = "resnet8"
    tau: float = 1.0
    seed: int = 0
    method: str = "standard"        # a name in tempscale.methods.METHODS ("standard": τ-CE)
    epochs: int = 30
    batch_size: int = 128
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "cosine"
    augment: str = "crop+flip"
    image_size: int | None = None   # None: the dataset's native size
    n_train: int | None = None      # None: the whole training split
    init: str = "scratch"           # "scratch", "pretrained" (resolved before hashing) or "file:<digest>"
    method_args: dict = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "tau", float(self.tau) if isinstance(self.tau, (int, float)) else self.tau)
        object.__setattr__(self, "method_args", dict(sorted(self.method_args.items())))

    def validate(self) -> "RunSpec":
        """Raise InvalidSpecError on anything a run cannot be trained from, method_args included."""
        check_dataset_name(self.dataset)
        check_arch(self.arch)
        check_tau(self.tau)
        _require(self.method in METHODS, f"unknown method {self.method!r}; choose one of {', '.join(METHODS)}")
        METHODS[self.method].check(self.method_args)
        _require(isinstance(self.epochs, int) and self.epochs >= 1, f"epochs must be an integer ≥ 1, got {self.epochs}")
        _require(self.batch_size >= 1, f"batch_size must be ≥ 1, got {self.batch_size}")
        _require(self.lr > 0, f"learning rate must be > 0, got {self.lr}")
        _require(self.optimizer in OPTIMIZERS, f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        _require(self.schedule in SCHEDULES, f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        _require(self.augment in AUGMENTATIONS, f"augment must be one of {AUGMENTATIONS}, got {self.augment!r}")
        _require(self.n_train is None or self.n_train >= 1, f"n_train must be ≥ 1, got {self.n_train}")
        _require(self.seed >= 0, f"seed must be ≥ 0, got {self.seed}")
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def key(self) -> str:
        """Stable hash of the canonical JSON of the spec."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def folder_name(self) -> str:
        dataset = re.sub(r"[^A-Za-z0-9_.]+", "_", self.dataset)
        return f"{dataset}-{self.arch}-{self.method}-tau{self.tau:g}-seed{self.seed}-{self.key()}"

    def replace(self, **changes) -> "RunSpec":
        return replace(self, **changes)

    @classmethod
    def from_dict(cls, d: dict) -> "RunSpec":
        return cls(**d)


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise InvalidSpecError(message)
