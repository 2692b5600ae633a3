"""Trainer and run store: resume equality, integrity checks, divergence, locking, determinism, accuracy; the
training loop on its own (no store)."""
import json
import threading
import time

import pytest
import torch

from tempscale.data import load_dataset
from tempscale.errors import CorruptCheckpointError, InvalidSpecError
from tempscale.io import load_verified, read_json_verified
from tempscale.models import build_model
from tempscale.profiles import get_profile
from tempscale.runs import Run, get_or_train, list_runs, train_run
from tempscale.train import StopTraining, augment, build_for_spec, count_errors, fit, make_optimizer

SMOKE = get_profile("smoke")


def _spec(**kw):
    return SMOKE.spec(kw.pop("tau", 1.0), **{"epochs": 3, **kw})


def _weights(run):
    return load_verified(run.model_path)


def test_resume_after_interrupt_equals_uninterrupted(tmp_path):
    spec = _spec(tau=10.0)
    straight = get_or_train(spec, runs_dir=tmp_path / "a", progress=False)
    interrupted = Run(spec, tmp_path / "b")
    with pytest.raises(StopTraining):
        train_run(interrupted, progress=False, stop_after=1)
    assert not interrupted.is_complete and len(interrupted.history) == 1
    resumed = get_or_train(spec, runs_dir=tmp_path / "b", progress=False)
    a, b = _weights(straight), _weights(resumed)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert [h["test_errors"] for h in straight.history] == [h["test_errors"] for h in resumed.history]


def test_same_spec_same_numbers(tmp_path):
    a = get_or_train(_spec(epochs=1), runs_dir=tmp_path / "a", progress=False)
    b = get_or_train(_spec(epochs=1), runs_dir=tmp_path / "b", progress=False)
    assert a.history[0]["train_loss"] == b.history[0]["train_loss"]
    assert a.result["clean_acc"] == b.result["clean_acc"]


def test_reuse_does_not_retrain(tmp_path, monkeypatch):
    spec = _spec(epochs=1)
    first = get_or_train(spec, runs_dir=tmp_path, progress=False)
    monkeypatch.setattr("tempscale.runs.train_run", lambda *a, **k: pytest.fail("retrained a finished run"))
    assert get_or_train(spec, runs_dir=tmp_path, progress=False).dir == first.dir


def test_result_records_provenance(tmp_path):
    run = get_or_train(_spec(epochs=1), runs_dir=tmp_path, progress=False)
    result = run.result
    assert set(result["provenance"]) >= {"versions", "device", "elapsed_s", "code"}
    assert result["provenance"]["versions"]["torch"].startswith("2.")
    assert read_json_verified(run.spec_path) == run.spec.to_dict()
    assert json.loads(run.spec_path.read_text())["_sha256"]   # the checksum travels inside the file
    assert [r["run"] for r in list_runs(tmp_path)] == [run.dir.name]


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_corrupt_final_weights_detected(tmp_path, damage):
    run = get_or_train(_spec(epochs=1), runs_dir=tmp_path, progress=False)
    data = run.model_path.read_bytes()
    run.model_path.write_bytes(data[: len(data) // 2] if damage == "truncate" else data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(CorruptCheckpointError, match="model.pt"):
        run.load_model()


def test_corrupt_checkpoint_is_never_resumed_from(tmp_path, capsys):
    """A damaged checkpoint.pt is refused and training resumes from the checkpoint before it (here: none, so from
    scratch): nothing wrong is used and the result equals the uninterrupted run."""
    spec = _spec(epochs=2)
    straight = get_or_train(spec, runs_dir=tmp_path / "a", progress=False)
    run = Run(spec, tmp_path / "b")
    with pytest.raises(StopTraining):
        train_run(run, progress=False, stop_after=1)
    run.checkpoint_path.write_bytes(run.checkpoint_path.read_bytes()[:100])
    resumed = get_or_train(spec, runs_dir=tmp_path / "b", progress=False)
    assert "checkpoint.pt does not match its checksum" in capsys.readouterr().err
    a, b = _weights(straight), _weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_divergence_is_recorded_not_raised(tmp_path):
    run = get_or_train(_spec(tau=0.01, lr=1e6, optimizer="sgd", epochs=3), runs_dir=tmp_path, progress=False)
    result = run.result
    assert result["diverged"] is True and result["diverged_epoch"] >= 1
    assert all(torch.isfinite(v).all() for v in _weights(run).values() if v.is_floating_point())


def test_second_process_waits_for_the_lock(tmp_path):
    from filelock import FileLock

    spec = _spec(epochs=1).replace(init="scratch")
    run = Run(spec, tmp_path)
    tmp_path.mkdir(exist_ok=True)
    lock = FileLock(str(run.lock_path))
    lock.acquire()
    worker = threading.Thread(target=get_or_train, args=(spec,), kwargs=dict(runs_dir=tmp_path, progress=False))
    worker.start()
    time.sleep(1.5)
    assert worker.is_alive() and not run.checkpoint_path.exists()
    lock.release()
    worker.join(60)
    assert run.is_complete


def test_bad_specs_rejected():
    for bad in (dict(tau=0.0), dict(tau=-1.0), dict(epochs=0), dict(dataset="mnist"), dict(arch="lenet")):
        with pytest.raises(InvalidSpecError):
            _spec(**bad)


def test_augment_keeps_shape_and_is_seeded():
    x = torch.rand(8, 3, 16, 16)
    a = augment(x, "crop+flip", torch.Generator().manual_seed(1))
    b = augment(x, "crop+flip", torch.Generator().manual_seed(1))
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, x)
    assert torch.equal(augment(x, "none", torch.Generator()), x)


def test_digits_at_tau_1_reaches_real_accuracy(tmp_path):
    spec = get_profile("quick").spec(1.0, epochs=8)
    run = get_or_train(spec, runs_dir=tmp_path, progress=False)
    assert run.result["clean_acc"] >= 0.95, run.result
    assert run.history[-1]["test_errors"] < run.history[0]["test_errors"]


# --- the training loop without a store -------------------------------------------------------------------------------

class MemoryCheckpoint:
    """A `CheckpointIO` that keeps the states in a list: what `fit` needs from a store, nothing more."""

    def __init__(self):
        self.states = []

    def load(self, device):
        return self.states[-1] if self.states else None

    def save(self, state):
        self.states.append({k: (v.copy() if isinstance(v, list) else v) for k, v in state.items()})


def test_fit_without_a_store_equals_the_stored_run(tmp_path):
    spec = _spec(epochs=2)
    bundle = load_dataset(spec.dataset, spec.image_size)
    memory = MemoryCheckpoint()
    trained = fit(spec, bundle, checkpoint=memory, progress=False)
    stored = get_or_train(spec, runs_dir=tmp_path, progress=False)
    assert [h["test_errors"] for h in trained.history] == [h["test_errors"] for h in stored.history]
    assert trained.summary["clean_acc"] == stored.result["clean_acc"]
    weights = _weights(stored)
    assert all(torch.equal(v.cpu(), weights[k]) for k, v in trained.model.state_dict().items())
    assert [s["epoch"] for s in memory.states] == [1, 2]
    assert len(fit(spec, bundle, progress=False).history) == 2   # no checkpoint at all is fine too


def test_fit_resumes_from_any_checkpoint_io():
    spec = _spec(epochs=3)
    bundle = load_dataset(spec.dataset, spec.image_size)
    straight = fit(spec, bundle, progress=False)
    memory = MemoryCheckpoint()
    with pytest.raises(StopTraining):
        fit(spec, bundle, checkpoint=memory, progress=False, stop_after=1)
    resumed = fit(spec, bundle, checkpoint=memory, progress=False)
    assert [h["test_errors"] for h in resumed.history] == [h["test_errors"] for h in straight.history]
    for (k, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), k


def test_count_errors_restores_modes():
    spec = _spec(epochs=1)
    bundle = load_dataset(spec.dataset, spec.image_size)
    torch.manual_seed(0)
    model = build_for_spec(spec, bundle=bundle).train()
    model.head.train(False)
    errors, total = count_errors(model, bundle.test, torch.device("cpu"))
    assert model.training and not model.head.training
    assert 0 <= errors <= total == len(bundle.test)


def test_make_optimizer_follows_the_spec():
    model = build_model("resnet8", 10)
    opt, sched = make_optimizer(_spec(optimizer="sgd", lr=0.05, epochs=4), model)
    assert isinstance(opt, torch.optim.SGD) and opt.param_groups[0]["lr"] == 0.05
    assert isinstance(sched, torch.optim.lr_scheduler.CosineAnnealingLR) and sched.T_max == 4
    opt, sched = make_optimizer(_spec(optimizer="adam", schedule="constant"), model)
    assert isinstance(opt, torch.optim.Adam) and isinstance(sched, torch.optim.lr_scheduler.LambdaLR)
