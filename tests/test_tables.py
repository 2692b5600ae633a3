"""tempscale.tables: "paper | this run" frames and the three files written from them."""
from __future__ import annotations

import math
import os

import numpy as np
import pandas as pd
import pytest

from tempscale import paper, tables

SCALE = "quick profile: digits, resnet8, 450 test images"


@pytest.fixture
def ours() -> pd.DataFrame:
    """A run at τ 1, 50 and 150 (150 is not in Table I), with a metric (square) Table I does not report."""
    return pd.DataFrame({"pgd20": [0.0, 31.25, 40.5], "clean": [97.5, 96.0, 50.125], "square": [1.0, 2.0, 3.0]},
                        index=pd.Index([1, 50, 150], name="tau"))


@pytest.fixture
def table(ours) -> pd.DataFrame:
    return tables.side_by_side(ours, paper.robustness("resnet50", "cifar10"), SCALE)


def test_rows_are_the_sorted_union_of_tau(table):
    assert list(table.index) == [0.1, 0.5, 1.0, 10.0, 30.0, 50.0, 70.0, 100.0, 150.0]
    assert table.index.name == "tau"


def test_columns_follow_ours_with_paper_then_this_run(table):
    assert list(table.columns) == [("pgd20", "paper"), ("pgd20", "this run"), ("clean", "paper"),
                                   ("clean", "this run"), ("square", "paper"), ("square", "this run")]
    assert table.columns.names == ["metric", "source"]


def test_values_land_in_the_right_cells(table):
    assert table.loc[30.0, ("pgd20", "paper")] == 91.09
    assert table.loc[50.0, ("pgd20", "this run")] == 31.25
    assert table.loc[1.0, ("clean", "paper")] == 94.26 and table.loc[1.0, ("clean", "this run")] == 97.5


def test_missing_cells_are_nan(table):
    assert table[("square", "paper")].isna().all()             # metric the paper lacks
    assert math.isnan(table.loc[150.0, ("clean", "paper")])     # τ the paper lacks
    assert math.isnan(table.loc[10.0, ("clean", "this run")])   # τ this run lacks
    assert table.attrs["scale"] == SCALE


def test_no_paper_gives_all_nan_paper_columns(ours):
    table = tables.side_by_side(ours, None, SCALE)
    assert list(table.index) == [1.0, 50.0, 150.0]
    assert table.xs("paper", axis=1, level="source").isna().all().all()
    np.testing.assert_array_equal(table.xs("this run", axis=1, level="source").to_numpy(), ours.to_numpy())


def test_integer_and_float_tau_are_the_same_row():
    ours = pd.DataFrame({"clean": [1.0]}, index=[50])
    published = pd.DataFrame({"clean": [2.0]}, index=[50.0])
    assert tables.side_by_side(ours, published, SCALE).shape == (1, 2)


@pytest.mark.parametrize("tau, label", [(0.5, "τ = 0.5"), (50, "τ = 50"), (50.0, "τ = 50"), (0.1, "τ = 0.1"),
                                        (150.0, "τ = 150")])
def test_format_tau(tau, label):
    assert tables.format_tau(tau) == label


def test_format_tau_latex():
    assert tables.format_tau(0.5, latex=True) == r"$\tau = 0.5$"


def test_write_table_writes_three_readable_files(tmp_path, table):
    stem = tmp_path / "new" / "dir" / "table_3.9"  # parent folders do not exist; the dot must survive
    paths = tables.write_table(table, stem, caption="Table I: ResNet50 on CIFAR-10")
    assert paths == {fmt: tmp_path / "new" / "dir" / f"table_3.9.{fmt}" for fmt in ("md", "csv", "tex")}
    assert all(p.is_file() for p in paths.values())
    assert not [p for p in paths["md"].parent.iterdir() if p.name.endswith(".tmp")]  # no temp files left


def test_csv_round_trip_equals_the_data(tmp_path, table):
    paths = tables.write_table(table, tmp_path / "t")
    back = pd.read_csv(paths["csv"], header=[0, 1], index_col=0)
    pd.testing.assert_frame_equal(back, table.round(2), check_names=False, check_column_type=False)
    assert back.index.name == "tau"


def test_csv_keeps_small_tau_distinct(tmp_path):
    table = tables.side_by_side(pd.DataFrame({"clean": [1.0, 2.0]}, index=[0.005, 0.01]), None, SCALE)
    back = pd.read_csv(tables.write_table(table, tmp_path / "t")["csv"], header=[0, 1], index_col=0)
    assert list(back.index) == [0.005, 0.01]


def test_markdown_shows_caption_scale_tau_labels_and_dashes(tmp_path, table):
    text = tables.write_table(table, tmp_path / "t", caption="Table I: ResNet50")["md"].read_text(encoding="utf-8")
    first_line = text.splitlines()[0]
    assert "Table I: ResNet50" in first_line and SCALE in first_line
    assert "τ = 0.1" in text and "τ = 150" in text
    assert "—" in text and "nan" not in text.lower()
    row_50 = next(line for line in text.splitlines() if line.startswith("| τ = 50 "))
    assert [cell.strip() for cell in row_50.split("|")[2:-1]] == ["93.04", "31.25", "94.92", "96.00", "—", "2.00"]


def test_latex_contains_caption_and_escapes(tmp_path, table):
    text = tables.write_table(table, tmp_path / "t", caption="Robust accuracy (%) & cw_linf")["tex"].read_text(
        encoding="utf-8")
    assert r"\caption{Robust accuracy (\%) \& cw\_linf" in text
    assert SCALE in text
    assert r"$\tau = 0.5$" in text and "---" in text and "nan" not in text.lower()
    assert r"\begin{tabular}" in text


def test_write_table_handles_non_tau_tables(tmp_path):
    paths = tables.write_table(paper.table("4.4"), tmp_path / "ldd", caption="Table 4.4")
    assert "Madry et al. 2018" in paths["md"].read_text(encoding="utf-8")
    back = pd.read_csv(paths["csv"], header=[0, 1], index_col=[0, 1])
    np.testing.assert_allclose(back.to_numpy(), paper.table("4.4").to_numpy())


def test_rewrite_replaces_atomically(tmp_path, table, monkeypatch):
    stem = tmp_path / "t"
    tables.write_table(table, stem, caption="first")
    calls = []
    real_replace = os.replace
    monkeypatch.setattr("tempscale.io.os.replace", lambda src, dst: calls.append(dst) or real_replace(src, dst))
    tables.write_table(table, stem, caption="second")
    assert sorted(os.path.basename(p) for p in calls) == ["t.csv", "t.md", "t.tex"]
    assert "second" in (tmp_path / "t.md").read_text(encoding="utf-8")
