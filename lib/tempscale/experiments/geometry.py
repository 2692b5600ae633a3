"""Notebooks 03–05: the geometry of f(x) per τ — cluster scores and t-SNE (Figs. 2–3), logits under PGD-20
(Fig. 5) and f(x) against the class prototypes (Figs. 6–7).

Each function turns models and `tempscale.analysis` results into the tables a notebook shows; the verdicts on the
paper's claims are computed here from those tables, whichever way they fall, and printed by the notebooks.
"""
from __future__ import annotations

import math
import warnings
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from .. import analysis as A
from ..attacks import AttackSpec, run_attack
from ..explorers import attack_explorer  # noqa: F401  (notebook 04 calls it as G.attack_explorer)
from ..profiles import Profile
from ..runs import Run

LOW_TAU, HIGH_TAU = 1.0, 10.0   # "low" is τ ≤ 1 (the usual softmax and below), "high" τ ≥ 10
STRONG_RANK = 0.7               # |Spearman ρ| from which a trend over the τ grid counts as monotone


def rank_correlations(frame: pd.DataFrame, columns: Iterable[str] | None = None) -> dict[str, float]:
    """Spearman ρ between the τ index and each column (+1: rises at every step of τ, −1: falls)."""
    from scipy.stats import spearmanr   # here: scipy.stats takes half a second to import

    columns = frame.columns if columns is None else columns
    return {c: float(spearmanr(frame.index, frame[c]).statistic) for c in columns}


def describe_rho(rho: Mapping[str, float]) -> str:
    """"name +0.93, other −0.20": rank correlations as printed under a table."""
    return ", ".join(f"{name} {value:+.2f}" for name, value in rho.items())


# --- notebook 03: clusters (Figs. 2–3) --------------------------------------------------------------------------

CLUSTER_COLUMNS = ["silhouette_cosine", "silhouette_euclidean", "davies_bouldin"]


def cluster_grid(profile: Profile) -> list[float]:
    """The τ scored: the profile's grid and the t-SNE panels' τ."""
    return sorted(set(profile.taus) | set(profile.tsne.taus))


def cluster_table(runs: Mapping[float, Run], x: torch.Tensor, y: torch.Tensor,
                  taus: Sequence[float]) -> tuple[pd.DataFrame, dict[float, torch.Tensor]]:
    """One row of cluster scores per τ on the same images, and each model's features f(x) for the t-SNE."""
    features, rows = {}, []
    for tau in taus:
        f, logits = A.extract(runs[tau].load_model(), x)
        features[tau] = f
        accuracy = 100 * (logits.argmax(1) == y).float().mean().item()
        rows.append({"tau": tau, **A.cluster_scores(f, y), "acc on these (%)": accuracy})
    return pd.DataFrame(rows).set_index("tau").drop(columns="n"), features


def tsne_embeddings(features: Mapping[float, torch.Tensor], taus: Iterable[float],
                    seed: int) -> dict[float, np.ndarray]:
    return {tau: A.tsne_embedding(features[tau], seed=seed) for tau in taus}


def cluster_verdict(scores: pd.DataFrame, rho: Mapping[str, float]) -> list[str]:
    """The paper's claim "higher τ → better clusters", judged on the cosine silhouette of the features."""
    sil = scores["silhouette_cosine"]
    best, worst = sil.idxmax(), sil.idxmin()
    low = sil.loc[[t for t in sil.index if t <= LOW_TAU]].mean()
    high = sil.loc[[t for t in sil.index if t >= HIGH_TAU]].mean() if max(sil.index) >= HIGH_TAU else math.nan
    verdict = ("supported" if rho["silhouette_cosine"] > STRONG_RANK
               else "partly supported" if high > low else "not supported")
    return [f"cosine silhouette: best at τ = {best:g} ({sil[best]:.3f}), worst at τ = {worst:g} ({sil[worst]:.3f}); "
            f"mean over τ ≤ {LOW_TAU:g}: {low:.3f}, over τ ≥ {HIGH_TAU:g}: {high:.3f}; "
            f"Spearman ρ(τ, silhouette) = {rho['silhouette_cosine']:+.2f}",
            f"paper's claim (higher τ → better clusters) at this scale: {verdict}"]


# --- notebook 04: logits under PGD-20 (Fig. 5) ------------------------------------------------------------------

FIG5_TAUS = (0.5, 1.0, 50.0, 100.0)   # the paper's Fig. 5 pairs
FIG5_COLUMNS = ["label", "pred_clean", "pred_adv", "true_logit_change", "max_other_class", "max_other_rise",
                "p_true_clean", "grad_l1"]
OVERVIEW_NAMES = {"clean_acc": "clean acc (%)", "pgd20_acc": "PGD-20 acc (%)", "flipped": "prediction flipped (%)",
                  "median_p_true": "median P_y (τ=1)", "zero_grad": "zero input gradient (%)",
                  "median_true_logit_change": "median Δ true logit"}


def fig5_taus(profile: Profile) -> list[float]:
    """Fig. 5's τ that the profile trains; it needs a low (≤ 1) and a high (≥ 50) one to compare."""
    taus = [t for t in FIG5_TAUS if t in profile.taus]
    if not (any(t <= 1 for t in taus) and any(t >= 50 for t in taus)):
        raise ValueError(f"Fig. 5 needs a low (≤ 1) and a high (≥ 50) τ in the grid; have {profile.taus}")
    return taus


def logits_under_attack(runs: Mapping[float, Run], x: torch.Tensor, y: torch.Tensor,
                        spec: AttackSpec) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every model attacked on the same images: (one row per τ, sample and class; one row per τ and sample)."""
    frames = []
    for tau, run in runs.items():
        model = run.load_model()
        x_adv = run_attack(model, x, y, spec)
        frames.append(A.logits_before_after(model, x, y, x_adv).assign(tau=tau))
    logits = pd.concat(frames, ignore_index=True)
    return logits, A.summarise_logits(logits)


def attack_overview(per_sample: pd.DataFrame) -> pd.DataFrame:
    """Per τ: clean and PGD-20 accuracy, flips, median P_y at τ = 1 and the share of exactly-zero input gradients."""
    def accuracy(pred: pd.Series) -> float:
        return 100 * (pred == per_sample.loc[pred.index, "label"]).mean()

    overview = per_sample.groupby("tau").agg(
        clean_acc=("pred_clean", accuracy),
        pgd20_acc=("pred_adv", accuracy),
        flipped=("flipped", "mean"),
        median_p_true=("p_true_clean", "median"),
        zero_grad=("grad_l1", lambda s: (s == 0).mean()),
        median_true_logit_change=("true_logit_change", "median"),
    )
    overview[["flipped", "zero_grad"]] *= 100
    return overview.rename(columns=OVERVIEW_NAMES)


def fig5_samples(per_sample: pd.DataFrame, taus: Sequence[float], n_show: int) -> list[int]:
    """The first `n_show` images every model classifies correctly and PGD-20 fools at the lowest τ: chosen to show
    the mechanism, so not typical. Untrained (smoke) models may offer fewer; the first images fill up."""
    correct = per_sample.assign(ok=per_sample["pred_clean"] == per_sample["label"]).pivot(
        index="sample", columns="tau", values="ok")
    flipped_low = per_sample[per_sample["tau"] == taus[0]].set_index("sample")["flipped"]
    mask = correct.all(axis=1) & flipped_low.reindex(correct.index).to_numpy()
    chosen = list(correct.index[mask][:n_show])
    if len(chosen) < n_show:
        warnings.warn(f"only {len(chosen)} test images are correct for every model and fooled at "
                      f"τ = {taus[0]:g}; adding the first ones", stacklevel=2)
        chosen += [s for s in correct.index if s not in chosen][:n_show - len(chosen)]
    return chosen


def fig5_sample_table(per_sample: pd.DataFrame, chosen: Sequence[int], names: Sequence[str]) -> pd.DataFrame:
    """The samples of Fig. 5, one row per (τ, sample), classes by name."""
    table = per_sample[per_sample["sample"].isin(chosen)].copy()
    for col in ("label", "pred_clean", "pred_adv", "max_other_class"):
        table[col] = [names[i] for i in table[col]]
    return table.set_index(["tau", "sample"])[FIG5_COLUMNS]


def saturation_lines(overview: pd.DataFrame) -> list[str]:
    """Per τ: PGD-20 accuracy beside the share of inputs whose gradient is exactly zero (a saturated softmax)."""
    return [f"τ = {tau:>5g}: PGD-20 accuracy {row['PGD-20 acc (%)']:5.1f}%, "
            f"zero input gradient on {row['zero input gradient (%)']:5.1f}% of clean inputs, "
            f"median P_y {row['median P_y (τ=1)']:.6f}" for tau, row in overview.iterrows()]


# --- notebook 05: f(x) against the prototypes (Figs. 6–7) -------------------------------------------------------

VARIANCE_LABELS = {"var_distance": "Euclidean distance (min-max per model)",
                   "var_cosine": "cosine similarity (min-max per model)"}
TREND_COLUMNS = ["median_var_distance", "median_var_cosine"]


def prototype_geometries(runs: Mapping[float, Run], x: torch.Tensor,
                         y: torch.Tensor) -> dict[float, A.PrototypeGeometry]:
    return {tau: A.prototype_geometry(run.load_model(), x, y) for tau, run in runs.items()}


def fig6_sample(geometries: Mapping[float, A.PrototypeGeometry]) -> int:
    """The first test image every model classifies correctly (the first image if there is none)."""
    ok_everywhere = np.all([g.preds == g.labels for g in geometries.values()], axis=0)
    return int(np.flatnonzero(ok_everywhere)[0]) if ok_everywhere.any() else 0


def value_ranges(geometries: Mapping[float, A.PrototypeGeometry]) -> pd.DataFrame:
    """Per τ, the range of the raw distances and cosines: why Fig. 7 normalises per model."""
    return pd.DataFrame({tau: {"distance min": g.distance.min(), "distance max": g.distance.max(),
                               "cosine min": g.cosine.min(), "cosine max": g.cosine.max()}
                         for tau, g in geometries.items()}).T.rename_axis("tau")


def variance_table(geometries: Mapping[float, A.PrototypeGeometry]) -> pd.DataFrame:
    """One row per (test image, τ): the variances over the negative prototypes (Fig. 7's values)."""
    return pd.concat([g.table().assign(tau=tau) for tau, g in geometries.items()], ignore_index=True)


def variance_trend(variances: pd.DataFrame) -> pd.DataFrame:
    """Per τ: median and mean variance, accuracy, and the medians over correctly classified images only."""
    trend = variances.groupby("tau").agg(
        median_var_distance=("var_distance", "median"), mean_var_distance=("var_distance", "mean"),
        median_var_cosine=("var_cosine", "median"), mean_var_cosine=("var_cosine", "mean"),
        acc=("correct", "mean"))
    correct_only = variances[variances["correct"]].groupby("tau")[["var_distance", "var_cosine"]].median()
    trend["median_var_distance (correct only)"] = correct_only["var_distance"]
    trend["median_var_cosine (correct only)"] = correct_only["var_cosine"]
    return trend


def trend_verdicts(rho: Mapping[str, float]) -> list[str]:
    """The paper reports the variance falls as τ rises: the rank correlations, then one verdict per quantity."""
    def verdict(r: float) -> str:
        if r <= -STRONG_RANK:
            return "falls with τ, as the paper reports"
        return "rises with τ, against the paper's report" if r >= STRONG_RANK else "no monotone trend with τ"

    return [f"Spearman ρ(τ, median variance): {describe_rho(rho)}",
            *(f"  {col}: {verdict(r)}" for col, r in rho.items())]


def normalisation_check(variances: pd.DataFrame) -> pd.DataFrame:
    """Per τ, the trend under three readings that do not depend on the per-model min-max: the raw cosine variance
    and the per-image coefficient of variation of the distances, beside the normalised medians."""
    return variances.groupby("tau").agg(median_var_distance=("var_distance", "median"),
                                        median_var_cosine=("var_cosine", "median"),
                                        median_var_cosine_raw=("var_cosine_raw", "median"),
                                        median_cv_distance=("cv_distance", "median"))
