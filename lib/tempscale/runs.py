"""The run store: a run spec and the data it trains on hash to a folder that holds everything the run produced.

    runs/<dataset>-<arch>-<method>-tau<τ>-seed<s>-<hash>/
        spec.json           the full RunSpec (what was asked)
        checkpoint.pt       last finished epoch: weights, optimiser, scheduler, history (resume point)
        checkpoint.prev.pt  the epoch before (the fallback when checkpoint.pt is torn or damaged)
        model.pt            final weights (state_dict)
        history.json        per-epoch train loss / test errors (Fig. 4)
        result.json         clean accuracy, divergence, provenance, data fingerprint; marks the run complete
        evals/              cached evaluations (attacks, corruptions), keyed by their own specs

`<hash>` covers the spec and a fingerprint of the training data (`tempscale.data.dataset_fingerprint`), so the same
spec on other data is another run. Every file is written atomically with its checksum (`tempscale.io`: a sidecar for
tensor files, an embedded digest for JSON) and verified on every read. A run is complete only when model.pt and
result.json verify; anything torn or damaged is recomputed from the last good checkpoint, never served and never a
reason to throw finished epochs away. `get_or_train(spec)` trains once under a file lock (`tempscale.train.fit` does
the training); later calls, notebooks and the CLI reuse the stored run.
"""
from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import shutil
import socket
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn as nn
from filelock import Timeout

from .data import dataset_fingerprint, load_dataset
from .errors import CorruptCheckpointError, InvalidSpecError, RunStoreError
from .io import (atomic_write_json, file_mode, is_verified, load_verified, read_json_verified, remove_verified,
                 save_verified, shared_lock, sidecar_path, write_json_verified)
from .methods.base import set_stored_model_loader
from .models import resolve_init
from .paths import runs_dir as default_runs_dir
from .spec import RunSpec
from .train import build_for_spec, fit


def notice(message: str) -> None:
    """One line on stderr for what a user should know but need not act on (waiting, repairing)."""
    print(f"tempscale: {message}", file=sys.stderr, flush=True)


def run_folder_name(spec: RunSpec, data_fingerprint: str) -> str:
    """Readable prefix from the spec, then a hash of the spec's key and the data fingerprint (the run identity)."""
    identity = hashlib.sha256(f"{spec.key()}|data:{data_fingerprint}".encode()).hexdigest()[:12]
    dataset = re.sub(r"[^A-Za-z0-9_.]+", "_", spec.dataset)
    return f"{dataset}-{spec.arch}-{spec.method}-tau{spec.tau:g}-seed{spec.seed}-{identity}"


def check_runs_dir(root: Path) -> Path:
    """`root` created if needed and writable, else a one-line RunStoreError (before any work starts)."""
    advice = "pass --runs-dir (or set TEMPSCALE_RUNS) to a writable folder"
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=root, prefix=".write-test-", delete=True)
        probe.close()
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise RunStoreError(f"run store {root} is not usable ({reason}); {advice}") from None
    return root


class Run:
    """A run folder: read access to what a training run stored, every file verified on read."""

    def __init__(self, spec: RunSpec, runs_dir: str | Path | None = None, data_dir: str | Path | None = None, *,
                 data_fingerprint: str | None = None, folder: str | Path | None = None):
        self.spec = spec
        self.data_dir = data_dir
        if folder is not None:
            self.dir = Path(folder)
            self.root = self.dir.parent
            self.data_fingerprint = data_fingerprint
            return
        self.root = Path(runs_dir) if runs_dir is not None else default_runs_dir()
        self.data_fingerprint = data_fingerprint or dataset_fingerprint(spec.dataset, data_dir)
        self.dir = self.root / run_folder_name(spec, self.data_fingerprint)

    spec_path = property(lambda self: self.dir / "spec.json")
    checkpoint_path = property(lambda self: self.dir / "checkpoint.pt")
    previous_checkpoint_path = property(lambda self: self.dir / "checkpoint.prev.pt")
    model_path = property(lambda self: self.dir / "model.pt")
    history_path = property(lambda self: self.dir / "history.json")
    result_path = property(lambda self: self.dir / "result.json")
    eval_dir = property(lambda self: self.dir / "evals")
    lock_path = property(lambda self: self.root / f".{self.dir.name}.lock")
    lock_owner_path = property(lambda self: self.root / f".{self.dir.name}.lock.owner")

    def damage(self) -> str | None:
        """Why the finished run cannot be served (None when spec.json, model.pt and result.json all verify)."""
        try:
            if read_json_verified(self.spec_path) != self.spec.to_dict():
                return f"{self.spec_path} holds another spec"
        except CorruptCheckpointError as err:
            return str(err)
        if not is_verified(self.model_path):
            return "model.pt is missing or does not match its checksum"
        try:
            read_json_verified(self.history_path)
            read_json_verified(self.result_path)
        except CorruptCheckpointError as err:
            return str(err)
        return None

    @property
    def is_complete(self) -> bool:
        return self.result_path.exists() and self.model_path.exists() and self.damage() is None

    @property
    def result(self) -> dict:
        return read_json_verified(self.result_path)

    @property
    def history(self) -> list[dict]:
        return read_json_verified(self.history_path) if self.history_path.exists() else []

    def load_model(self, device: str | torch.device = "cpu") -> nn.Module:
        """The trained model in eval mode, its weights verified against their checksum."""
        model = build_for_spec(self.spec)
        model.load_state_dict(load_verified(self.model_path, map_location=device))
        return model.to(device).eval()

    def __repr__(self) -> str:
        return f"Run({self.dir})"

    @classmethod
    def from_dir(cls, path: str | Path) -> "Run":
        """The run stored in `path` (its spec.json verified; CorruptCheckpointError if it does not)."""
        path = Path(path)
        try:
            spec = RunSpec.from_dict(read_json_verified(path / "spec.json"))
        except TypeError as err:
            raise CorruptCheckpointError(f"{path / 'spec.json'} does not hold a run spec ({err})") from None
        fingerprint = None
        try:
            fingerprint = read_json_verified(path / "result.json").get("data_fingerprint")
        except (CorruptCheckpointError, AttributeError):
            pass
        return cls(spec, folder=path, data_fingerprint=fingerprint)


def _summary_row(folder: Path) -> dict:
    try:
        run = Run.from_dir(folder)
    except CorruptCheckpointError as err:
        return {"run": folder.name, "status": f"damaged ({err}); delete the folder"}
    row = {"run": run.dir.name, **{k: getattr(run.spec, k) for k in ("dataset", "arch", "method", "tau", "seed")}}
    if run.result_path.exists() or run.model_path.exists():
        damage = run.damage()
        if damage is None:
            r = run.result
            row.update(status="diverged" if r.get("diverged") else "complete", clean_acc=r.get("clean_acc"),
                       epochs_done=r.get("epochs_done"), elapsed_s=r.get("provenance", {}).get("elapsed_s"))
            return row
        row.update(status=f"damaged ({damage}); rerun train to repair it from the checkpoint")
        return row
    try:
        done = len(run.history)
    except CorruptCheckpointError:
        done = "?"
    row.update(status=f"partial ({done}/{run.spec.epochs} epochs)")
    return row


def list_runs(runs_dir: str | Path | None = None) -> list[dict]:
    """One summary row per run folder (complete, partial or damaged); nothing unverified is reported as a result."""
    root = Path(runs_dir) if runs_dir is not None else default_runs_dir()
    if not root.is_dir():
        return []
    return [_summary_row(spec_file.parent) for spec_file in sorted(root.glob("*/spec.json"))]


# --- training into the store --------------------------------------------------------------------------------------

def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:  # filesystems without hard links: a copy (the checksum still guards it)
        shutil.copyfile(source, target)


@dataclass(frozen=True)
class RunCheckpoint:
    """`fit`'s per-epoch state in the run folder: checkpoint.pt (verified), the previous one, history.json.

    Saving keeps the last good checkpoint as checkpoint.prev.pt before replacing checkpoint.pt, so a crash between any
    two writes (or a damaged checkpoint.pt) costs at most the epoch in flight.
    """

    run: Run

    def load(self, device: torch.device) -> dict[str, Any] | None:
        for path in (self.run.checkpoint_path, self.run.previous_checkpoint_path):
            if not path.exists() and not sidecar_path(path).exists():
                continue
            try:
                state = load_verified(path, map_location=device)
                if isinstance(state, dict) and {"model", "optimizer", "scheduler", "history", "epoch"} <= set(state):
                    return state
                notice(f"{path} does not hold a training state; ignoring it")
            except CorruptCheckpointError as err:
                notice(f"{err.args[0].split(';')[0]}; resuming from the checkpoint before it")
        return None

    def save(self, state: dict[str, Any]) -> None:
        current, previous = self.run.checkpoint_path, self.run.previous_checkpoint_path
        if is_verified(current):
            remove_verified(previous)
            _link_or_copy(current, previous)
            _link_or_copy(sidecar_path(current), sidecar_path(previous))
        save_verified(state, current)
        write_json_verified(self.run.history_path, state["history"])


def _remove_unstarted(run: Run) -> None:
    """A run that failed before its first finished epoch leaves no folder behind."""
    if run.dir.is_dir() and {p.name for p in run.dir.iterdir()} <= {run.spec_path.name}:
        run.spec_path.unlink(missing_ok=True)
        run.dir.rmdir()


def train_run(run: Run, data_dir: str | Path | None = None, device: str | None = None, progress: bool = True,
              download: bool = False, stop_after: int | None = None, compile_model: bool = False) -> dict:
    """Train (or resume) `run` to completion and write its files; returns its result. `stop_after=k` interrupts
    after epoch k (StopTraining)."""
    spec = run.spec
    data_dir = data_dir if data_dir is not None else run.data_dir
    bundle = load_dataset(spec.dataset, spec.image_size, data_dir, download=download)
    check_runs_dir(run.root)
    run.dir.mkdir(exist_ok=True)
    write_json_verified(run.spec_path, spec.to_dict())
    try:
        trained = fit(spec, bundle, device, checkpoint=RunCheckpoint(run), progress=progress, stop_after=stop_after,
                      compile_model=compile_model)
    except BaseException:
        _remove_unstarted(run)
        raise
    save_verified({k: v.detach().cpu() for k, v in trained.model.state_dict().items()}, run.model_path)
    write_json_verified(run.history_path, trained.history)
    summary = {**trained.summary, "data_fingerprint": run.data_fingerprint}
    write_json_verified(run.result_path, summary)
    return read_json_verified(run.result_path)


class RunLock:
    """The run's lock (`tempscale.io.shared_lock`: safe on a shared filesystem, and a killed or crashed holder's
    lock does not outlive it). A process that has to wait says who holds it and since when."""

    def __init__(self, run: Run):
        self.run = run
        self.lock = shared_lock(run.lock_path)

    def holder(self) -> str:
        try:
            owner = json.loads(self.run.lock_owner_path.read_text())
            return f"pid {owner['pid']} on {owner['host']} since {owner['since']}"
        except (OSError, ValueError, KeyError, TypeError):
            return "another process"

    def holder_if_held(self) -> str | None:
        """Who trains the run now (None when nobody does; a dead same-host holder's marker is cleared on the way)."""
        if not self.run.lock_path.exists():
            return None
        try:
            self.lock.acquire(timeout=0)
        except Timeout:
            return self.holder()
        self.lock.release()
        return None

    def __enter__(self) -> "RunLock":
        try:
            self.lock.acquire(timeout=0)
        except Timeout:
            notice(f"waiting for {self.run.dir.name}: it is being trained by {self.holder()}; "
                   "this process will reuse its result")
            self.lock.acquire()
        since = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        atomic_write_json(self.run.lock_owner_path, {"pid": os.getpid(), "host": socket.gethostname(), "since": since})
        return self

    def __exit__(self, *exc) -> None:
        self.run.lock_owner_path.unlink(missing_ok=True)
        self.lock.release()


def _stored_run(spec: RunSpec, runs_dir, data_dir, download: bool) -> Run:
    """The run folder of `spec` (init resolved: part of the run's identity), its data fetched first if asked."""
    spec = spec.replace(init=resolve_init(spec.arch, spec.init)).validate()
    if download:  # the data fingerprint needs the files: fetch them first
        load_dataset(spec.dataset, spec.image_size, data_dir, download=True)
    return Run(spec, runs_dir, data_dir)


def _complete(run: Run, data_dir, device: str | None = None, progress: bool = True, download: bool = False,
              compile_model: bool = False) -> Run:
    """`run`, trained (or resumed, or repaired) under its lock first unless it is complete."""
    if run.is_complete:
        return run
    check_runs_dir(run.root)
    with RunLock(run):
        if not run.is_complete:  # another process may have finished it while we waited
            if run.result_path.exists() or run.model_path.exists():
                notice(f"{run.dir.name}: {run.damage()}; recomputing it from the last good checkpoint")
            train_run(run, data_dir=data_dir, device=device, progress=progress, download=download,
                      compile_model=compile_model)
    return run


def get_or_train(spec: RunSpec, runs_dir: str | Path | None = None, data_dir: str | Path | None = None,
                 device: str | None = None, progress: bool = True, download: bool = False,
                 compile_model: bool = False) -> Run:
    """Return the stored run for `spec`, training (or resuming, or repairing) it first if needed.

    A file lock makes a second process wait for the first instead of training the same run twice.
    """
    return _complete(_stored_run(spec, runs_dir, data_dir, download), data_dir, device=device, progress=progress,
                     download=download, compile_model=compile_model)


def get_or_train_each(specs: Sequence[RunSpec], runs_dir: str | Path | None = None,
                      data_dir: str | Path | None = None, download: bool = False, **kwargs) -> list[Run]:
    """`get_or_train` for each spec, in order, sharing the work with other processes: a run another process is
    training right now is put off until nothing else is left (then its lock is waited for). Notebooks that start
    together on the same grid (./run_all.sh's parallel jobs) split its training instead of queueing on each run."""
    runs = [_stored_run(spec, runs_dir, data_dir, download) for spec in specs]
    pending = [run for run in runs if not run.is_complete]
    while pending:
        run = next((run for run in pending if RunLock(run).holder_if_held() is None), pending[0])
        _complete(run, data_dir, download=download, **kwargs)
        pending.remove(run)
    return runs


def load_finished_model(run_dir: Path, device: str | torch.device = "cpu") -> nn.Module:
    """The model of the finished run in `run_dir` (methods that learn from a stored run open it through this)."""
    if not (run_dir / "spec.json").exists():
        raise InvalidSpecError(f"run {run_dir} does not exist; train it first")
    run = Run.from_dir(run_dir)
    if not run.is_complete:
        raise InvalidSpecError(f"run {run_dir} is not finished (or damaged); train it first")
    return run.load_model(device)


set_stored_model_loader(load_finished_model)

__all__ = ["Run", "RunCheckpoint", "RunLock", "get_or_train", "get_or_train_each", "list_runs", "train_run", "load_finished_model",
           "check_runs_dir", "run_folder_name"]
