"""`./run_all.sh`'s main job: notebooks run side by side (--jobs), single-threaded, each logged; a failure stops
what has not started and says where to look; an unchanged rerun skips everything."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_all(tmp_path: Path, *args: str, runs: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "TEMPSCALE_RUNS": str(runs or tmp_path / "runs"), "TEMPSCALE_FIGURES": str(tmp_path / "fig"),
           "TEMPSCALE_EXECUTED": str(tmp_path / "executed")}
    env.pop("OMP_NUM_THREADS", None)
    return subprocess.run([str(ROOT / "run_all.sh"), "--profile", "smoke", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def summary(out: str) -> dict[str, str]:
    lines = out.split("==> summary", 1)[1].splitlines()[1:]
    return {line.split()[0]: line.split()[1] for line in lines if line.strip()}


def test_two_notebooks_at_once_then_an_unchanged_rerun_skips_both(tmp_path):
    first = run_all(tmp_path, "--only", "00,01", "--jobs", "2")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "==> 00_gradient_analysis (profile smoke, 1 thread(s)" in first.stdout
    # both started before either finished: they ran side by side
    assert first.stdout.index("==> 01_train_temperatures") < first.stdout.index("<== ")
    assert summary(first.stdout) == {"00_gradient_analysis": "ok", "01_train_temperatures": "ok"}
    executed = tmp_path / "executed" / "smoke"
    assert (executed / "00_gradient_analysis.log").stat().st_size > 0
    assert (executed / "01_train_temperatures.ipynb").exists()
    second = run_all(tmp_path, "--only", "00,01", "--jobs", "2")
    assert second.returncode == 0 and set(summary(second.stdout).values()) == {"current"}


def test_a_failure_stops_what_has_not_started_and_names_the_log(tmp_path):
    not_a_folder = tmp_path / "runs-is-a-file"
    not_a_folder.write_text("")
    done = run_all(tmp_path, "--only", "00,01,03", "--jobs", "2", runs=not_a_folder)
    assert done.returncode == 1
    assert summary(done.stdout) == {"00_gradient_analysis": "FAILED", "01_train_temperatures": "FAILED",
                                    "03_tsne": "NOT"}
    assert "FAILED: 00_gradient_analysis — see" in done.stderr and "NOT RUN: 03_tsne" in done.stderr
    assert "is not usable" in done.stderr   # the failing notebook's log tail: the one-line error


@pytest.mark.parametrize("jobs", ["0", "two", ""])
def test_bad_jobs_is_one_line_before_anything_runs(tmp_path, jobs):
    done = run_all(tmp_path, "--jobs", jobs)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "--jobs" in done.stderr
    assert not (tmp_path / "executed").exists()
