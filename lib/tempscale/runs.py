"""The run store: a run spec hashes to a folder that holds everything the run produced.

    runs/<dataset>-<arch>-<method>-tau<τ>-seed<s>-<hash>/
        spec.json        the full RunSpec (what was asked)
        checkpoint.pt    last finished epoch: weights, optimiser, scheduler, history (resume point)
        model.pt         final weights (state_dict)
        history.json     per-epoch train loss / test errors (Fig. 4)
        result.json      clean accuracy, divergence, provenance; its presence marks the run complete
        evals/           cached evaluations (attacks, corruptions), keyed by their own specs

Every file is written atomically (temp file + rename) and every weight file has a `.sha256` sidecar, so a truncated
or corrupt file is detected and never used. `torch.load(..., weights_only=True)` everywhere: files are never unpickled.
`get_or_train(spec)` trains once under a file lock; later calls, notebooks and the CLI reuse the stored run.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from .errors import CorruptCheckpointError, InvalidSpecError

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
    method: str = "standard"        # "standard" (τ-CE); other methods register in tempscale.train.METHODS
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
        from .data import check_dataset_name
        from .losses import check_tau
        from .models import check_arch
        from .train import METHODS

        check_dataset_name(self.dataset)
        check_arch(self.arch)
        check_tau(self.tau)
        _require(self.method in METHODS, f"unknown method {self.method!r}; choose one of {', '.join(METHODS)}")
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


def default_runs_dir() -> Path:
    from .paths import runs_dir

    return runs_dir()


# --- atomic, verified files ------------------------------------------------------------------------------------

def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode())


def save_verified(obj: Any, path: Path) -> None:
    """torch.save atomically, then a sha256 sidecar: a file without a matching sidecar is never trusted."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    data = buffer.getvalue()
    atomic_write_bytes(path, data)
    atomic_write_bytes(_sidecar(path), hashlib.sha256(data).hexdigest().encode())


def load_verified(path: Path, map_location: str | torch.device = "cpu") -> Any:
    """Load a file written by `save_verified`; raise CorruptCheckpointError if truncated, altered or unreadable."""
    advice = f"delete {path} (and {_sidecar(path).name}) to recompute it"
    try:
        data = path.read_bytes()
        expected = _sidecar(path).read_text().strip()
    except FileNotFoundError as err:
        raise CorruptCheckpointError(f"{err.filename} is missing; {advice}") from None
    if hashlib.sha256(data).hexdigest() != expected:
        raise CorruptCheckpointError(f"{path} does not match its checksum (truncated or altered); {advice}")
    try:
        return torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means the file is unusable
        raise CorruptCheckpointError(f"{path} cannot be read ({type(err).__name__}: {err}); {advice}") from None


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


# --- runs ------------------------------------------------------------------------------------------------------

class Run:
    """A run folder: read access to what a training run stored."""

    def __init__(self, spec: RunSpec, runs_dir: str | Path | None = None):
        self.spec = spec
        self.root = Path(runs_dir) if runs_dir is not None else default_runs_dir()
        self.dir = self.root / spec.folder_name()

    spec_path = property(lambda self: self.dir / "spec.json")
    checkpoint_path = property(lambda self: self.dir / "checkpoint.pt")
    model_path = property(lambda self: self.dir / "model.pt")
    history_path = property(lambda self: self.dir / "history.json")
    result_path = property(lambda self: self.dir / "result.json")
    eval_dir = property(lambda self: self.dir / "evals")
    lock_path = property(lambda self: self.root / f".{self.dir.name}.lock")

    @property
    def is_complete(self) -> bool:
        return self.result_path.exists() and self.model_path.exists()

    @property
    def result(self) -> dict:
        return json.loads(self.result_path.read_text())

    @property
    def history(self) -> list[dict]:
        return json.loads(self.history_path.read_text()) if self.history_path.exists() else []

    def load_model(self, device: str | torch.device = "cpu") -> torch.nn.Module:
        """The trained model in eval mode, its weights verified against their checksum."""
        from .train import build_for_spec

        model = build_for_spec(self.spec, load_weights=False)
        model.load_state_dict(load_verified(self.model_path, map_location=device))
        return model.to(device).eval()

    def __repr__(self) -> str:
        return f"Run({self.dir})"

    @classmethod
    def from_dir(cls, path: str | Path) -> "Run":
        path = Path(path)
        return cls(RunSpec.from_dict(json.loads((path / "spec.json").read_text())), path.parent)


def list_runs(runs_dir: str | Path | None = None) -> list[dict]:
    """One summary row per run folder (complete or not)."""
    root = Path(runs_dir) if runs_dir is not None else default_runs_dir()
    rows = []
    for spec_file in sorted(root.glob("*/spec.json")):
        run = Run.from_dir(spec_file.parent)
        row = {"run": run.dir.name, **{k: getattr(run.spec, k) for k in ("dataset", "arch", "method", "tau", "seed")}}
        if run.is_complete:
            r = run.result
            row.update(status="diverged" if r.get("diverged") else "complete", clean_acc=r.get("clean_acc"),
                       epochs_done=r.get("epochs_done"), elapsed_s=r.get("provenance", {}).get("elapsed_s"))
        else:
            row.update(status=f"partial ({len(run.history)}/{run.spec.epochs} epochs)")
        rows.append(row)
    return rows


def get_or_train(spec: RunSpec, runs_dir: str | Path | None = None, data_dir: str | Path | None = None,
                 device: str | None = None, progress: bool = True, download: bool = False) -> Run:
    """Return the stored run for `spec`, training (or resuming) it first if needed.

    A file lock makes a second process wait for the first instead of training the same run twice.
    """
    from filelock import FileLock

    from .models import resolve_init
    from .train import train_run

    spec = spec.replace(init=resolve_init(spec.arch, spec.init)).validate()
    run = Run(spec, runs_dir)
    if run.is_complete:
        return run
    run.root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(run.lock_path)):
        if not run.is_complete:  # another process may have finished it while we waited
            train_run(run, data_dir=data_dir, device=device, progress=progress, download=download)
    return run
