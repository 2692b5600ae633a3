"""Notebook 11's calibration: T* recovers a known temperature, the scores use torchmetrics, the findings follow."""
import numpy as np
import pandas as pd
import pytest
import torch

from tempscale.experiments import calibration as C

pytest.importorskip("torchmetrics")


def sampled(n: int = 4000, classes: int = 10, temperature: float = 4.0, seed: int = 0):
    """Logits z and labels drawn from softmax(z / temperature): calibrated at exactly that temperature."""
    g = torch.Generator().manual_seed(seed)
    logits = 3 * temperature * torch.randn(n, classes, generator=g, dtype=torch.float64)
    labels = torch.multinomial(torch.softmax(logits / temperature, 1), 1, generator=g).squeeze(1)
    return logits, labels


def test_fitted_temperature_recovers_the_true_one():
    logits, labels = sampled(temperature=4.0)
    assert C.fit_temperature(logits, labels) == pytest.approx(4.0, rel=0.08)


def test_scaling_calibrates_and_keeps_accuracy():
    logits, labels = sampled(temperature=4.0)
    before = C.calibration_scores(logits, labels, 1.0, n_bins=15)
    after = C.calibration_scores(logits, labels, 4.0, n_bins=15)
    assert after["ece"] < before["ece"] and after["nll"] < before["nll"]
    assert after["accuracy"] == before["accuracy"] and after["ece"] < 3
    curve = C.reliability_curve(logits, labels, 4.0, n_bins=15)
    assert (curve["confidence"] - curve["accuracy"]).abs().median() < 0.03   # sparse low bins are noisy


def test_summary_and_findings_from_a_study_table():
    rows = [{"tau": t, "reading": r, "temperature": temp, "ece": ece, "mce": ece, "nll": nll, "confidence": 99.0,
             "accuracy": 99.0, "errors": 2}
            for t, (ece1, ece2) in {1.0: (1.0, 0.5), 10.0: (2.0, 0.6), 100.0: (3.0, 0.4)}.items()
            for r, temp, ece, nll in (("τ = 1", 1.0, ece1, 0.1 * t), ("τ_train", t, ece1, 0.2), ("T*", t / 5, ece2, 0.05))]
    study = C.CalibrationStudy(pd.DataFrame(rows), pd.DataFrame(), n_fit=10, n_measure=10)
    table = C.summary_table(study)
    assert list(table.index) == [1.0, 10.0, 100.0] and table.loc[100.0, "T*"] == 20.0
    text = C.calibration_findings(table)
    assert "rises with the training τ" in text and "0.40–0.60%" in text
