"""The README's results table is written from the scraps the executed notebooks recorded, never by hand."""
import pandas as pd
import pytest

from tempscale import readme
from tempscale.errors import DataNotFoundError


def _side_by_side(metrics: dict[str, list], taus: list[float]) -> pd.DataFrame:
    columns = pd.MultiIndex.from_tuples([(m, s) for m in metrics for s in ("paper", "this run")],
                                        names=["metric", "source"])
    rows = [[v for m in metrics for v in metrics[m][i]] for i in range(len(taus))]
    return pd.DataFrame(rows, index=pd.Index(taus, name="tau"), columns=columns)


@pytest.fixture
def scraps():
    taus = [1.0, 50.0]
    table_i = _side_by_side({"clean": [(95.0, 99.5), (94.0, 99.3)], "corruptions": [(70.0, 88.0), (71.0, 87.9)],
                             "pgd20": [(0.0, 72.2), (93.04, 92.2)], "cw_linf": [(19.2, 73.7), (36.1, 67.5)]}, taus)
    audit = _side_by_side({"worst_case": [(float("nan"), 72.5), (float("nan"), 60.0)]}, taus)
    audit[("verdict", "this run")] = ["no masking detected", "suspected: black-box"]
    return {"table_I": table_i, "audit_table": audit}


def test_table_has_one_row_per_tau_with_the_recorded_numbers(scraps):
    lines = readme.results_table(scraps).splitlines()
    assert len(lines) == 2 + 2
    assert lines[2] == "| 1 | 0.00 | 99.50 | 88.00 | 72.20 | 73.70 | 72.5 | no masking detected |"
    assert lines[3].startswith("| 50 | 93.04 | 99.30 |") and lines[3].endswith("| 60.0 | suspected: black-box |")


def test_update_rewrites_only_between_the_markers(tmp_path, scraps, monkeypatch):
    path = tmp_path / "README.md"
    path.write_text(f"intro\n{readme.START}\nold table\n{readme.END}\noutro\n")
    monkeypatch.setattr(readme, "read_scraps", lambda executed: scraps)
    assert readme.update_readme(path, tmp_path) is True
    text = path.read_text()
    assert text.startswith("intro\n") and text.endswith(f"{readme.END}\noutro\n") and "old table" not in text
    assert readme.update_readme(path, tmp_path) is False, "a second run with the same numbers changes nothing"


def test_missing_markers_or_notebooks_are_one_line_errors(tmp_path):
    path = tmp_path / "README.md"
    path.write_text("no markers\n")
    with pytest.raises(DataNotFoundError, match="markers"):
        readme.update_readme(path, tmp_path)
    with pytest.raises(DataNotFoundError, match="run_all.sh"):
        readme.read_scraps(tmp_path)
