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
from tempscale.runs import Run, RunLock, get_or_train, get_or_train_each, list_runs, train_run
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
    spec = _spec(epochs=1).replace(init="scratch")
    run = Run(spec, tmp_path)
    tmp_path.mkdir(exist_ok=True)
    lock = RunLock(run).lock  # the lock get_or_train takes
    lock.acquire()
    worker = threading.Thread(target=get_or_train, args=(spec,), kwargs=dict(runs_dir=tmp_path, progress=False))
    worker.start()
    time.sleep(1.5)
    assert worker.is_alive() and not run.checkpoint_path.exists()
    lock.release()
    worker.join(60)
    assert run.is_complete


def test_a_run_held_by_another_process_is_trained_last(tmp_path):
    """Two notebooks on the same grid split it: the run another process trains now is put off, not waited on."""
    specs = [_spec(tau=tau, epochs=1).replace(init="scratch") for tau in (1.0, 10.0, 50.0)]
    held = Run(specs[0], tmp_path)
    tmp_path.mkdir(exist_ok=True)
    lock = RunLock(held).lock
    lock.acquire()
    done = []
    worker = threading.Thread(target=lambda: done.extend(get_or_train_each(specs, runs_dir=tmp_path, progress=False)))
    worker.start()
    deadline = time.monotonic() + 60
    while worker.is_alive() and not all(Run(s, tmp_path).is_complete for s in specs[1:]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert all(Run(s, tmp_path).is_complete for s in specs[1:]) and not held.checkpoint_path.exists()
    assert worker.is_alive()   # the held run is left, and now waited for
    lock.release()
    worker.join(60)
    assert [run.dir for run in done] == [Run(s, tmp_path).dir for s in specs] and held.is_complete


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


def test_the_summary_scores_the_returned_weights():
    """clean_acc is read from the last epoch's test pass (no second pass): it must be the returned model's."""
    spec = _spec(epochs=2)
    bundle = load_dataset(spec.dataset, spec.image_size)
    trained = fit(spec, bundle, progress=False)
    errors, total = count_errors(trained.model, bundle.test, torch.device("cpu"))
    assert (trained.summary["clean_acc"], trained.summary["test_examples"]) == (1 - errors / total, total)


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


# --- the fast path: device-resident data, batched augmentation, CUDA settings ---------------------------------------

def _reference_augment(x, mode, generator):
    """The trainer's per-batch augmentation before the fast path, kept verbatim as the numbers to match."""
    if mode == "none":
        return x
    b, _, h, w = x.shape
    pad = max(1, h // 8)
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=generator)
    rows = (dy[:, None] + torch.arange(h))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w))[:, None, None, :]
    out = padded[torch.arange(b)[:, None, None, None], torch.arange(x.shape[1])[None, :, None, None], rows, cols]
    if mode == "crop+flip":
        flip = torch.rand(b, generator=generator) < 0.5
        out = torch.where(flip[:, None, None, None], out.flip(-1), out)
    return out


@pytest.mark.parametrize("mode", ["none", "crop", "crop+flip"])
def test_epoch_batches_equal_the_per_batch_path_bit_for_bit(mode):
    """The device path (uint8 images indexed, cropped and flipped in place, one plan per epoch) yields exactly the
    batches of the per-batch host path (float images augmented batch by batch), so CPU numbers do not change."""
    from tempscale.data import TensorImageDataset
    from tempscale.train import epoch_batches, iterate_batches

    gen = torch.Generator().manual_seed(3)
    data = TensorImageDataset(torch.randint(0, 256, (70, 3, 16, 16), dtype=torch.uint8, generator=gen),
                              torch.randint(0, 10, (70,), generator=gen))
    spec = _spec(augment=mode, batch_size=32)
    indices = torch.arange(5, 70)
    reference_gen, device_gen = torch.Generator().manual_seed(11), torch.Generator().manual_seed(11)
    order = indices[torch.randperm(len(indices), generator=reference_gen)]
    reference = [(_reference_augment(x, mode, reference_gen), y) for x, y in iterate_batches(data, order, 32)]
    fast = list(epoch_batches(data, indices, spec, device_gen, torch.device("cpu")))
    assert len(fast) == len(reference) == 3
    for (x_ref, y_ref), (x, y) in zip(reference, fast):
        assert torch.equal(x, x_ref) and torch.equal(y, y_ref) and x.dtype == torch.float32
    assert torch.equal(torch.rand(4, generator=reference_gen), torch.rand(4, generator=device_gen))  # same draws
    x, _ = data.batch(torch.arange(32))
    assert torch.equal(augment(x, mode, torch.Generator().manual_seed(5)),
                       _reference_augment(x, mode, torch.Generator().manual_seed(5)))


def test_provenance_records_the_fast_path_and_determinism_flags(tmp_path):
    result = train_run(Run(_spec(epochs=1), tmp_path), progress=False)
    training = result["provenance"]["training"]
    assert training == {"data_on_device": True, "channels_last": True, "autocast": None, "compile": False,
                        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
                        "cudnn_deterministic": torch.backends.cudnn.deterministic,
                        "cudnn_benchmark": torch.backends.cudnn.benchmark,
                        "float32_matmul_precision": torch.get_float32_matmul_precision()}


def test_cuda_settings_are_chosen_by_device_and_architecture():
    from tempscale.train import autocast_dtype, model_layout, uses_channels_last

    assert autocast_dtype(torch.device("cuda")) == torch.bfloat16 and autocast_dtype(torch.device("cpu")) is None
    assert uses_channels_last(_spec(arch="resnet20")) and not uses_channels_last(_spec(arch="vit_small_patch16_224"))
    x = torch.rand(2, 3, 8, 8)
    assert model_layout(x, True).is_contiguous(memory_format=torch.channels_last)
    assert model_layout(x, False) is x


def test_compile_wraps_the_training_model_and_is_recorded(monkeypatch):
    compiled = []

    def fake_compile(model, **kwargs):  # stands in for torch.compile (seconds of tracing on a CPU): wiring only
        compiled.append(model)
        return model

    monkeypatch.setattr(torch, "compile", fake_compile)
    spec = _spec(epochs=1)
    result = fit(spec, load_dataset("digits", spec.image_size), "cpu", progress=False, compile_model=True)
    assert len(compiled) == 1 and compiled[0] is result.model
    assert result.summary["provenance"]["training"]["compile"] is True


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_fast_path_trains_in_bf16_on_device_resident_data():
    spec = _spec(epochs=2)
    bundle = load_dataset("digits", spec.image_size)
    result = fit(spec, bundle, "cuda", progress=False)
    training = result.summary["provenance"]["training"]
    assert training["autocast"] == "bfloat16" and training["data_on_device"] and training["channels_last"]
    assert next(result.model.parameters()).is_cuda and not result.summary["diverged"]
    assert bundle.train.images.device.type == "cpu"   # the caller's bundle is left where it was
