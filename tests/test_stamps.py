"""run_all.sh's up-to-date stamps: a notebook is skipped only when its inputs are unchanged and its outputs intact."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
    marker = tmp_path / "marker"
    marker.touch()
    executed = tmp_path / "executed.ipynb"
    executed.write_text("executed")
    figures = tmp_path / "figures"
    figures.mkdir(exist_ok=True)
    (figures / "table__digits_resnet8.csv").write_text("1,2\n")
    stamp = tmp_path / "nb.stamp"
    stamps.record(stamp, key, marker, executed, figures)
    return stamp, executed, figures / "table__digits_resnet8.csv"


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


def test_record_keeps_only_what_the_run_wrote(tmp_path):
    figures = tmp_path / "figures"
    figures.mkdir()
    old = figures / "other_notebook.png"
    old.write_bytes(b"old")
    import os
    os.utime(old, ns=(1, 1))                               # written long before this run started
    stamp, _, table = _run_once(tmp_path)
    recorded = stamp.read_text()
    assert str(table) in recorded and str(old) not in recorded


def test_script_exit_codes(project, tmp_path):
    notebook, _ = project
    key = subprocess.run([sys.executable, str(SCRIPT), "key", str(notebook), "quick"], capture_output=True,
                         text=True, check=True).stdout.strip()
    assert len(key) == 64
    stamp, _, _ = _run_once(tmp_path, key)
    fresh = subprocess.run([sys.executable, str(SCRIPT), "fresh", str(stamp), key])
    stale = subprocess.run([sys.executable, str(SCRIPT), "fresh", str(stamp), "0" * 64])
    assert (fresh.returncode, stale.returncode) == (0, 1)
