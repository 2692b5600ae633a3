"""`./run_all.sh`'s main job: notebooks run side by side (--jobs), single-threaded, each logged; a failure stops
what has not started and says where to look; an unchanged rerun skips everything; the README table is built from
what the executed notebooks recorded."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import nbformat
import pytest

from tempscale import papermill_ipc

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


@pytest.fixture(scope="module")
def two_notebooks(tmp_path_factory):
    """02 and 10 (the README table's sources) run side by side under the smoke profile, then run again unchanged."""
    tmp_path = tmp_path_factory.mktemp("main-job")
    first = run_all(tmp_path, "--only", "02,10", "--jobs", "2")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    return tmp_path, first, run_all(tmp_path, "--only", "02,10", "--jobs", "2")


def test_two_notebooks_at_once_then_an_unchanged_rerun_skips_both(two_notebooks):
    tmp_path, first, second = two_notebooks
    assert "==> 02_robustness_tables (profile smoke, 1 thread(s)" in first.stdout
    # both started before either finished: they ran side by side
    assert first.stdout.index("==> 10_gradient_masking_audit") < first.stdout.index("<== ")
    assert summary(first.stdout) == {"02_robustness_tables": "ok", "10_gradient_masking_audit": "ok"}
    executed = tmp_path / "executed" / "smoke"
    assert (executed / "02_robustness_tables.log").stat().st_size > 0
    assert (executed / "10_gradient_masking_audit.ipynb").exists()
    assert second.returncode == 0 and set(summary(second.stdout).values()) == {"current"}


def test_readme_table_is_built_from_the_scraps_of_executed_notebooks(two_notebooks):
    """The README's numbers come from what notebooks 02 and 10 record (scrapbook), read back after papermill."""
    from tempscale import readme

    executed = two_notebooks[0] / "executed" / "smoke"
    assert {f"{notebook}.ipynb" for notebook in readme.SOURCES.values()} <= {p.name for p in executed.iterdir()}
    scraps = readme.read_scraps(executed)
    taus = list(scraps["audit_table"].index)
    lines = readme.results_table(scraps).splitlines()
    assert taus and len(lines) == 2 + len(taus), "one row per τ this run evaluated"
    ours = scraps["table_I"][("pgd20", "this run")]
    assert all(f"| {ours[t]:.1f} (" in line for t, line in zip(taus, lines[2:])), "PGD-20 with its 95% interval"


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


def test_the_kernel_runs_on_private_unix_sockets_that_are_removed_after(tmp_path):
    """run_all.sh executes notebooks through papermill_ipc: no TCP port another kernel could take first."""
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "from ipykernel import get_connection_info\nprint(get_connection_info())")])
    nbformat.write(notebook, tmp_path / "in.ipynb")
    with pytest.raises(SystemExit) as done:
        papermill_ipc.main([str(tmp_path / "in.ipynb"), str(tmp_path / "out.ipynb"), "-k", "tempscale",
                            "--log-level", "ERROR", "--no-progress-bar"])
    assert done.value.code == 0
    printed = nbformat.read(tmp_path / "out.ipynb", as_version=4).cells[0].outputs[0]["text"]
    info = json.loads(printed)
    assert info["transport"] == "ipc"
    assert not Path(info["ip"]).parent.exists()
