"""Notebook 11: how the training τ changes confidence calibration, and whether post-hoc temperature scaling
(Guo et al. 2017, the paper's ref. [21]) undoes it.

Every model is read at three temperatures on the same held-out images:

- ``τ = 1``: softmax(z), the confidence the paper evaluates and attacks (Sec. V-A);
- ``τ_train``: softmax(z/τ_train), the softmax the model was trained with;
- ``T*``: softmax(z/T*), T* fitted per model by minimising the NLL on a separate held-out split (post-hoc scaling).

The expected calibration error comes from torchmetrics (`MulticlassCalibrationError`, top-label, equal-width bins);
the reliability curve is scikit-learn's `calibration_curve` on (correct, confidence), the same top-label binning.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import pandas as pd
import torch
import torch.nn.functional as F
from sklearn.calibration import calibration_curve
from torchmetrics.classification import MulticlassCalibrationError

from ..data import first_n, load_dataset
from ..inference import batched_logits
from ..profiles import Profile
from ..runs import Run

READINGS = ("τ = 1", "τ_train", "T*")   # the three temperatures each model is read at (module docstring)


@dataclass(frozen=True)
class HeldOut:
    """Test logits of one model split in two: `fit` chooses T*, `measure` scores every reading."""

    fit_logits: torch.Tensor
    fit_labels: torch.Tensor
    logits: torch.Tensor
    labels: torch.Tensor


def held_out_split(profile: Profile, run: Run) -> HeldOut:
    """The whole test set, its first `fit_fraction` fitting T* and the rest measuring (fixed order: same for every τ).

    The training images trained the model, so held-out data for T* can only come from the test set here."""
    spec = run.spec
    x, y = first_n(load_dataset(spec.dataset, spec.image_size).test, None)
    n_fit = int(round(profile.calibration.fit_fraction * len(y)))
    if not 0 < n_fit < len(y):
        raise ValueError(f"fit_fraction {profile.calibration.fit_fraction} leaves no fit or no measure images")
    logits = batched_logits(run.load_model(), x).double()   # float64: high-τ logits are in the hundreds
    return HeldOut(logits[:n_fit], y[:n_fit], logits[n_fit:], y[n_fit:])


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor, max_iter: int = 200) -> float:
    """T* = argmin_T NLL(softmax(z/T), y), by L-BFGS on log T (keeps T > 0), starting at T = 1 (Guo et al. 2017)."""
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.5, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(logits.double() / log_t.exp(), labels)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(log_t.detach().exp())


def calibration_scores(logits: torch.Tensor, labels: torch.Tensor, temperature: float, n_bins: int) -> dict:
    """ECE, MCE (%), NLL and accuracy (%) of softmax(logits / temperature) on these labels."""
    probs = torch.softmax(logits.double() / temperature, dim=1).float()
    num_classes = logits.shape[1]
    ece = MulticlassCalibrationError(num_classes=num_classes, n_bins=n_bins, norm="l1")(probs, labels)
    mce = MulticlassCalibrationError(num_classes=num_classes, n_bins=n_bins, norm="max")(probs, labels)
    return {"ece": 100 * float(ece), "mce": 100 * float(mce),
            "nll": float(F.cross_entropy(logits.double() / temperature, labels)),
            "confidence": 100 * float(probs.max(1).values.mean()),
            "accuracy": 100 * float((logits.argmax(1) == labels).double().mean()),
            "errors": int((logits.argmax(1) != labels).sum())}


def reliability_curve(logits: torch.Tensor, labels: torch.Tensor, temperature: float,
                      n_bins: int) -> pd.DataFrame:
    """Top-label reliability diagram: per non-empty confidence bin, its mean confidence and its accuracy."""
    probs = torch.softmax(logits.double() / temperature, dim=1)
    confidence, predicted = probs.max(1)
    correct = (predicted == labels).numpy().astype(int)
    accuracy, mean_confidence = calibration_curve(correct, confidence.numpy(), n_bins=n_bins, strategy="uniform")
    return pd.DataFrame({"confidence": mean_confidence, "accuracy": accuracy})


@dataclass(frozen=True)
class CalibrationStudy:
    """Per τ: the scores of the three readings (`table`) and the reliability curves (`curves`)."""

    table: pd.DataFrame
    curves: pd.DataFrame
    n_fit: int
    n_measure: int


def calibration_study(profile: Profile, runs: Mapping[float, Run]) -> CalibrationStudy:
    """Every run scored at τ = 1, at its training τ and at its fitted T*, on the same held-out test images."""
    rows, curves = [], []
    n_bins = profile.calibration.n_bins
    for tau, run in sorted(runs.items()):
        split = held_out_split(profile, run)
        t_star = fit_temperature(split.fit_logits, split.fit_labels, profile.calibration.max_iter)
        for reading, temperature in zip(READINGS, (1.0, tau, t_star)):
            rows.append({"tau": tau, "reading": reading, "temperature": temperature,
                         **calibration_scores(split.logits, split.labels, temperature, n_bins)})
            curve = reliability_curve(split.logits, split.labels, temperature, n_bins)
            curves.append(curve.assign(tau=tau, reading=reading))
    return CalibrationStudy(pd.DataFrame(rows), pd.concat(curves, ignore_index=True),
                            n_fit=len(split.fit_labels), n_measure=len(split.labels))


def summary_table(study: CalibrationStudy) -> pd.DataFrame:
    """One row per τ: accuracy, ECE and NLL at τ = 1 and after post-hoc scaling, and the fitted T*."""
    wide = study.table.pivot(index="tau", columns="reading")
    table = pd.DataFrame({
        "accuracy (%)": wide[("accuracy", "τ = 1")],
        "errors": wide[("errors", "τ = 1")].astype(int),
        "ECE τ=1 (%)": wide[("ece", "τ = 1")],
        "ECE τ_train (%)": wide[("ece", "τ_train")],
        "ECE T* (%)": wide[("ece", "T*")],
        "NLL τ=1": wide[("nll", "τ = 1")],
        "NLL T*": wide[("nll", "T*")],
        "T*": wide[("temperature", "T*")],
        "mean confidence τ=1 (%)": wide[("confidence", "τ = 1")],
    })
    table.index.name = "tau"
    return table


def calibration_findings(table: pd.DataFrame) -> str:
    """What the table shows, in sentences computed from it (nothing hard-coded)."""
    low, high = table.index.min(), table.index.max()
    worst = table["ECE τ=1 (%)"].idxmax()
    rho = table.reset_index()[["tau", "ECE τ=1 (%)"]].corr(method="spearman").iloc[0, 1]
    direction = "rises" if rho > 0.5 else "falls" if rho < -0.5 else "shows no monotone trend"
    after = table["ECE T* (%)"]
    lines = [
        f"ECE at τ = 1 (the paper's reading) {direction} with the training τ (Spearman ρ = {rho:+.2f}): "
        f"{table.loc[low, 'ECE τ=1 (%)']:.2f}% at τ = {low:g}, {table.loc[high, 'ECE τ=1 (%)']:.2f}% at "
        f"τ = {high:g}; the worst is τ = {worst:g} ({table.loc[worst, 'ECE τ=1 (%)']:.2f}%).",
        f"Post-hoc temperature scaling brings every τ to an ECE of {after.min():.2f}–{after.max():.2f}% "
        f"(mean {after.mean():.2f}% vs {table['ECE τ=1 (%)'].mean():.2f}% before) and the NLL from "
        f"{table['NLL τ=1'].min():.3f}–{table['NLL τ=1'].max():.3f} to "
        f"{table['NLL T*'].min():.3f}–{table['NLL T*'].max():.3f}; accuracy is unchanged (T* only rescales).",
        f"At most {int(table['errors'].max())} of the measured images are misclassified per model: with so few "
        "errors a difference of a fraction of a point in ECE is one image; the NLL weighs how confidently "
        "each error is made.",
        "Fitted T* per training τ: " + ", ".join(f"τ = {t:g} → {row['T*']:.3g}" for t, row in table.iterrows())
        + ".",
    ]
    return "\n".join(lines)

