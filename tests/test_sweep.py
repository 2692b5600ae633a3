"""The sweep: one submitit job per run through the local executor, idempotent resubmission, resume after a kill,
and the per-run status (done / running / queued / failed / missing)."""
import os
import signal
import time

import pytest
import submitit

from tempscale import cli
from tempscale.profiles import get_profile
from tempscale.runs import Run, RunLock
from tempscale.sweep import ClusterOptions, read_manifest, submit_sweep, sweep_specs, sweep_status

SMOKE = get_profile("smoke")
LOCAL = ClusterOptions(executor="local", gpus=0, timeout_min=10)


def _states(specs, root):
    return [s.state for s in sweep_status(specs, root)]


def test_a_sweep_trains_each_run_once_through_the_local_executor(tmp_path, capsys):
    specs = sweep_specs(SMOKE, epochs=1)
    assert len(specs) == 2 and _states(specs, tmp_path) == ["missing", "missing"]
    submitted, skipped = submit_sweep(SMOKE, specs, tmp_path, LOCAL)
    assert [s.stage for s in submitted] == ["train", "train"] and not skipped
    assert all(isinstance(s.job, submitit.local.local.LocalJob) for s in submitted)
    assert _states(specs, tmp_path) in (["queued"] * 2, ["running"] * 2, ["queued", "running"], ["running", "queued"],
                                        ["done", "queued"], ["done", "running"], ["queued", "done"],
                                        ["running", "done"], ["done", "done"])
    for item in submitted:
        assert item.job.result()["clean_acc"] == Run(item.run.spec, tmp_path).result["clean_acc"]
    assert _states(specs, tmp_path) == ["done", "done"]
    again, skipped = submit_sweep(SMOKE, specs, tmp_path, LOCAL)   # idempotent: nothing left to do
    assert again == [] and [s.state for s in skipped] == ["done", "done"]
    assert cli.main(["sweep", "--profile", "smoke", "--epochs", "1", "--runs-dir", str(tmp_path), "--status"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and all(" done " in line for line in lines[:2]) and lines[2].startswith("2 done")


def test_a_killed_job_is_resumed_from_its_checkpoint_when_resubmitted(tmp_path):
    profile = get_profile("smoke", taus=(1.0,))
    specs = sweep_specs(profile, epochs=12)
    run = Run(specs[0], tmp_path)
    (first,), _ = submit_sweep(profile, specs, tmp_path, LOCAL)
    deadline = time.monotonic() + 240
    while not (run.history_path.exists() and len(run.history) >= 2 and run.lock_owner_path.exists()):
        assert time.monotonic() < deadline and not first.job.done(), "the job never got past epoch 2"
        time.sleep(0.05)
    trainer_pid = int(__import__("json").loads(run.lock_owner_path.read_text())["pid"])
    os.kill(trainer_pid, signal.SIGKILL)   # mid-training, no cleanup: its lock marker stays behind
    while not first.job.done():
        time.sleep(0.1)
    before = run.history
    assert 2 <= len(before) < 12 and not run.is_complete
    assert _states(specs, tmp_path) == ["failed"]
    (second,), _ = submit_sweep(profile, specs, tmp_path, LOCAL)
    assert second.why == "failed"
    second.job.result()
    after = run.history
    assert run.is_complete and len(after) == 12
    # The epochs of the killed job are kept as they were (their wall-clock seconds included): resumed, not retrained.
    assert after[:len(before)] == before
    assert _states(specs, tmp_path) == ["done"]
    assert set(read_manifest(tmp_path)) == {f"train:{run.dir.name}"}


def test_status_tells_running_queued_failed_and_missing_apart(tmp_path):
    profile = get_profile("smoke", taus=(1.0, 10.0, 50.0, 100.0))
    specs = sweep_specs(profile, epochs=1)
    runs = [Run(spec, tmp_path) for spec in specs]
    tmp_path.mkdir(exist_ok=True)
    logs = tmp_path / "logs"   # one folder for every job, as SLURM executors keep them
    failed_paths = submitit.core.utils.JobPaths(logs, job_id="101", task_id=0)
    failed_paths.folder.mkdir(parents=True)
    submitit.core.utils.cloudpickle_dump(("error", "Traceback ...\nValueError: out of memory"),
                                         failed_paths.result_pickle)
    entry = {"executor": "slurm", "folder": str(logs), "host": "node1", "submitted": "2026-01-01T00:00:00"}
    manifest = {f"train:{runs[1].dir.name}": {**entry, "job_id": "100"},
                f"train:{runs[2].dir.name}": {**entry, "job_id": "101"}}
    (tmp_path / ".sweep").mkdir()
    (tmp_path / ".sweep" / "jobs.json").write_text(__import__("json").dumps(manifest))
    holder = RunLock(runs[0])
    with holder:   # this process trains runs[0]
        statuses = sweep_status(specs, tmp_path)
    assert [s.state for s in statuses] == ["running", "queued", "failed", "missing"]
    assert "ValueError: out of memory" in statuses[2].detail and "job 100" in statuses[1].detail


@pytest.mark.parametrize("args, reason", [
    (["--executor", "kubernetes"], "invalid choice"),
    (["--tau", "1"], "whole τ grid"),
    (["--timeout-min", "0"], "--timeout-min must be"),
])
def test_bad_sweep_arguments_are_one_line(tmp_path, capsys, args, reason):
    assert cli.main(["sweep", "--profile", "smoke", "--runs-dir", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and reason in err[0]


def test_evaluation_jobs_run_after_training_in_submitits_debug_executor(tmp_path):
    profile = get_profile("smoke", taus=(1.0,))
    specs = sweep_specs(profile, epochs=1)
    debug = ClusterOptions(executor="debug", gpus=0)
    submitted, _ = submit_sweep(profile, specs, tmp_path, debug, attacks=("clean",), n_eval=16)
    assert [s.stage for s in submitted] == ["train", "eval"]
    results = [s.job.result() for s in submitted]   # the debug executor runs each job here, in order
    assert results[1]["attacks"]["clean"] is not None and Run(specs[0], tmp_path).is_complete
    again, skipped = submit_sweep(profile, specs, tmp_path, debug, attacks=("clean",), n_eval=16)
    assert [s.stage for s in again] == ["eval"] and [s.state for s in skipped] == ["done"]   # no retraining


def test_slurm_evaluation_jobs_depend_on_their_training_job(tmp_path, monkeypatch):
    """Submitted to a stand-in sbatch (no cluster here): the job scripts submitit writes are what SLURM would get."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text('#!/bin/sh\nn=$(( $(cat "$0.count" 2>/dev/null || echo 100) + 1 ))\n'
                                    'echo $n > "$0.count"\necho "Submitted batch job $n"\n')
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 0\n")
    for tool in ("sbatch", "srun"):
        (bin_dir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    store = tmp_path / "runs"
    slurm = ClusterOptions(executor="slurm", partition="gpu", gpus=1, timeout_min=60)
    submitted, _ = submit_sweep(SMOKE, sweep_specs(SMOKE, epochs=1), store, slurm, attacks=("pgd20",), audit=True)
    assert [(s.stage, str(s.job.job_id)) for s in submitted] == [
        ("train", "101"), ("eval", "102"), ("audit", "103"), ("train", "104"), ("eval", "105"), ("audit", "106")]
    scripts = {s.job.job_id: (store / ".sweep" / "logs" / s.job.job_id / f"{s.job.job_id}_submission.sh").read_text()
               for s in submitted}
    assert "--dependency=afterok:101" in scripts["102"] and "--dependency=afterok:101" in scripts["103"]
    assert "--dependency" not in scripts["101"] and "--dependency=afterok:104" in scripts["106"]
    assert all("--partition=gpu" in text and "--gpus-per-node=1" in text for text in scripts.values())
    assert [s.state for s in sweep_status(sweep_specs(SMOKE, epochs=1), store)] == ["queued", "queued"]
    again, skipped = submit_sweep(SMOKE, sweep_specs(SMOKE, epochs=1), store, slurm)
    assert again == [] and [s.state for s in skipped] == ["queued", "queued"]   # not submitted twice


def test_slurm_without_a_cluster_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))   # no srun anywhere
    assert cli.main(["sweep", "--profile", "smoke", "--runs-dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs a SLURM cluster" in err[0] and "--executor local" in err[0]
