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
from ..attacks import ATTACKS
from ..evaluation import evaluate_grid, interval_table
from ..paths import output_path
from ..profiles import PAPER_EPS, Profile
from ..runs import Run
from ..tables import INTERVAL, side_by_side, with_intervals, write_table

MAIN_ATTACKS = ["clean", "corruptions", "pgd20", "cw_linf"]           # Table I / II
APPENDIX_ATTACKS = ["cw_l2", "apgd_ce", "square", "autoattack", "pgd20_targeted"]   # Tables 3.9–3.12, Sec. V-E
MAIN_COLUMNS = ["clean", "corruptions", "pgd20", "cw_linf"]
ATTACK_COLUMNS = ["clean", "pgd20", "cw_linf", "cw_l2", "apgd_ce", "square", "autoattack", "worst_case"]
TARGETED_COLUMNS = ["pgd20", "pgd20_targeted"]                        # Sec. V-E: untargeted vs targeted
CW_L2_MEDIAN = "cw_l2 median L2"       # C&W-L2's median distance (the cw_l2 column: accuracy at its L2 radius)
PAPER_EPS_COLUMN = "pgd20 at 8/255"     # PGD-20 at the paper's ε, beside a profile whose threat model differs
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


def threat_model(profile: Profile) -> str:
    """The profile's L∞ radius in words, for captions."""
    eps = profile.attacks.eps
    text = f"L∞ ε = {eps_text(eps)}"
    return text if eps == PAPER_EPS else f"{text} (paper: {eps_text(PAPER_EPS)}; see ASSUMPTIONS)"


def eps_text(eps: float) -> str:
    value = eps * 255
    return f"{value:.0f}/255" if abs(value - round(value)) < 1e-6 else f"{eps:.4g}"


def at_paper_eps(runs: Mapping[float, Run], profile: Profile, n_eval: int | None = None) -> pd.DataFrame:
    """PGD-20 accuracy (%) per τ at the paper's ε = 8/255 — empty when the profile's threat model is the paper's."""
    if profile.attacks.eps == PAPER_EPS:
        return pd.DataFrame(index=pd.Index([], dtype=float, name="tau"))
    paper_pgd = {"pgd20": {"eps": PAPER_EPS, "alpha": ATTACKS["pgd20"].alpha * PAPER_EPS / ATTACKS["pgd20"].eps}}
    table, reports = evaluate_grid(dict(runs), ["pgd20"], profile, n_eval=n_eval, budgets=paper_pgd)
    out = table[["pgd20"]].rename(columns={"pgd20": PAPER_EPS_COLUMN})
    out.attrs["intervals"] = interval_table(reports)[["pgd20"]].rename(columns={"pgd20": PAPER_EPS_COLUMN})
    return out


def main_table(ours: pd.DataFrame, ref: PaperReference, scale: str, intervals: pd.DataFrame | None = None,
               paper_eps: pd.DataFrame | None = None) -> pd.DataFrame:
    """Table I / II: clean, -C, PGD-20 and C&W-L∞ per τ, the paper's numbers beside ours, with 95% intervals over
    images when given, and PGD-20 at the paper's ε when the profile attacks at another."""
    columns = ours[MAIN_COLUMNS]
    if paper_eps is not None and len(paper_eps.columns):
        columns = columns.join(paper_eps)
        intervals = None if intervals is None else intervals.join(paper_eps.attrs["intervals"])
    table = side_by_side(columns, paper.robustness(ref.arch, ref.dataset), scale)
    return table if intervals is None else with_intervals(table, intervals)


def write_main_table(table: pd.DataFrame, ref: PaperReference, profile: Profile) -> dict[str, Path]:
    return write_table(table, output_path(profile, f"table_{ref.table_id}"),
                       caption=f"Table {ref.table_id}: accuracy (%) per training τ, {threat_model(profile)}, "
                               f"95% Wilson intervals over images; paper = {ref}")


def attack_table(ours: pd.DataFrame, ref: PaperReference, scale: str, intervals: pd.DataFrame | None = None,
                 reports: Mapping[float, dict] | None = None) -> pd.DataFrame:
    """Tables 3.9–3.12: every attack and the per-example worst case (no published numbers for other datasets),
    plus C&W-L2's median L2 distance when `reports` hold it (failures count as ∞)."""
    published = (paper.attack_table(ref.arch, ref.dataset)
                 if ref.dataset in ATTACK_TABLE_DATASETS else None)
    columns = ours[[c for c in ATTACK_COLUMNS if c in ours]].copy()
    medians = {tau: r["cw_l2"]["median_l2"] for tau, r in (reports or {}).items() if "median_l2" in r.get("cw_l2", {})}
    if medians:
        columns[CW_L2_MEDIAN] = pd.Series(medians).reindex(columns.index.astype(float)).to_numpy()
    table = side_by_side(columns, published, scale)
    return table if intervals is None else with_intervals(table, intervals)


def targeted_table(ours: pd.DataFrame, intervals: pd.DataFrame) -> pd.DataFrame:
    """Sec. V-E: accuracy (%) under untargeted PGD-20 and under PGD-20 towards a random wrong class, per τ, with
    their 95% intervals and the rise over τ = 1 (the paper: high τ helps against the first, not the second)."""
    out = pd.DataFrame(index=ours.index)
    for name in TARGETED_COLUMNS:
        out[name] = ours[name]
        out[f"{name} {INTERVAL}"] = intervals[name]
        if 1.0 in ours.index:
            out[f"{name} − τ=1"] = ours[name] - ours.loc[1.0, name]
    return out


def per_corruption(reports: Mapping[float, dict], ours: pd.DataFrame) -> pd.DataFrame:
    """Accuracy (%) per corruption and τ, with their mean (the -C column) last."""
    table = pd.DataFrame({tau: r["corruptions"]["per_corruption"] for tau, r in reports.items()}).T * 100
    table.index = pd.Index(table.index.astype(float), name="tau")
    table["corruptions"] = ours["corruptions"]
    return table


def write_appendix_tables(per_attack: pd.DataFrame, corruptions: pd.DataFrame, ref: PaperReference,
                          scale: str, severity: int, profile: Profile) -> list[Path]:
    """table_3_9_attacks__<dataset>_<arch>.* and table_3_4_corruptions__….* (the latter beside the thesis' numbers)."""
    attacks = write_table(per_attack, output_path(profile, "table_3_9_attacks"),
                          caption=f"Tables 3.9-3.12: accuracy (%) under each attack, {threat_model(profile)}; "
                                  f"cw_l2: this run at L2 radius {ATTACKS['cw_l2'].eps:g} after Carlini & Wagner's "
                                  f"binary search over c (its median L2 distance beside it), the thesis with one "
                                  f"fixed c = 0.01; 95% Wilson intervals over images; paper = {ref}")
    published = paper.corruption_table(ref.arch, ref.dataset)
    corr = write_table(side_by_side(corruptions, published, scale), output_path(profile, "table_3_4_corruptions"),
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
