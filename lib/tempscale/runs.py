"""The run store: a run spec hashes to a folder that holds everything the run produced.

    runs/<dataset>-<arch>-<method>-tau<τ>-seed<s>-<hash>/
        spec.json        the full RunSpec (what was asked)
        checkpoint.pt    last finished epoch: weights, optimiser, scheduler, history (resume point)
        model.pt         final weights (state_dict)
        history.json     per-epoch train loss / test errors (Fig. 4)
        result.json      clean accuracy, divergence, provenance; its presence marks the run complete
        evals/           cached evaluations (attacks, corruptions), keyed by their own specs

Every file is written atomically and every weight file has a `.sha256` sidecar (`tempscale.io`), so a truncated or
corrupt file is detected and never used. `get_or_train(spec)` trains once under a file lock (`tempscale.train.fit`
does the training); later calls, notebooks and the CLI reuse the stored run.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from filelock import FileLock

from .data import load_dataset
from .errors import InvalidSpecError
from .io import atomic_write_json, load_verified, save_verified
from .methods.base import set_stored_model_loader
from .models import resolve_init
from .paths import runs_dir as default_runs_dir
from .spec import RunSpec
from .train import build_for_spec, fit


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

    def load_model(self, device: str | torch.device = "cpu") -> nn.Module:
        """The trained model in eval mode, its weights verified against their checksum."""
        model = build_for_spec(self.spec)
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


# --- training into the store --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RunCheckpoint:
    """`fit`'s per-epoch state in the run folder: checkpoint.pt (verified) and history.json beside it."""

    run: Run

    def load(self, device: torch.device) -> dict[str, Any] | None:
        path = self.run.checkpoint_path
        return load_verified(path, map_location=device) if path.exists() else None

    def save(self, state: dict[str, Any]) -> None:
        save_verified(state, self.run.checkpoint_path)
        atomic_write_json(self.run.history_path, state["history"])


def train_run(run: Run, data_dir: str | Path | None = None, device: str | None = None, progress: bool = True,
              download: bool = False, stop_after: int | None = None) -> dict:
    """Train (or resume) `run` to completion and write its files; returns its result. `stop_after=k` interrupts
    after epoch k (StopTraining)."""
    spec = run.spec
    bundle = load_dataset(spec.dataset, spec.image_size, data_dir, download=download)
    run.dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(run.spec_path, spec.to_dict())
    trained = fit(spec, bundle, device, checkpoint=RunCheckpoint(run), progress=progress, stop_after=stop_after)
    save_verified({k: v.detach().cpu() for k, v in trained.model.state_dict().items()}, run.model_path)
    atomic_write_json(run.history_path, trained.history)
    atomic_write_json(run.result_path, trained.summary)
    return trained.summary


def get_or_train(spec: RunSpec, runs_dir: str | Path | None = None, data_dir: str | Path | None = None,
                 device: str | None = None, progress: bool = True, download: bool = False) -> Run:
    """Return the stored run for `spec`, training (or resuming) it first if needed.

    A file lock makes a second process wait for the first instead of training the same run twice.
    """
    spec = spec.replace(init=resolve_init(spec.arch, spec.init)).validate()
    run = Run(spec, runs_dir)
    if run.is_complete:
        return run
    run.root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(run.lock_path)):
        if not run.is_complete:  # another process may have finished it while we waited
            train_run(run, data_dir=data_dir, device=device, progress=progress, download=download)
    return run


def load_finished_model(run_dir: Path, device: str | torch.device = "cpu") -> nn.Module:
    """The model of the finished run in `run_dir` (methods that learn from a stored run open it through this)."""
    if not (run_dir / "spec.json").exists():
        raise InvalidSpecError(f"run {run_dir} does not exist; train it first")
    run = Run.from_dir(run_dir)
    if not run.is_complete:
        raise InvalidSpecError(f"run {run_dir} is not finished; train it first")
    return run.load_model(device)


set_stored_model_loader(load_finished_model)

__all__ = ["Run", "RunCheckpoint", "get_or_train", "list_runs", "train_run", "load_finished_model"]
