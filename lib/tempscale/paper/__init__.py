"""Every number the paper (Tables I–III) and the thesis (Tables 3.4–3.12, 4.1–4.6) report, read from data files.

Why this package exists: every regenerated table shows "paper | this run" side by side, so the published numbers
must live in one place, typed, with canonical keys, instead of being retyped into notebooks.

The numbers live in ``tables/``: one CSV per table, each number written exactly as printed in the source, rows and
columns in printed order (headers are this package's keys); nothing is "fixed". ``tables/metadata.json`` holds each
table's caption, source and notes (where the sources disagree; both versions stay as printed, ``PaperTable.notes``)
and the layout this loader needs.
Thesis Tables 3.1–3.3 repeat paper Tables I–III cell for cell: they are aliases (``ALIASES``), not copies.
Accuracies are percentages; τ-indexed frames have a float index named ``"tau"``.

Frames (``table(id)``):
- ``"I"``, ``"II"``: index τ; columns MultiIndex (dataset, metric), metric in ``clean, corruptions, pgd20, cw_linf``.
- ``"III"``: index τ; columns ``clean, pgd20`` (printed transposed, one row per metric; stored one row per τ).
- ``"3.4"``–``"3.8"``: index τ; columns ``clean``, the corruption keys, ``corruptions`` (the printed Average), in
  printed order (the two printed halves side by side). ``corruption_table()`` returns them in ``CORRUPTION_KEYS``
  order.
- ``"3.9"``–``"3.12"``: index τ; columns ``clean, pgd20, cw_linf, cw_l2, apgd_ce, square``.
- ``"4.1"``–``"4.6"`` (LDD, thesis chapter 4): small frames described in each table's ``caption``.
  ``ldd_table(id)`` is ``table(id)`` restricted to these ids.
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import pandas as pd

from tempscale.errors import InvalidSpecError

METRIC_KEYS: tuple[str, ...] = ("clean", "corruptions", "pgd20", "cw_linf", "cw_l2", "apgd_ce", "square")

# Official CIFAR-10-C file names, in the order tempscale.corruptions.CORRUPTIONS uses (not imported: that module is
# someone else's and this one must import without it).
CORRUPTION_KEYS: tuple[str, ...] = (
    "gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise", "defocus_blur", "glass_blur", "motion_blur",
    "zoom_blur", "gaussian_blur", "snow", "frost", "fog", "brightness", "spatter", "contrast", "elastic_transform",
    "pixelate", "jpeg_compression", "saturate",
)

RESNET50 = "resnet50"
VIT_SMALL = "vit_small_patch16_224"

_TABLE_DIR = resources.files(__name__) / "tables"


@dataclass(frozen=True)
class PaperTable:
    """One published table: where it comes from, what it says, and its numbers as a fresh DataFrame on each call."""

    id: str
    caption: str
    source: str  # "paper" or "thesis"
    notes: tuple[str, ...] = ()  # inconsistencies with other tables, as found; the numbers stay as printed
    printed_as: str = ""  # how its caption starts in the source text, e.g. "TABLE I", "Table 3.9"
    file: str = field(default="", repr=False)  # its CSV in tables/
    index: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # (name, dtype) of each row-label column
    columns: tuple[str | None, ...] = field(default=(None,), repr=False)  # one level name per CSV header row
    shape: tuple[int, int] = field(default=(0, 0), repr=False)  # (rows, value columns)
    attrs: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)  # extra DataFrame.attrs

    def build(self) -> pd.DataFrame:
        """The CSV as a float frame with the declared row labels, column level names and extra attrs."""
        # Every cell is read as text and converted here, so the declared dtypes, not pandas' guesses, decide.
        with (_TABLE_DIR / self.file).open(encoding="utf-8") as handle:
            frame = pd.read_csv(handle, header=list(range(len(self.columns))), index_col=list(range(len(self.index))),
                                dtype=str, keep_default_na=False)
        frame = frame.astype("float64")
        frame.index = _typed_index(frame.index, self.index)
        frame.columns = frame.columns.set_names(list(self.columns))
        frame.attrs.update(copy.deepcopy(self.attrs))  # a copy: callers may edit attrs, the registry must not change
        return frame

    def frame(self) -> pd.DataFrame:
        """A new frame every call, so a caller that edits it cannot change the published numbers for anyone else."""
        frame = self.build()
        frame.attrs.update({"table": self.id, "source": self.source, "caption": self.caption})
        return frame


def _typed_index(index: pd.Index, levels: tuple[tuple[str, str], ...]) -> pd.Index:
    """The CSV's row labels with the declared names and dtypes (a MultiIndex when there are several)."""
    arrays = [index.get_level_values(i).astype(dtype) for i, (_, dtype) in enumerate(levels)]
    names = [name for name, _ in levels]
    if len(arrays) == 1:
        return pd.Index(arrays[0], name=names[0])
    return pd.MultiIndex.from_arrays(arrays, names=names)


def _paper_table(table_id: str, meta: dict[str, Any]) -> PaperTable:
    return PaperTable(id=table_id, caption=meta["caption"], source=meta["source"], notes=tuple(meta["notes"]),
                      printed_as=meta["printed_as"], file=meta["file"], index=tuple(meta["index"].items()),
                      columns=tuple(meta["columns"]), shape=(meta["shape"][0], meta["shape"][1]),
                      attrs=meta.get("attrs", {}))


_METADATA: dict[str, Any] = json.loads((_TABLE_DIR / "metadata.json").read_text(encoding="utf-8"))
TABLES: dict[str, PaperTable] = {i: _paper_table(i, meta) for i, meta in _METADATA["tables"].items()}
ALIASES: dict[str, str] = dict(_METADATA["aliases"])  # thesis ids that repeat a paper table
LDD_TABLE_IDS: tuple[str, ...] = ("4.1", "4.2", "4.3", "4.4", "4.5", "4.6")

# The thesis' corruption column labels → canonical keys. "Gauss." is printed twice (under Noise and under Blur), so
# the key is (group, label). The groups are the thesis' own (it files Spatter under Noise and Elastic under Weather).
THESIS_CORRUPTION_LABELS: dict[tuple[str, str], str] = {
    (group, label): key for group, labels in _METADATA["corruption_labels"].items() for label, key in labels.items()
}

# (arch, dataset) → table id, one map per accessor.
_ROBUSTNESS_SOURCES = {(RESNET50, "cifar10"): "I", (RESNET50, "cifar100"): "I", (RESNET50, "tinyimagenet"): "I",
                       (VIT_SMALL, "cifar10"): "II", (VIT_SMALL, "cifar100"): "II"}
_ATTACK_SOURCES = {(RESNET50, "cifar10"): "3.9", (RESNET50, "cifar100"): "3.10",
                   (VIT_SMALL, "cifar10"): "3.11", (VIT_SMALL, "cifar100"): "3.12"}
_CORRUPTION_SOURCES = {(RESNET50, "cifar10"): "3.4", (RESNET50, "cifar100"): "3.5", (RESNET50, "tinyimagenet"): "3.6",
                       (VIT_SMALL, "cifar10"): "3.7", (VIT_SMALL, "cifar100"): "3.8"}


def table(table_id: str) -> pd.DataFrame:
    """The published table ``table_id`` ("I", "3.9", "4.2"; thesis "3.1"–"3.3" resolve to "I"–"III") as a frame."""
    key = str(table_id).strip()
    key = ALIASES.get(key, key)
    if key not in TABLES:
        valid = ", ".join([*TABLES, *ALIASES])
        raise InvalidSpecError(f"unknown table id {table_id!r}; valid ids: {valid}")
    return TABLES[key].frame()


def ldd_table(table_id: str) -> pd.DataFrame:
    """One of the thesis' LDD tables (4.1–4.6); separate so a typo cannot silently fetch a τ table instead."""
    if str(table_id).strip() not in LDD_TABLE_IDS:
        raise InvalidSpecError(f"unknown LDD table id {table_id!r}; valid ids: {', '.join(LDD_TABLE_IDS)}")
    return table(table_id)


def _source_for(sources: dict[tuple[str, str], str], arch: str, dataset: str, what: str) -> str:
    """Table id for (arch, dataset), or an error naming every valid pair so the caller can fix the spec."""
    if (arch, dataset) not in sources:
        valid = ", ".join(f"({a!r}, {d!r})" for a, d in sources)
        raise InvalidSpecError(f"no published {what} for arch={arch!r}, dataset={dataset!r}; valid: {valid}")
    return sources[(arch, dataset)]


def robustness(arch: str, dataset: str) -> pd.DataFrame:
    """Clean, mean -C, PGD20 and C&W-L∞ accuracy per τ (paper Table I for ResNet50, Table II for ViT)."""
    table_id = _source_for(_ROBUSTNESS_SOURCES, arch, dataset, "robustness table")
    frame = table(table_id)[dataset].copy()
    frame.columns.name = None
    frame.attrs.update({"table": table_id, "arch": arch, "dataset": dataset})
    return frame


def attack_table(arch: str, dataset: str) -> pd.DataFrame:
    """Clean, PGD20, C&W-L∞, C&W-L2, APGD-CE and Square accuracy per τ (thesis Tables 3.9–3.12)."""
    table_id = _source_for(_ATTACK_SOURCES, arch, dataset, "attack table")
    frame = table(table_id)
    frame.attrs.update({"arch": arch, "dataset": dataset})
    return frame


def corruption_table(arch: str, dataset: str) -> pd.DataFrame:
    """Clean, per-corruption and mean (``corruptions``) accuracy per τ (thesis Tables 3.4–3.8), columns ordered as
    ``CORRUPTION_KEYS`` so they line up with this project's own corruption results; absent corruptions are absent."""
    table_id = _source_for(_CORRUPTION_SOURCES, arch, dataset, "corruption table")
    printed = table(table_id)
    order = ["clean", *[k for k in CORRUPTION_KEYS if k in printed.columns], "corruptions"]
    frame = printed[order].copy()
    frame.attrs.update({"arch": arch, "dataset": dataset})
    return frame


def madry_at() -> pd.DataFrame:
    """Clean and PGD20 accuracy per τ of Madry adversarial training with τ on the clean term (paper Table III)."""
    return table("III")
