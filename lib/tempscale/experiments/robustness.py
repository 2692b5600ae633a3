"""Notebook 02: Tables I/II and the thesis' Tables 3.4–3.12 as "paper | this run", from `evaluate_grid`'s results.

The paper's reference is its own model family (ResNet50 → Table I, ViT-S/16 → Table II) on the profile's dataset
when the paper reports it, else CIFAR-10: a quick digits run is compared with the paper's CIFAR-10 numbers.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import pandas as pd

from .. import paper
from ..paths import figures_dir
from ..profiles import Profile
from ..tables import side_by_side, write_table

MAIN_ATTACKS = ["clean", "corruptions", "pgd20", "cw_linf"]           # Table I / II
APPENDIX_ATTACKS = ["cw_l2", "apgd_ce", "square"]                     # thesis Tables 3.9–3.12
MAIN_COLUMNS = ["clean", "corruptions", "pgd20", "cw_linf"]
ATTACK_COLUMNS = ["clean", "pgd20", "cw_linf", "cw_l2", "apgd_ce", "square", "worst_case"]
CONTRAST_COLUMNS = ["pgd20", "cw_linf", "apgd_ce", "square", "worst_case"]
PAPER_DATASETS = ("cifar10", "cifar100", "tinyimagenet")              # Table I's datasets
ATTACK_TABLE_DATASETS = ("cifar10", "cifar100")                       # Tables 3.9–3.12's datasets
VIT_REFERENCE, CNN_REFERENCE = "vit_small_patch16_224", "resnet50"
LOW_TAU, HIGH_TAU = 1.0, 10.0    # "low" is τ ≤ 1 (the usual softmax and below), "high" τ ≥ 10


@dataclass(frozen=True)
class PaperReference:
    """The published model family and dataset a profile's tables are compared with."""

    arch: str
    dataset: str

    @property
    def table_id(self) -> str:
        return "II" if self.arch.startswith("vit") else "I"

    def __str__(self) -> str:
        return f"{self.arch} on {self.dataset}"


def paper_reference(profile: Profile) -> PaperReference:
    arch = VIT_REFERENCE if profile.arch.startswith("vit") else CNN_REFERENCE
    dataset = profile.dataset if profile.dataset in PAPER_DATASETS else "cifar10"
    return PaperReference(arch, dataset)


def attack_names(appendix: bool) -> list[str]:
    """The evaluations to run: Table I's, plus the appendix's attacks when asked."""
    return MAIN_ATTACKS + (APPENDIX_ATTACKS if appendix else [])


def scale_label(profile: Profile, reports: Mapping[float, dict]) -> str:
    """What "this run" was, for every caption: the profile, its data and model, the number of images."""
    n_images = next(iter(reports.values()))["clean"]["n"]
    return f"{profile.name} profile: {profile.dataset}, {profile.arch}, {n_images} test images"


def corruption_source(reports: Mapping[float, dict]) -> str:
    """Where the -C images came from: the official files or generated from the test split."""
    return next(iter(reports.values()))["corruptions"]["source"]


def main_table(ours: pd.DataFrame, ref: PaperReference, scale: str) -> pd.DataFrame:
    """Table I / II: clean, -C, PGD-20 and C&W-L∞ per τ, the paper's numbers beside ours."""
    return side_by_side(ours[MAIN_COLUMNS], paper.robustness(ref.arch, ref.dataset), scale)


def write_main_table(table: pd.DataFrame, ref: PaperReference, profile_name: str) -> dict[str, Path]:
    return write_table(table, figures_dir(profile_name) / f"table_{ref.table_id}",
                       caption=f"Table {ref.table_id}: accuracy (%) per training τ; paper = {ref}")


def attack_table(ours: pd.DataFrame, ref: PaperReference, scale: str) -> pd.DataFrame:
    """Tables 3.9–3.12: every attack and the per-example worst case (no published numbers for other datasets)."""
    published = (paper.attack_table(ref.arch, ref.dataset)
                 if ref.dataset in ATTACK_TABLE_DATASETS else None)
    return side_by_side(ours[ATTACK_COLUMNS], published, scale)


def per_corruption(reports: Mapping[float, dict], ours: pd.DataFrame) -> pd.DataFrame:
    """Accuracy (%) per corruption and τ, with their mean (the -C column) last."""
    table = pd.DataFrame({tau: r["corruptions"]["per_corruption"] for tau, r in reports.items()}).T * 100
    table.index = pd.Index(table.index.astype(float), name="tau")
    table["corruptions"] = ours["corruptions"]
    return table


def write_appendix_tables(per_attack: pd.DataFrame, corruptions: pd.DataFrame, ref: PaperReference,
                          scale: str, severity: int, profile_name: str) -> list[Path]:
    """figures/table_3_9_attacks.* and figures/table_3_4_corruptions.* (the latter beside the thesis' numbers)."""
    out = figures_dir(profile_name)
    attacks = write_table(per_attack, out / "table_3_9_attacks",
                          caption=f"Tables 3.9-3.12: accuracy (%) under each attack; paper = {ref}")
    published = paper.corruption_table(ref.arch, ref.dataset)
    corr = write_table(side_by_side(corruptions, published, scale), out / "table_3_4_corruptions",
                       caption=f"Tables 3.4-3.8: accuracy (%) per corruption at severity {severity}; "
                               f"paper = {ref}")
    return [*attacks.values(), *corr.values()]


def low_high_contrast(ours: pd.DataFrame) -> pd.DataFrame:
    """Mean accuracy (%) over the low τ (≤ 1) and the high τ (≥ 10) per attack; empty when one side is missing."""
    low = [t for t in ours.index if t <= LOW_TAU]
    high = [t for t in ours.index if t >= HIGH_TAU]
    columns = [c for c in CONTRAST_COLUMNS if c in ours]
    if not (low and high):
        return pd.DataFrame(columns=[f"τ ≤ {LOW_TAU:g}", f"τ ≥ {HIGH_TAU:g}"])
    return pd.DataFrame({f"τ ≤ {LOW_TAU:g}": ours.loc[low, columns].mean(),
                         f"τ ≥ {HIGH_TAU:g}": ours.loc[high, columns].mean()}).rename_axis("metric")
