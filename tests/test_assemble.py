"""The paper's multi-dataset / multi-model tables assembled from a profile's grid cells, missing cells marked."""
from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from tempscale import assemble as A
from tempscale.cli import main
from tempscale.paths import output_path, output_tag
from tempscale.profiles import GridCell, get_profile
from tempscale.tables import side_by_side, write_table

GRID = (GridCell(("01", "02"), "digits", "resnet8"),
        GridCell(("02",), "cifar100", "resnet50"),
        GridCell(("02",), "cifar10", "vit_small_patch16_224"))


@pytest.fixture
def profile(tmp_path, monkeypatch):
    monkeypatch.setenv("TEMPSCALE_FIGURES", str(tmp_path))
    return dataclasses.replace(get_profile("smoke"), grid=GRID)


def _write_cell(profile, cell, stem="table_I"):
    ours = pd.DataFrame({"clean": [97.0, 98.0], "pgd20": [0.0, 60.0]}, index=[1.0, 50.0])
    cell_profile = get_profile(profile, dataset=cell.dataset, arch=cell.arch)
    return write_table(side_by_side(ours, None, "smoke"), output_path(cell_profile, stem), caption="t")


def test_output_names_carry_dataset_and_model(profile, tmp_path):
    cell = get_profile(profile, dataset="cifar100", arch="wrn28_10")
    assert output_path(cell, "fig2_tsne") == tmp_path / "smoke" / "fig2_tsne__cifar100_wrn28_10"
    folder = get_profile("quick", dataset="imagefolder:/data/flowers")
    assert output_tag(folder) == "imagefolder-flowers_resnet8"      # no path separators in a file name


def test_missing_cells_are_marked_beside_the_papers_numbers(profile, tmp_path):
    _write_cell(profile, GRID[0])
    written = A.write_assembled(profile)
    names = sorted(p.name for p in written)
    assert names == ["table_3_4_corruptions__assembled.md", "table_3_9_attacks__assembled.md",
                     "table_II__assembled.md", "table_I__assembled.md", "table_runs__assembled.md"]
    frame, missing = A.assemble(profile, A.ASSEMBLIES[1])               # Table I: the CNN cells only
    assert [c.dataset for c in missing] == ["cifar100"]
    assert list(dict.fromkeys(frame.columns.get_level_values(0))) == ["digits / resnet8", "cifar100 / resnet50"]
    assert frame.loc["50", ("digits / resnet8", "pgd20", "this run")] == "60.00"
    assert frame.loc["0.1", ("cifar100 / resnet50", "clean", "paper")] == "70.39"   # paper Table I, CIFAR-100
    assert frame.loc["0.1", ("cifar100 / resnet50", "clean", "this run")] == A.MISSING
    assert pd.isna(frame.loc["0.1", ("digits / resnet8", "clean", "this run")])     # a τ that cell did not train
    text = (tmp_path / "smoke" / "table_II__assembled.md").read_text()
    assert "cells not run yet: cifar10 / vit_small_patch16_224" in text and "98.45" in text   # paper Table II


def test_a_cell_that_ran_replaces_missing(profile):
    _write_cell(profile, GRID[0])
    _write_cell(profile, GRID[1])
    frame, missing = A.assemble(profile, A.ASSEMBLIES[1])
    assert missing == [] and A.MISSING not in frame.to_numpy()


def test_profiles_without_a_grid_write_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("TEMPSCALE_FIGURES", str(tmp_path))
    assert A.write_assembled(get_profile("quick")) == []


def test_paper_grid_covers_every_paper_table():
    paper = get_profile("paper")
    cells = {a.stem: [(c.dataset, c.arch) for c in A.cells_for(paper, a)] for a in A.ASSEMBLIES}
    assert cells["table_I"] == [("cifar10", "resnet50"), ("cifar100", "resnet50"), ("tinyimagenet", "resnet50")]
    assert cells["table_II"] == [("cifar10", "vit_small_patch16_224"), ("cifar100", "vit_small_patch16_224")]
    assert all(cells.values()), "every assembled table has at least one cell in the paper grid"
    ldd = [(c.dataset, c.arch) for c in paper.grid if "08" in c.notebooks]
    assert sorted(cells["table_4_4_ldd_backbones"]) == sorted(ldd) == sorted(   # the thesis' Table 4.4 cells
        (dataset, arch) for dataset in ("cifar10", "cifar100")
        for arch in ("wrn28_10", "resnet50", "vit_base_patch8_224"))
    assert [(c.dataset, c.arch) for c in paper.grid if "09" in c.notebooks] == [("cifar100", "wrn28_10")]


def test_grid_command_lists_one_line_per_notebook_run(capsys):
    assert main(["grid", "--profile", "paper"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "08\tcifar100\twrn28_10" in lines and "02\ttinyimagenet\tresnet50" in lines
    assert len(lines) == len(set(lines)) == sum(len(c.notebooks) for c in get_profile("paper").grid)
    assert main(["grid", "--profile", "quick"]) == 0 and capsys.readouterr().out == ""


@pytest.mark.filterwarnings("ignore:no local pretrained weights")    # ViT without local weights: said, not tested
def test_sweep_covers_every_training_cell_of_the_grid():
    from tempscale.sweep import grid_specs
    paper = get_profile("paper")
    specs = grid_specs(paper)
    cells = {(s.dataset, s.arch) for s in specs}
    assert cells == {("cifar10", "resnet50"), ("cifar100", "resnet50"), ("tinyimagenet", "resnet50"),
                     ("cifar10", "vit_small_patch16_224"), ("cifar100", "vit_small_patch16_224")}
    assert len(specs) == 5 * len(paper.taus) * len(paper.seeds)
    assert len(set(map(repr, specs))) == len(specs)
    assert len(grid_specs(get_profile("quick"))) == len(get_profile("quick").taus)
