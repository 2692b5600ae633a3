"""run_all.sh's up-to-date stamps: a notebook is skipped only when its inputs are unchanged and its outputs intact."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tempscale import stamps

SCRIPT = Path(stamps.__file__)


@pytest.fixture
def project(tmp_path, monkeypatch):
    notebook = tmp_path / "00_demo.ipynb"
    notebook.write_text('{"cells": []}')
    data = tmp_path / "data"
    (data / "set").mkdir(parents=True)
    (data / "set" / "a.bin").write_bytes(b"12345")
    monkeypatch.setenv("TEMPSCALE_DATA", str(data))
    return notebook, data


def test_key_follows_every_input(project, monkeypatch):
    notebook, data = project
    key = stamps.input_key(notebook, "quick", [])
    assert stamps.input_key(notebook, "quick", []) == key                        # stable
    assert stamps.input_key(notebook, "smoke", []) != key                        # profile
    assert stamps.input_key(notebook, "quick", ["-p", "dataset", "cifar10"]) != key   # injected parameters
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    assert stamps.input_key(notebook, "quick", []) != key                        # a steering variable
    monkeypatch.delenv("OMP_NUM_THREADS")
    (data / "set" / "a.bin").write_bytes(b"123456")
    assert stamps.input_key(notebook, "quick", []) != key                        # the dataset folder
    (data / "set" / "a.bin").write_bytes(b"12345")
    notebook.write_text('{"cells": [1]}')
    assert stamps.input_key(notebook, "quick", []) != key                        # the notebook


def test_key_follows_the_library(project, monkeypatch, tmp_path):
    notebook, _ = project
    key = stamps.input_key(notebook, "quick", [])
    library = tmp_path / "lib"
    library.mkdir()
    (library / "x.py").write_text("A = 1\n")
    monkeypatch.setattr(stamps, "LIBRARY", library)
    changed = stamps.input_key(notebook, "quick", [])
    assert changed != key
    (library / "x.py").write_text("A = 2\n")
    assert stamps.input_key(notebook, "quick", []) != changed


def _run_once(tmp_path, key="k1"):
    executed = tmp_path / "executed.ipynb"
    executed.write_text("executed")
    figures = tmp_path / "figures"
    figures.mkdir(exist_ok=True)
    table = figures / "table__digits_resnet8.csv"
    table.write_text("1,2\n")
    log = tmp_path / "outputs.log"
    log.write_text(f"{table}\n{table}\n")                # written twice, recorded once
    stamp = tmp_path / "nb.stamp"
    stamps.record(stamp, key, log, executed)
    return stamp, executed, table


def test_fresh_needs_the_same_key_and_intact_outputs(tmp_path):
    stamp, executed, table = _run_once(tmp_path)
    assert stamps.fresh(stamp, "k1")
    assert not stamps.fresh(stamp, "k2")                   # an input changed
    table.write_text("1,3\n")
    assert not stamps.fresh(stamp, "k1")                   # an output was edited
    stamp, executed, table = _run_once(tmp_path)
    table.unlink()
    assert not stamps.fresh(stamp, "k1")                   # an output was deleted
    stamp, executed, table = _run_once(tmp_path)
    executed.unlink()
    assert not stamps.fresh(stamp, "k1")                   # the executed copy is gone
    assert not stamps.fresh(tmp_path / "never.stamp", "k1")
    (tmp_path / "broken.stamp").write_text("{not json")
    assert not stamps.fresh(tmp_path / "broken.stamp", "k1")


def test_record_keeps_only_what_the_run_logged(tmp_path):
    # A notebook running beside this one writes into the same folder during this run: not this run's output.
    beside = tmp_path / "figures" / "other_notebook.png"
    beside.parent.mkdir()
    beside.write_bytes(b"beside")
    stamp, _, table = _run_once(tmp_path)
    recorded = json.loads(stamp.read_text())["outputs"]
    assert sorted(recorded) == sorted([str(tmp_path / "executed.ipynb"), str(table)])
    beside.write_bytes(b"rewritten by the other notebook")
    assert stamps.fresh(stamp, "k1")


def test_writers_log_every_file_they_write(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt
    from tempscale.plots.style import save_figure
    from tempscale.tables import write_table

    log = tmp_path / "outputs.log"
    monkeypatch.setenv("TEMPSCALE_OUTPUT_LOG", str(log))
    fig, _ = plt.subplots()
    figures = save_figure(fig, "fig_x", directory=tmp_path)
    plt.close(fig)
    tables = write_table(pd.DataFrame({"a": [1.0]}), tmp_path / "table_x")
    assert log.read_text().splitlines() == [str(p.resolve()) for p in [*figures, *tables.values()]]


def test_script_exit_codes(project, tmp_path):
    notebook, _ = project
    key = subprocess.run([sys.executable, str(SCRIPT), "key", str(notebook), "quick"], capture_output=True,
                         text=True, check=True).stdout.strip()
    assert len(key) == 64
    stamp, _, _ = _run_once(tmp_path, key)
    fresh = subprocess.run([sys.executable, str(SCRIPT), "fresh", str(stamp), key])
    stale = subprocess.run([sys.executable, str(SCRIPT), "fresh", str(stamp), "0" * 64])
    assert (fresh.returncode, stale.returncode) == (0, 1)


def test_every_vit_weights_variable_keys_the_stamp():
    """stamps.py runs without the package's imports (torch), so it names the ViT weight variables itself: each
    variable of `models.VITS` must be among them, or changing that checkpoint would leave a notebook 'current'."""
    from tempscale.models import VITS

    assert {variable for _, variable in VITS.values()} <= set(stamps.STEERING)
