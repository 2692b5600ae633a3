"""Shared fixtures. `digits_standard` is a τ = 1 model trained on digits: the standard model attacks are tested on."""
from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="session")
def digits_standard():
    """(model in eval mode, x_test in [0, 1], y_test): a τ = 1 CNN trained on sklearn digits at 16×16.

    Trained with plain torch on purpose: the attack and audit tests then do not depend on the trainer they help check.
    """
    import numpy as np
    import torch.nn as nn
    import torch.nn.functional as F
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    torch.manual_seed(0)
    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    x = F.interpolate(x, size=16, mode="bilinear", align_corners=False).clamp(0, 1).repeat(1, 3, 1, 1)
    y = torch.tensor(digits.target)
    idx_tr, idx_te = train_test_split(np.arange(len(y)), test_size=0.25, random_state=0, stratify=y.numpy())
    model = nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10),
    )
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    xtr, ytr = x[idx_tr], y[idx_tr]
    for _ in range(15):
        perm = torch.randperm(len(ytr))
        for i in range(0, len(ytr), 64):
            b = perm[i:i + 64]
            opt.zero_grad()
            F.cross_entropy(model(xtr[b]), ytr[b]).backward()
            opt.step()
    model.eval()
    return model, x[idx_te], y[idx_te]


# --- fault-injection counts (tests/test_faults.py): "tried / handled" per family, for the summary ------------------

FAULT_FAMILIES = {"bad inputs": "::test_bad_input_", "faults": "::test_fault_"}


def pytest_terminal_summary(terminalreporter):
    counts = {family: [0, 0] for family in FAULT_FAMILIES}
    for outcome in ("passed", "failed", "error", "skipped"):
        for report in terminalreporter.stats.get(outcome, []):
            if getattr(report, "when", "call") != "call" and outcome != "error":
                continue
            for family, marker in FAULT_FAMILIES.items():
                if "test_faults.py" in report.nodeid and marker in report.nodeid:
                    counts[family][0] += 1
                    counts[family][1] += outcome == "passed"
    if any(tried for tried, _ in counts.values()):
        terminalreporter.write_line("fault injection: " + "; ".join(
            f"{family} tried {tried} / handled {handled}" for family, (tried, handled) in counts.items()))
