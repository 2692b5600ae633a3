"""What a trained model depends on: the run spec, hashed into the run's identity.

Two equal specs are the same run; `RunSpec.key()` hashes the canonical JSON of every field.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from .data import check_dataset_name, check_image_size
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
        _require(_int_in(self.epochs, 1, MAX_EPOCHS), f"epochs must be an integer in 1..{MAX_EPOCHS}, got {self.epochs!r}")
        _require(_int_in(self.batch_size, 1, MAX_BATCH),
                 f"batch_size must be an integer in 1..{MAX_BATCH}, got {self.batch_size!r}")
        _require(_real_in(self.lr, 0, MAX_LR) and self.lr > 0,
                 f"learning rate must be a finite number in (0, {MAX_LR:g}], got {self.lr!r}")
        _require(_real_in(self.momentum, 0, 1) and self.momentum < 1,
                 f"momentum must be a number in [0, 1), got {self.momentum!r}")
        _require(_real_in(self.weight_decay, 0, 1), f"weight_decay must be a number in [0, 1], got {self.weight_decay!r}")
        _require(self.optimizer in OPTIMIZERS, f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        _require(self.schedule in SCHEDULES, f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        _require(self.augment in AUGMENTATIONS, f"augment must be one of {AUGMENTATIONS}, got {self.augment!r}")
        check_image_size(self.image_size)
        _require(self.n_train is None or _int_in(self.n_train, 1, MAX_EXAMPLES),
                 f"n_train must be an integer in 1..{MAX_EXAMPLES} (or unset for all), got {self.n_train!r}")
        _require(_int_in(self.seed, 0, MAX_SEED), f"seed must be an integer in 0..{MAX_SEED}, got {self.seed!r}")
        _require(isinstance(self.init, str), f"init must be a string, got {self.init!r}")
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


MAX_EPOCHS, MAX_BATCH, MAX_EXAMPLES = 100_000, 1 << 16, 1 << 31
MAX_SEED = 2 ** 32 - 1   # epoch seeds are seed · 1_000_003 + epoch and must fit torch's 64-bit seed
MAX_LR = 1e6


def _int_in(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _real_in(value: Any, low: float, high: float) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
        and low <= value <= high


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise InvalidSpecError(message)
