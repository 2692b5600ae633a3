"""Notebook hygiene: stored without outputs, a header that says what each regenerates, a `parameters` cell."""
import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_notebooks_exist():
    assert NOTEBOOKS, "no notebooks found under notebooks/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_without_outputs(path):
    nb = json.loads(path.read_text())
    dirty = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count"))]
    assert not dirty, f"{path.name}: cells {dirty} hold outputs; clear them (Kernel → Restart & Clear Output) before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_header_and_parameters(path):
    cells = json.loads(path.read_text())["cells"]
    header = "".join(cells[0]["source"])
    assert cells[0]["cell_type"] == "markdown"
    assert any(word in header for word in ("Fig", "Table")), f"{path.name}: the first cell must name its figure/table"
    assert "smoke" in header and "quick" in header, f"{path.name}: the first cell must give the runtime per profile"
    tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1 and tagged[0] is cells[1], f"{path.name}: cell 2 must be the one tagged `parameters`"
    assert "profile" in "".join(tagged[0]["source"])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_uses_project_kernel(path):
    assert json.loads(path.read_text())["metadata"]["kernelspec"]["name"] == "tempscale"
