"""Notebook 07: Madry adversarial training with τ on the clean term (paper Table III), beside the paper.

One AT run per τ plus a standard τ = 1 run with the same epochs (what AT buys at the profile's scale), all scored by
`tempscale.evaluation.evaluate_run` (clean and PGD-20 at τ = 1) on the profile's ``madry.n_eval`` test images.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .. import paper
from ..evaluation import evaluate_run
from ..methods.madry import madry_args
from ..paths import output_path
from ..profiles import Profile
from ..runs import Run, get_or_train_each
from ..spec import RunSpec
from ..tables import format_tau, side_by_side, write_table

METRICS = ("clean", "pgd20")
TABLE_STEM = "table_III_madry"
CAPTION = "Table III: Madry adversarial training with τ on the clean term (Eq. 12), accuracy (%)"


def madry_spec(profile: Profile, tau: float, **overrides) -> RunSpec:
    """The RunSpec of one Madry AT run under the profile's ``madry`` section (notebooks 07 and 08 share it)."""
    section = profile.madry
    if section.epochs is not None:
        overrides.setdefault("epochs", section.epochs)
    return profile.spec(tau, method="madry", method_args=training_attack(profile), **overrides)


def training_attack(profile: Profile) -> dict:
    """The "madry" method_args: the profile's training PGD, at its threat model unless the section sets ε."""
    section = profile.madry
    eps = profile.attacks.eps if section.eps is None else section.eps
    return madry_args(eps=eps, steps=section.steps, alpha=section.alpha)


def standard_spec(profile: Profile) -> RunSpec:
    """The reference without AT: τ = 1 cross-entropy with the AT runs' epochs."""
    epochs = profile.madry.epochs
    return profile.spec(1.0, **({} if epochs is None else {"epochs": epochs}))


def table_iii_taus(profile: Profile, taus=None) -> tuple[float, ...]:
    """The τ to train: `taus` when given; the profile's own grid at smoke; Table III's grid otherwise."""
    if taus is None:
        taus = profile.taus if profile.name == "smoke" else paper.madry_at().index
    return tuple(float(t) for t in taus)


def evaluate(run: Run, profile: Profile) -> dict:
    """Clean and PGD-20 (τ = 1) of a stored run on the profile's Madry eval set: `evaluate_run`'s report."""
    return evaluate_run(run, list(METRICS), profile, n_eval=profile.eval_n(profile.madry.n_eval))


def accuracies(report: dict) -> dict[str, float]:
    return {name: 100 * report[name]["accuracy"] for name in METRICS}


@dataclass
class MadryStudy:
    """Table III at the profile's scale: our accuracies beside the paper's, and the reference without AT."""

    profile: Profile
    runs: dict[float, Run]
    standard: Run
    table: pd.DataFrame                 # side_by_side: (metric, source) columns, one row per τ
    no_at: dict[str, float]             # the standard run's accuracies (%)
    n_images: int

    def describe(self) -> str:
        a = training_attack(self.profile)
        lines = [f"profile {self.profile.name}: τ = {tuple(self.runs)}",
                 f"training PGD: ε = {a['eps'] * 255:.0f}/255, step {a['alpha'] * 255:.1f}/255, {a['steps']} "
                 f"steps, random start, crafted in {a['craft_mode']} mode; epochs: "
                 f"{self.profile.madry.epochs or 'the profile default'}"]
        for tau, run in self.runs.items():
            r = run.result
            lines.append(f"{format_tau(tau):>10}: {run.dir.name}  epochs {r['epochs_done']}  clean "
                         f"{r['clean_acc']:.3f}" + (f"  DIVERGED at epoch {r['diverged_epoch']}" if r["diverged"]
                                                    else ""))
        lines.append(f"{self.n_images} test images; standard training (no AT): clean {self.no_at['clean']:.2f}%, "
                     f"PGD-20 {self.no_at['pgd20']:.2f}%")
        return "\n".join(lines)

    def write(self) -> dict[str, Path]:
        return write_table(self.table, output_path(self.profile, TABLE_STEM), caption=CAPTION)

    def findings(self) -> list[str]:
        """The paper's claim (PGD-20 rises with τ at a small clean cost) in numbers, for both sources."""
        return madry_findings(self.table, self.no_at["pgd20"])


def run_madry_study(profile: Profile, taus=None) -> MadryStudy:
    """Train (or reuse) every run of Table III at the profile's scale and score them; nothing is written."""
    taus = table_iii_taus(profile, taus)
    *trained, standard = get_or_train_each([madry_spec(profile, tau) for tau in taus] + [standard_spec(profile)])
    runs = dict(zip(taus, trained))
    scores = {tau: accuracies(evaluate(run, profile)) for tau, run in runs.items()}
    reference = evaluate(standard, profile)
    no_at, n_images = accuracies(reference), reference["clean"]["n"]
    ours = pd.DataFrame(scores).T
    ours.index.name = "tau"
    spec0, a = runs[taus[0]].spec, training_attack(profile)
    scale = (f"{profile.name} profile: {spec0.dataset} {spec0.image_size or 'native'}px, {spec0.arch}, "
             f"{spec0.epochs} epochs of AT (training PGD {a['steps']} × {a['alpha'] * 255:.1f}/255, "
             f"ε {a['eps'] * 255:.0f}/255), PGD-20 on {n_images} test images; paper: ResNet50, CIFAR-10")
    table = side_by_side(ours, paper.madry_at(), scale)
    return MadryStudy(profile, runs, standard, table, no_at, n_images)


def _spearman(s: pd.Series) -> float:
    s = s.dropna()
    return float(np.corrcoef(s.index.to_series().rank(), s.rank())[0, 1]) if len(s) > 2 else float("nan")


def madry_findings(table: pd.DataFrame, no_at_pgd20: float) -> list[str]:
    """Printed, not asserted: PGD-20 at τ = 1, the best τ, the rank correlation of τ and PGD-20, the clean range."""
    lines = []
    for source in ("paper", "this run"):
        col = table[("pgd20", source)].dropna()
        if len(col) == 0:
            continue
        clean = table[("clean", source)].dropna()
        lines.append(f"{source:>8}: PGD-20 at τ = 1 {col.get(1.0, float('nan')):.2f}%, best τ = {col.idxmax():g} "
                     f"({col.max():.2f}%), Spearman ρ(τ, PGD-20) = {_spearman(col):+.2f}; clean from "
                     f"{clean.min():.2f} to {clean.max():.2f}%")
    col = table[("pgd20", "this run")].dropna()
    higher = col[col.index > 1]
    if 1.0 in col.index and len(higher):
        published = paper.madry_at()["pgd20"]
        verdict = "above" if higher.mean() > col[1.0] else "not above"
        lines.append(f"this run: mean PGD-20 over τ > 1 is {higher.mean():.2f}%, {verdict} τ = 1 ({col[1.0]:.2f}%) "
                     f"— the paper has the τ > 1 mean {published[published.index > 1].mean():.2f}% above τ = 1 "
                     f"({published[1.0]:.2f}%).")
    lines.append(f"AT vs no AT at τ = 1 here: PGD-20 {col.get(1.0, float('nan')):.2f}% vs {no_at_pgd20:.2f}%")
    return lines


__all__ = ["madry_spec", "standard_spec", "table_iii_taus", "evaluate", "accuracies", "MadryStudy", "run_madry_study",
           "madry_findings"]
