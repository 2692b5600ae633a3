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
                             "pgd20": [(0.0, 2.2), (93.04, 92.2)], "cw_linf": [(19.2, 3.7), (36.1, 67.5)]}, taus)
    table_i[("pgd20", "95% CI")] = ["1.2–4.0", "89.4–94.3"]
    attacks = _side_by_side({"worst_case": [(float("nan"), 0.5), (float("nan"), 6.0)]}, taus)
    attacks[("worst_case", "95% CI")] = ["0.1–1.6", "4.2–8.5"]
    audit = _side_by_side({"worst_case": [(float("nan"), 1.0), (float("nan"), 7.0)]}, taus)
    audit[("verdict", "this run")] = ["no masking detected", "suspected: black-box"]
    return {"table_I": table_i, "table_attacks": attacks, "audit_table": audit, "audit_n": 200}


def test_table_has_one_row_per_tau_with_the_recorded_numbers(scraps):
    lines = readme.results_table(scraps).splitlines()
    assert len(lines) == 2 + 2
    assert "audit verdict (first 200 images)" in lines[0]
    assert lines[2] == ("| 1 | 0.00 | 99.5 | 88.0 | 2.2 (1.2–4.0) | — | 3.7 | — | 0.5 (0.1–1.6) | "
                        "no masking detected |")
    assert lines[3].startswith("| 50 | 93.04 | 99.3 |") and lines[3].endswith("| 6.0 (4.2–8.5) | suspected: black-box |")


def test_every_number_of_a_row_comes_from_one_eval_set(scraps):
    """The worst case is notebook 02's (the Table I images), not the audit's smaller subset."""
    lines = readme.results_table(scraps).splitlines()
    assert "| 0.5 (0.1–1.6) |" in lines[2] and "| 1.0 |" not in lines[2]


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
