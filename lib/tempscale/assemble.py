"""The paper's multi-dataset and multi-model tables, assembled from whatever grid cells have run.

Each notebook writes one file per dataset and model (``table_I__cifar100_resnet50.csv``, `paths.output_path`). A
profile with a grid (`Profile.grid`: the paper's ResNet50 and ViT-S/16 on CIFAR-10, CIFAR-100 and Tiny-ImageNet, the
thesis' WRN-28-10 and ViT-B/8 LDD rows) gets, after ``./run_all.sh``, one table per stem over every cell of its grid:
``table_I__assembled.{md,csv,tex}`` has CIFAR-10, CIFAR-100 and Tiny-ImageNet side by side, as the paper prints it.
A cell that has not run (yet) is marked ``missing``, beside the paper's numbers where the paper has them: a partial
sweep still assembles.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

from . import paper
from .errors import InvalidSpecError
from .paths import figures_dir, output_tag
from .profiles import GridCell, Profile, recipe_family
from .tables import write_table

MISSING = "missing"
ASSEMBLED_SUFFIX = "assembled"


@dataclass(frozen=True)
class Assembly:
    """One per-cell table stem, the notebook that writes it, and which grid cells it covers."""

    stem: str
    notebook: str
    covers: Callable[[GridCell], bool] = lambda cell: True
    published: Callable[[str, str], pd.DataFrame] | None = None   # (arch, dataset) → the paper's numbers


def _is_vit(cell: GridCell) -> bool:
    return recipe_family(cell.arch) == "vit"


ASSEMBLIES: tuple[Assembly, ...] = (
    Assembly("table_runs", "01"),
    Assembly("table_I", "02", lambda cell: not _is_vit(cell), paper.robustness),
    Assembly("table_II", "02", _is_vit, paper.robustness),
    Assembly("table_3_9_attacks", "02", published=paper.attack_table),
    Assembly("table_3_4_corruptions", "02", published=paper.corruption_table),
    Assembly("table_III_madry", "07"),
    Assembly("table_4_4_ldd_backbones", "08"),   # the thesis' backbones side by side, as its Table 4.4
    Assembly("table_audit", "10"),
    Assembly("table_calibration", "11"),
)


def cells_for(profile: Profile, assembly: Assembly) -> list[GridCell]:
    return [cell for cell in profile.grid if assembly.notebook in cell.notebooks and assembly.covers(cell)]


def _cell_label(cell: GridCell) -> str:
    return f"{cell.dataset} / {cell.arch}"


def _read(path: Path) -> pd.DataFrame:
    """A table written by `tables.write_table`: two column levels (metric, source) when it has them, else one."""
    with path.open(encoding="utf-8") as handle:
        handle.readline()
        two_levels = handle.readline().startswith("source,")
    frame = pd.read_csv(path, header=[0, 1] if two_levels else 0, index_col=0, dtype=str, keep_default_na=False,
                        na_values=[""])   # an empty cell is a value this cell's run did not produce: shown "—"
    if not two_levels:
        frame.columns = pd.MultiIndex.from_product([list(frame.columns), ["this run"]])
    return frame


def _missing_frame(cell: GridCell, assembly: Assembly, template: pd.DataFrame | None) -> pd.DataFrame:
    """The paper's numbers for `cell` with every "this run" value `missing` (or a one-column marker)."""
    published = None
    if assembly.published is not None:
        try:
            reference = paper.VIT_SMALL if _is_vit(cell) else paper.RESNET50   # the paper's two model families
            published = assembly.published(reference, cell.dataset)
        except InvalidSpecError:              # the paper has no such table: nothing to show beside "missing"
            published = None
    if published is not None:
        columns = pd.MultiIndex.from_product([list(published.columns), ["paper", "this run"]])
        frame = pd.DataFrame(MISSING, index=published.index.astype(str), columns=columns)
        for metric in published.columns:
            frame[(metric, "paper")] = published[metric].map(lambda v: f"{v:.2f}").to_numpy()
        return frame
    if template is not None:
        return pd.DataFrame(MISSING, index=template.index, columns=template.columns)
    return pd.DataFrame({("result", "this run"): [MISSING]}, index=pd.Index(["all"]))


def assemble(profile: Profile, assembly: Assembly) -> tuple[pd.DataFrame, list[GridCell]] | None:
    """Every grid cell's table side by side (columns: dataset / model, then the cell's own), and the missing cells.

    None when the profile's grid has no cell for this stem."""
    cells = cells_for(profile, assembly)
    if not cells:
        return None
    files = {c: figures_dir(profile.name) / f"{assembly.stem}__{output_tag(c)}.csv" for c in cells}
    found = {c: _read(path) for c, path in files.items() if path.exists()}
    template = next(iter(found.values()), None)
    missing = [c for c in cells if c not in found]
    parts = {_cell_label(c): found[c] if c in found else _missing_frame(c, assembly, template) for c in cells}
    for part in parts.values():
        part.index = part.index.astype(str)
    frame = pd.concat(parts, axis=1)
    frame.index.name = "tau" if all(_is_number(i) for i in frame.index) else None
    return frame, missing


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def write_assembled(profile: Profile) -> list[Path]:
    """``<stem>__assembled.*`` for every stem the profile's grid covers; returns the Markdown paths written."""
    written = []
    for assembly in ASSEMBLIES:
        result = assemble(profile, assembly)
        if result is None:
            continue
        frame, missing = result
        gaps = ", ".join(_cell_label(c) for c in missing) or "none"
        caption = (f"{assembly.stem} over the {profile.name} grid (notebook {assembly.notebook}), one column group "
                   f"per dataset / model; cells not run yet: {gaps}")
        paths = write_table(frame, figures_dir(profile.name) / f"{assembly.stem}__{ASSEMBLED_SUFFIX}", caption)
        written.append(paths["md"])
    return written
