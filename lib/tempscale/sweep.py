"""Fan a profile's runs out over a cluster: one submitit job per training run (SLURM on a cluster, local processes
in the tests), resumable and idempotent on the shared run store.

    python -m tempscale sweep --profile paper --executor slurm --partition gpu   # submit what is not done yet
    python -m tempscale sweep --profile paper --status                           # done / running / queued / ...

The scheduler is submitit's, never a home-made one. What makes a sweep safe to repeat is the run store: a job calls
`get_or_train`, which returns a complete run at once, resumes a partial one from its last checkpoint, and holds the
run's lock (`tempscale.runs.RunLock`) while it trains, so two jobs never train the same run. A job that hits its time
limit or is preempted is requeued by submitit (`Checkpointable`) and resumes from the checkpoint.

Evaluation and audit jobs (``--attacks``, ``--audit``) are separate jobs per run. On SLURM they wait for their
training job (``afterok`` dependency); on the other executors they start at once and, since they open the run through
`get_or_train`, either wait on its lock or train it themselves; either way each run is trained once.

The sweep keeps a manifest of what it submitted (``<runs>/.sweep/jobs.json``, job ids and log folders), so `status`
can tell a queued job from a missing one and show why a job failed.
"""
from __future__ import annotations

import datetime
import json
import os
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import submitit

from .audit import audit_run
from .errors import InvalidSpecError
from .evaluation import evaluate_run
from .io import atomic_write_json
from .models import resolve_init
from .profiles import Profile, get_profile
from .runs import Run, RunLock, check_runs_dir, get_or_train
from .spec import RunSpec

EXECUTORS = ("slurm", "local", "debug")   # submitit's cluster names: SLURM, local processes, in-process (debugging)
STAGES = ("train", "eval", "audit")
STATES = ("done", "running", "queued", "failed", "missing")


# --- what a sweep runs ------------------------------------------------------------------------------------------------

def sweep_specs(profile: Profile, **overrides) -> list[RunSpec]:
    """One resolved spec per (seed, τ) of the profile (init resolved as `get_or_train` does: the run's identity)."""
    specs = [profile.spec(tau, seed=seed, **overrides) for seed in profile.seeds for tau in profile.taus]
    return [s.replace(init=resolve_init(s.arch, s.init)).validate() for s in specs]


# The notebook that trains a cell's τ grid: a grid cell that runs it needs every (seed, τ) run of its dataset and model.
TRAINING_NOTEBOOK = "01"


def grid_specs(profile: Profile) -> list[RunSpec]:
    """`sweep_specs` for every grid cell that trains the τ grid (the paper: ResNet50 on three datasets, ViT-S/16 on
    two), or for the profile itself when it has no grid."""
    cells = [c for c in profile.grid if TRAINING_NOTEBOOK in c.notebooks]
    if not cells:
        return sweep_specs(profile)
    return [spec for c in cells for spec in sweep_specs(get_profile(profile, dataset=c.dataset, arch=c.arch))]


class RunJob(submitit.helpers.Checkpointable):
    """One job of a sweep: train (or resume) one run, then the evaluations or the audit asked for. Requeued as it is
    on timeout or preemption (submitit calls `checkpoint`): the run store resumes it from its last epoch."""

    def __call__(self, stage: str, spec: dict, profile: str, runs_dir: str, data_dir: str | None,
                 device: str | None, attacks: tuple[str, ...] = (), n_eval: int | None = None,
                 compile_model: bool = False) -> dict:
        run = get_or_train(RunSpec.from_dict(spec), runs_dir=runs_dir, data_dir=data_dir, device=device,
                           progress=False, compile_model=compile_model)
        if stage == "eval":
            results = evaluate_run(run, list(attacks), profile=get_profile(profile), n_eval=n_eval,
                                   data_dir=data_dir, device=device)
            return {"run_dir": str(run.dir), "attacks": {k: v.get("accuracy") for k, v in results.items()}}
        if stage == "audit":
            report = audit_run(run, profile=profile, n_eval=n_eval, data_dir=data_dir, device=device)
            return {"run_dir": str(run.dir), "audit": report}
        return {"run_dir": str(run.dir), "clean_acc": run.result["clean_acc"]}


# --- the manifest of submitted jobs -----------------------------------------------------------------------------------

def sweep_dir(runs_dir: Path) -> Path:
    return runs_dir / ".sweep"


def _manifest_path(runs_dir: Path) -> Path:
    return sweep_dir(runs_dir) / "jobs.json"


def read_manifest(runs_dir: Path) -> dict[str, dict]:
    """{"<stage>:<run folder>": {job_id, executor, folder, host, submitted}} of every job submitted so far."""
    try:
        return json.loads(_manifest_path(runs_dir).read_text())
    except FileNotFoundError:
        return {}
    except ValueError:
        raise InvalidSpecError(f"{_manifest_path(runs_dir)} is not valid JSON; delete it (the run store is "
                               "unaffected) and run the sweep again") from None


def _record_jobs(runs_dir: Path, entries: dict[str, dict]) -> None:
    manifest = read_manifest(runs_dir)
    manifest.update(entries)
    atomic_write_json(_manifest_path(runs_dir), manifest)


# --- status -----------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RunStatus:
    run: Run
    state: str      # one of STATES
    detail: str     # epochs done, job id, the reason of a failure

    def line(self) -> str:
        return f"{self.run.dir.name:<72} {self.state:<8} {self.detail}"


def _epochs_done(run: Run) -> int:
    try:
        return len(run.history)
    except Exception:  # a damaged history: the checkpoint still decides, say nothing about it here
        return 0


def _job_outcome(entry: dict) -> tuple[str, str] | None:
    """("success" | "error", detail) from the job's result file, or None while it has none."""
    paths = submitit.core.utils.JobPaths(entry["folder"], job_id=entry["job_id"], task_id=0)
    if not paths.result_pickle.exists():
        return None
    try:
        outcome, value = submitit.core.utils.pickle_load(paths.result_pickle)
    except Exception as err:  # a torn result file: the job did not finish cleanly
        return "error", f"unreadable result file ({type(err).__name__})"
    if outcome == "success":
        return "success", ""
    last = [line for line in str(value).strip().splitlines() if line.strip()]
    return "error", (last[-1] if last else "error")[:160] + f" (log: {paths.stderr})"


# SLURM states of a job that ended without writing a result (sacct's names).
SLURM_ENDED = ("FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE", "COMPLETED")


def _job_gone(entry: dict) -> bool:
    """Whether a job that left no result has ended (killed, cancelled, out of time or memory). A local job's id is
    its controller's pid; a SLURM job's state comes from sacct (unknown, e.g. without sacct: not gone)."""
    if entry["executor"] == "slurm":
        if shutil.which("sacct") is None:
            return False
        try:
            state = submitit.SlurmJob(folder=entry["folder"], job_id=entry["job_id"]).state
        except Exception:  # sacct unreachable or the job purged from its database: say nothing
            return False
        return state.split()[0] in SLURM_ENDED
    if entry["executor"] != "local" or entry.get("host") != socket.gethostname():
        return False
    try:
        os.kill(int(entry["job_id"]), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, ValueError):
        return False
    return False


def run_status(run: Run, entry: dict | None) -> RunStatus:
    """done / running / queued / failed / missing for one run, from the store, its lock and the job manifest."""
    epochs = f"{_epochs_done(run)}/{run.spec.epochs} epochs"
    if run.is_complete:
        result = run.result
        note = f"diverged at epoch {result.get('diverged_epoch')}" if result.get("diverged") else \
            f"clean_acc={result.get('clean_acc', float('nan')):.4f}"
        return RunStatus(run, "done", note)
    holder = RunLock(run).holder_if_held()
    if holder is not None:
        return RunStatus(run, "running", f"{epochs}, {holder}")
    if entry is None:
        return RunStatus(run, "missing", f"{epochs}, never submitted" if _epochs_done(run) else "never submitted")
    outcome = _job_outcome(entry)
    job = f"job {entry['job_id']} ({entry['executor']})"
    if outcome is not None and outcome[0] == "error":
        return RunStatus(run, "failed", f"{epochs}, {job}: {outcome[1]}; resubmit to resume")
    if outcome is not None or _job_gone(entry) or _epochs_done(run):
        return RunStatus(run, "failed", f"{epochs}, {job} ended without finishing (killed?); resubmit to resume")
    return RunStatus(run, "queued", job)


def sweep_status(specs: Iterable[RunSpec], runs_dir: Path, data_dir: str | Path | None = None) -> list[RunStatus]:
    manifest = read_manifest(runs_dir)
    statuses = []
    for spec in specs:
        run = Run(spec, runs_dir, data_dir)
        statuses.append(run_status(run, manifest.get(f"train:{run.dir.name}")))
    return statuses


# --- submission -------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ClusterOptions:
    executor: str = "slurm"
    partition: str | None = None        # SLURM partition
    timeout_min: int = 24 * 60          # per job; a job that runs out is requeued and resumes
    gpus: int = 1                       # GPUs per job (SLURM); the local executor uses none unless asked
    cpus: int = 8                       # CPU cores per job (data feeding, evaluation)

    def check(self) -> "ClusterOptions":
        if self.executor not in EXECUTORS:
            raise InvalidSpecError(f"unknown executor {self.executor!r}; choose one of {', '.join(EXECUTORS)}")
        for name, low in (("timeout_min", 1), ("gpus", 0), ("cpus", 1)):
            value = getattr(self, name)
            if not isinstance(value, int) or value < low:
                raise InvalidSpecError(f"--{name.replace('_', '-')} must be an integer ≥ {low}, got {value!r}")
        return self


def make_executor(options: ClusterOptions, log_dir: Path) -> submitit.AutoExecutor:
    if options.executor == "slurm" and shutil.which("srun") is None:
        raise InvalidSpecError("--executor slurm needs a SLURM cluster (no srun on this machine); run the sweep "
                               "from a login node, or use --executor local to run the jobs here")
    executor = submitit.AutoExecutor(folder=str(log_dir / "%j"), cluster=options.executor)
    params: dict[str, Any] = {"timeout_min": options.timeout_min, "name": "tempscale"}
    if options.executor == "slurm":
        params.update(gpus_per_node=options.gpus, cpus_per_task=options.cpus, tasks_per_node=1, nodes=1)
        if options.partition:
            params["slurm_partition"] = options.partition
    elif options.executor == "local":
        params.update(gpus_per_node=options.gpus if options.gpus else 0)
    executor.update_parameters(**params)
    return executor


@dataclass(frozen=True)
class Submitted:
    run: Run
    stage: str
    job: Any            # a submitit Job
    why: str            # why it was (re)submitted: the run's state before


def submit_sweep(profile: Profile, specs: list[RunSpec], runs_dir: Path, options: ClusterOptions, *,
                 data_dir: str | Path | None = None, device: str | None = None, attacks: tuple[str, ...] = (),
                 audit: bool = False, n_eval: int | None = None,
                 compile_model: bool = False) -> tuple[list[Submitted], list[RunStatus]]:
    """Submit one training job per run that is missing or failed (runs done, running or queued are left alone),
    and the evaluation / audit jobs asked for. Returns (what was submitted, the status of what was skipped)."""
    options.check()
    check_runs_dir(runs_dir)
    executor = make_executor(options, sweep_dir(runs_dir) / "logs")
    statuses = sweep_status(specs, runs_dir, data_dir)
    submitted, skipped = [], []
    for status in statuses:
        if status.state in ("done", "running", "queued"):
            skipped.append(status)
            if status.state != "done" or not (attacks or audit):
                continue
        run, common = status.run, dict(spec=status.run.spec.to_dict(), profile=profile.name, runs_dir=str(runs_dir),
                                       data_dir=None if data_dir is None else str(data_dir), device=device,
                                       compile_model=compile_model)
        train_job = None
        if status.state in ("missing", "failed"):
            train_job = executor.submit(RunJob(), "train", **common)
            submitted.append(Submitted(run, "train", train_job, status.state))
        for stage, wanted in (("eval", bool(attacks)), ("audit", audit)):
            if not wanted:
                continue
            if options.executor == "slurm" and train_job is not None:
                executor.update_parameters(slurm_additional_parameters={"dependency": f"afterok:{train_job.job_id}"})
            job = executor.submit(RunJob(), stage, attacks=tuple(attacks), n_eval=n_eval, **common)
            if options.executor == "slurm":
                executor.update_parameters(slurm_additional_parameters={})
            submitted.append(Submitted(run, stage, job, status.state))
    if options.executor != "debug":   # debug jobs run in this process when their result is asked for: no record
        now = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        entries = {f"{item.stage}:{item.run.dir.name}": {
            "job_id": str(item.job.job_id), "executor": options.executor, "folder": str(item.job.paths.folder),
            "host": socket.gethostname(), "submitted": now} for item in submitted}
        if entries:
            _record_jobs(runs_dir, entries)
    return submitted, skipped


__all__ = ["EXECUTORS", "STATES", "ClusterOptions", "RunJob", "RunStatus", "Submitted", "make_executor",
           "grid_specs", "read_manifest", "run_status", "submit_sweep", "sweep_specs", "sweep_status"]
