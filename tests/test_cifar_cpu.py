"""The cifar-cpu profile's code path at smoke size, on small files written here in the official CIFAR-10 layout
(bytes keys, as Python 3 writers and the public copies produce): load → train the τ grid → attack → audit."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from tempscale.audit import AuditBudget, audit_grid
from tempscale.data import load_dataset
from tempscale.evaluation import evaluate_grid
from tempscale.experiments import class_names, eval_set, train_grid
from tempscale.profiles import PAPER_EPS, PAPER_TAUS, get_profile

NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def write_official_cifar10(root, per_batch: int = 12, n_test: int = 16):
    """data_batch_1..5, test_batch and batches.meta as the official python release holds them, bytes keys and all."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, n in [(f"data_batch_{i}", per_batch) for i in range(1, 6)] + [("test_batch", n_test)]:
        batch = {b"batch_label": name.encode(), b"labels": rng.integers(0, 10, n).tolist(),
                 b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                 b"filenames": [f"{name}_{i}.png".encode() for i in range(n)]}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    meta = {b"label_names": [n.encode() for n in NAMES], b"num_cases_per_batch": per_batch, b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return root


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models: a second torch thread only adds synchronisation."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def cifar_env(tmp_path, monkeypatch):
    data = write_official_cifar10(tmp_path / "data")
    monkeypatch.setenv("TEMPSCALE_DATA", str(data))
    monkeypatch.setenv("TEMPSCALE_RUNS", str(tmp_path / "runs"))
    return data


def test_class_names_are_decoded_from_bytes(cifar_env):
    bundle = load_dataset("cifar10")
    assert bundle.class_names == NAMES
    assert (len(bundle.train), len(bundle.test), bundle.image_size) == (60, 16, 32)


def test_profile_is_the_papers_regime():
    profile = get_profile("cifar-cpu")
    spec = profile.spec(100.0)
    assert (profile.dataset, profile.taus, profile.attacks.eps) == ("cifar10", PAPER_TAUS, PAPER_EPS)
    assert (spec.dataset, spec.image_size, spec.tau) == ("cifar10", 32, 100.0)
    assert {profile.spec(t).replace(tau=1.0).key() for t in profile.taus if t != 0.1} == {profile.spec(1.0).key()}, \
        "one recipe for every τ but 0.1"
    assert profile.spec(0.1).replace(tau=1.0, lr=profile.spec(1.0).lr).key() == profile.spec(1.0).key(), \
        "τ = 0.1 differs in its learning rate only"


def test_smoke_sized_grid_trains_attacks_and_audits(cifar_env):
    profile = get_profile("cifar-cpu", taus=(1.0, 50.0), n_eval=8,
                          train={"epochs": 1, "n_train": 40, "batch_size": 16},
                          attacks={"budgets": {"apgd_ce": {"steps": 5}, "square": {"n_queries": 20},
                                               "autoattack": {"steps": 5, "n_queries": 20}}},
                          audit={"n": 8, "apgd_steps": 5, "square_queries": 20, "long_steps": 5, "restarts": 1,
                                 "unbounded_steps": 5, "eps_grid": (8 / 255, 32 / 255)})
    runs = train_grid(profile, progress=False)
    assert set(runs) == {1.0, 50.0}
    assert all(run.result["train_examples"] == 40 and run.spec.image_size == 32 for run in runs.values())
    x, y = eval_set(profile, runs[1.0])
    assert x.shape == (8, 3, 32, 32)
    assert class_names(profile) == NAMES
    table, _ = evaluate_grid(runs, ["clean", "pgd20", "apgd_ce", "square"], profile)
    assert list(table.index) == [1.0, 50.0] and ((0 <= table) & (table <= 100)).all().all()
    reports = audit_grid(runs, x, y, AuditBudget.from_profile(profile), log=None)
    assert set(reports) == {1.0, 50.0} and all(report.verdict for report in reports.values())
