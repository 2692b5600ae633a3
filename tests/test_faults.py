"""Fault injection: every bad input is a one-line error (exit 2) before any work, every fault is survived.

Two families, counted separately in pytest's summary (see conftest's `pytest_terminal_summary`):

- ``test_bad_input_*``: arguments, specs, data files, devices and run stores a user can get wrong. Each must fail
  before any work starts with one line that names the valid values or says what to do (CLI: exit status 2 and no
  traceback), or give a clean result.
- ``test_fault_*``: kills between any two writes of training and of the evaluation cache, bit flips, truncations,
  deletions and edits of every file kind the run store and the cache write. Each must be survived with nothing
  finished lost (at most the epoch or batch in flight is recomputed) and nothing wrong served (weights and numbers
  equal those of an undisturbed run).

Kills are simulated in-process: a `Crash` (a BaseException, like SIGKILL it is caught by nothing in the library) is
raised right after the k-th write operation completes.
"""
from __future__ import annotations

import contextlib
import json
import os
import warnings
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import tempscale.io as tio
import tempscale.runs as truns
from tempscale import attacks, cli
from tempscale.data import load_corrupted, load_dataset
from tempscale.errors import TempscaleError
from tempscale.evaluation import evaluate_run
from tempscale.inference import check_device
from tempscale.io import is_verified, load_verified, read_json_verified, sidecar_path
from tempscale.profiles import get_profile
from tempscale.robustness import CacheWarning, evaluate
from tempscale.runs import Run, RunCheckpoint, RunLock, get_or_train, list_runs, train_run
from tempscale.spec import RunSpec
from tempscale.train import StopTraining

SMOKE = get_profile("smoke")
EPOCHS = 3


def tiny_spec(**changes) -> RunSpec:
    return SMOKE.spec(1.0, **{"epochs": EPOCHS, "n_train": 16, "image_size": 8, **changes})


class Crash(BaseException):
    """A simulated kill -9: nothing in the library catches it."""


def one_line_error(err: BaseException) -> str:
    message = str(err)
    assert isinstance(err, TempscaleError), f"{type(err).__name__}: {message}"
    assert message and "\n" not in message and "Traceback" not in message, message
    return message


def run_cli(capsys, *args) -> tuple[int, str, str]:
    code = cli.main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_cli_one_line(code: int, err: str, *needles: str) -> None:
    lines = err.strip().splitlines()
    assert code == 2, (code, err)
    assert len(lines) == 1 and lines[0].startswith(("error:", "python -m tempscale")), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


# === bad inputs ====================================================================================================

HAS_CUDA = torch.cuda.is_available()

TRAIN_ARGS = [
    (["--tau", "0"], "τ must be"), (["--tau", "-5"], "τ must be"), (["--tau", "nan"], "τ must be"),
    (["--tau", "inf"], "τ must be"), (["--tau=-inf"], "τ must be"), (["--tau", "1e308"], "1e+06"),
    (["--tau", "1e-308"], "1e-06"), (["--tau", "abc"], "invalid float"), (["--tau", ""], "invalid float"),
    (["--epochs", "0"], "epochs must be"), (["--epochs", "-1"], "epochs must be"),
    (["--epochs", "1000000000"], "1..100000"), (["--epochs", "1.5"], "invalid int"),
    (["--lr", "0"], "learning rate"), (["--lr", "-0.1"], "learning rate"), (["--lr", "inf"], "learning rate"),
    (["--lr", "nan"], "learning rate"), (["--lr", "1e308"], "learning rate"),
    (["--batch-size", "0"], "batch_size"), (["--batch-size", "-1"], "batch_size"),
    (["--batch-size", "1000000000"], "batch_size"),
    (["--image-size", "0"], "8..1024"), (["--image-size", "-1"], "8..1024"), (["--image-size", "7"], "8..1024"),
    (["--image-size", "100000"], "8..1024"),
    (["--n-train", "0"], "n_train"), (["--n-train", "-3"], "n_train"),
    (["--seed", "-1"], "seed"), (["--seed", str(2 ** 40)], "seed"),
    (["--dataset", "mnist"], "unknown dataset"), (["--dataset", ""], "unknown dataset"),
    (["--dataset", "imagefolder:"], "unknown dataset"), (["--arch", "lenet"], "unknown architecture"),
    (["--method", "nope"], "unknown method"), (["--profile", "huge"], "unknown profile"),
    (["--profile", ""], "unknown profile"),
    (["--device", "gpu0"], "unknown device"), (["--device", "tpu"], "unknown device"),
    (["--device", "cuda:99"], "cuda:99"), (["--device", "cuda" if not HAS_CUDA else "cuda:64"], "cuda"),
    (["--bogus"], "unrecognized arguments"), (["--epochs"], "expected one argument"),
    (["--dataset", "cifar10", "--data-dir", "/nonexistent/data"], "/nonexistent/data"),
    (["--dataset", "tinyimagenet", "--data-dir", "/nonexistent/data"], "/nonexistent/data"),
    (["--dataset", "imagefolder:/nonexistent/set"], "/nonexistent/set"),
]


@pytest.mark.parametrize("args, needle", TRAIN_ARGS, ids=[" ".join(a) or "empty" for a, _ in TRAIN_ARGS])
def test_bad_input_train_argument(tmp_path, capsys, monkeypatch, args, needle):
    monkeypatch.setattr(truns, "fit", lambda *a, **k: pytest.fail("training started on a bad input"))
    code, _, err = run_cli(capsys, "train", "--profile", "smoke", "--quiet", "--runs-dir", str(tmp_path / "runs"),
                           *args)
    assert_cli_one_line(code, err, needle)
    assert not any((tmp_path / "runs").glob("*/spec.json"))   # nothing started


EVAL_ARGS = [
    (["--attacks", "clean,fgsm9"], "fgsm9"), (["--attacks", ","], "names no attack"),
    (["--attacks", "PGD20"], "PGD20"), (["--n-eval", "0"], "--n-eval"), (["--n-eval", "-5"], "--n-eval"),
    (["--severity", "0"], "--severity"), (["--severity", "6"], "--severity"), (["--n-eval", "x"], "invalid int"),
]


@pytest.mark.parametrize("args, needle", EVAL_ARGS, ids=[" ".join(a) for a, _ in EVAL_ARGS])
def test_bad_input_eval_argument_before_training(tmp_path, capsys, monkeypatch, args, needle):
    monkeypatch.setattr(truns, "fit", lambda *a, **k: pytest.fail("trained before checking the eval arguments"))
    code, _, err = run_cli(capsys, "eval", "--profile", "smoke", "--quiet", "--runs-dir", str(tmp_path), *args)
    assert_cli_one_line(code, err, needle)


def test_bad_input_audit_n_eval(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(truns, "fit", lambda *a, **k: pytest.fail("trained before checking --n-eval"))
    code, _, err = run_cli(capsys, "audit", "--profile", "smoke", "--n-eval", "0", "--runs-dir", str(tmp_path))
    assert_cli_one_line(code, err, "--n-eval")


def _runs_dir_cases(tmp_path: Path) -> dict[str, Path]:
    a_file = tmp_path / "plain-file"
    a_file.write_text("x")
    return {"file in the path": a_file / "runs", "is a file": a_file, "under /proc": Path("/proc/tempscale-runs"),
            "under /sys": Path("/sys/tempscale-runs")}


@pytest.mark.parametrize("case", ["file in the path", "is a file", "under /proc", "under /sys"])
def test_bad_input_runs_dir_for_train(tmp_path, capsys, monkeypatch, case):
    monkeypatch.setattr(truns, "fit", lambda *a, **k: pytest.fail("trained into an unusable run store"))
    root = _runs_dir_cases(tmp_path)[case]
    code, _, err = run_cli(capsys, "train", "--profile", "smoke", "--quiet", "--runs-dir", str(root))
    assert_cli_one_line(code, err, "run store", "--runs-dir")


def test_bad_input_runs_dir_read_only(tmp_path, capsys, monkeypatch):
    if os.geteuid() == 0:
        # root writes through permission bits: simulate the refusal the OS gives everyone else.
        def refuse(*args, **kwargs):
            raise PermissionError(13, "Permission denied")
        monkeypatch.setattr(truns.tempfile, "NamedTemporaryFile", refuse)
    root = tmp_path / "ro"
    root.mkdir()
    root.chmod(0o555)
    try:
        code, _, err = run_cli(capsys, "train", "--profile", "smoke", "--quiet", "--runs-dir", str(root))
        assert_cli_one_line(code, err, "Permission denied", "--runs-dir")
    finally:
        root.chmod(0o755)


def test_bad_input_runs_listing_on_a_file(tmp_path, capsys):
    a_file = tmp_path / "f"
    a_file.write_text("x")
    code, _, err = run_cli(capsys, "runs", "--runs-dir", str(a_file))
    assert_cli_one_line(code, err, "not a folder")


def test_bad_input_runs_listing_of_a_missing_store_is_empty(tmp_path, capsys):
    code, out, err = run_cli(capsys, "runs", "--runs-dir", str(tmp_path / "none"), "--json")
    assert code == 0 and json.loads(out.strip().splitlines()[-1]) == [] and not err


SPEC_CHANGES = [
    dict(momentum=1.0), dict(momentum=-0.1), dict(momentum=float("nan")), dict(weight_decay=-1.0),
    dict(weight_decay=float("inf")), dict(optimizer="lbfgs"), dict(schedule="step"), dict(augment="mixup"),
    dict(init=3), dict(epochs=True), dict(batch_size=2.5), dict(image_size=8.5), dict(tau="1"),
    dict(n_train=1.5), dict(seed=0.5),
]


@pytest.mark.parametrize("changes", SPEC_CHANGES, ids=[repr(c) for c in SPEC_CHANGES])
def test_bad_input_spec_field(changes):
    with pytest.raises(TempscaleError) as info:
        RunSpec(**{**tiny_spec().to_dict(), **changes}).validate()
    one_line_error(info.value)


@pytest.mark.parametrize("device", ["gpu0", "cuda:99", "", "cpu:0:1", "npu"])
def test_bad_input_device_at_the_library_boundary(device):
    if device == "":
        assert check_device(device) is None   # unset: the default device, a clean result
        return
    with pytest.raises(TempscaleError) as info:
        check_device(device)
    one_line_error(info.value)


def test_bad_input_evaluate_run_n_eval(tmp_path, monkeypatch):
    run = Run(tiny_spec(), tmp_path)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(TempscaleError) as info:
            evaluate_run(run, ["clean"], SMOKE, n_eval=bad)
        one_line_error(info.value)


# --- malformed data files ------------------------------------------------------------------------------------------

def write_cifar(root: Path, n: int = 10) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for file in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), "labels": rng.integers(0, 10, n).tolist()}
        (folder / file).write_bytes(pickle.dumps(batch, protocol=2))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": [f"c{i}" for i in range(10)]}, protocol=2))
    return folder


def _batch(n=10, **changes) -> bytes:
    rng = np.random.default_rng(1)
    batch = {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), "labels": rng.integers(0, 10, n).tolist()}
    batch.update(changes)
    return pickle.dumps(batch, protocol=2)


def _as_dir(path: Path) -> None:
    path.unlink()
    path.mkdir()


CIFAR_DAMAGE = {
    "meta is a list": lambda f: (f / "batches.meta").write_bytes(pickle.dumps(["a", "b"], protocol=2)),
    "meta is garbage": lambda f: (f / "batches.meta").write_bytes(b"\x00garbage"),
    "meta lacks names": lambda f: (f / "batches.meta").write_bytes(pickle.dumps({"x": 1}, protocol=2)),
    "meta is a folder": lambda f: _as_dir(f / "batches.meta"),
    "batch is a folder": lambda f: _as_dir(f / "data_batch_3"),
    "batch is empty": lambda f: (f / "data_batch_1").write_bytes(b""),
    "batch truncated": lambda f: (f / "data_batch_1").write_bytes(_batch()[:200]),
    "batch is a list": lambda f: (f / "data_batch_2").write_bytes(pickle.dumps([1, 2], protocol=2)),
    "string labels": lambda f: (f / "data_batch_1").write_bytes(_batch(labels=["cat"] * 10)),
    "label 10 of 10 classes": lambda f: (f / "data_batch_1").write_bytes(_batch(labels=[10] * 10)),
    "negative label": lambda f: (f / "test_batch").write_bytes(_batch(labels=[-1] * 10)),
    "fewer labels than images": lambda f: (f / "data_batch_1").write_bytes(_batch(labels=[1] * 9)),
    "more labels than images": lambda f: (f / "data_batch_1").write_bytes(_batch(labels=[1] * 11)),
    "float images": lambda f: (f / "data_batch_1").write_bytes(_batch(data=np.zeros((10, 3072)))),
    "wrong image shape": lambda f: (f / "data_batch_1").write_bytes(_batch(data=np.zeros((10, 100), np.uint8))),
    "no labels key": lambda f: (f / "data_batch_1").write_bytes(pickle.dumps({"data": np.zeros((1, 3072), np.uint8)})),
    "pickle with code": lambda f: (f / "test_batch").write_bytes(pickle.dumps({"data": os.getcwd, "labels": []})),
}


@pytest.mark.parametrize("damage", list(CIFAR_DAMAGE))
def test_bad_input_cifar_file(tmp_path, damage):
    folder = write_cifar(tmp_path)
    CIFAR_DAMAGE[damage](folder)
    with pytest.raises(TempscaleError) as info:
        load_dataset("cifar10", data_dir=tmp_path)
    assert "cifar-10-batches-py" in one_line_error(info.value)


def test_bad_input_cifar_fewer_labels_via_cli(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(truns, "fit", lambda *a, **k: pytest.fail("trained on mismatched labels"))
    folder = write_cifar(tmp_path / "data")
    CIFAR_DAMAGE["fewer labels than images"](folder)
    code, _, err = run_cli(capsys, "train", "--profile", "smoke", "--dataset", "cifar10", "--quiet",
                           "--data-dir", str(tmp_path / "data"), "--runs-dir", str(tmp_path / "runs"))
    assert_cli_one_line(code, err, "9 labels for 10 images")


def _png(path: Path, value: int = 0, size: int = 16) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size, size, 3), value, dtype=np.uint8)).save(path)


def write_image_folder(root: Path) -> Path:
    for split in ("train", "val"):
        for cls in ("cat", "dog"):
            for k in range(2):
                _png(root / split / cls / f"{k}.png", 50 * k)
    return root


FOLDER_DAMAGE = {
    "val lacks a class": lambda r: shutil.rmtree(r / "val" / "dog"),
    "no train images": lambda r: [p.unlink() for p in (r / "train").rglob("*.png")],
    "no val images": lambda r: [p.unlink() for p in (r / "val").rglob("*.png")],
    "corrupt first image": lambda r: (r / "train" / "cat" / "0.png").write_bytes(b"not a png"),
    "truncated first image": lambda r: (r / "train" / "cat" / "0.png").write_bytes(
        (r / "train" / "cat" / "0.png").read_bytes()[:30]),
    "no class folders": lambda r: [shutil.rmtree(r / "train" / c) for c in ("cat", "dog")],
    "no val folder": lambda r: shutil.rmtree(r / "val"),
    "train is a file": lambda r: (shutil.rmtree(r / "train"), (r / "train").write_text("x")),
}


@pytest.mark.parametrize("damage", list(FOLDER_DAMAGE))
def test_bad_input_image_folder(tmp_path, damage):
    root = write_image_folder(tmp_path / "set")
    FOLDER_DAMAGE[damage](root)
    with pytest.raises(TempscaleError) as info:
        load_dataset(f"imagefolder:{root}")
    one_line_error(info.value)


def test_bad_input_corrupt_image_found_while_training(tmp_path):
    root = write_image_folder(tmp_path / "set")
    (root / "val" / "dog" / "1.png").write_bytes(b"broken")
    bundle = load_dataset(f"imagefolder:{root}")
    with pytest.raises(TempscaleError) as info:
        bundle.test[3]
    assert "1.png" in one_line_error(info.value)


def write_tiny(root: Path) -> Path:
    tiny = root / "tiny-imagenet-200"
    wnids = ["n01", "n02"]
    tiny.mkdir(parents=True)
    (tiny / "wnids.txt").write_text("\n".join(wnids) + "\n")
    for wnid in wnids:
        _png(tiny / "train" / wnid / "images" / f"{wnid}_0.JPEG", 10, 64)
    _png(tiny / "val" / "images" / "val_0.JPEG", 20, 64)
    (tiny / "val" / "val_annotations.txt").write_text("val_0.JPEG\tn01\t0\t0\t63\t63\n")
    return tiny


TINY_DAMAGE = {
    "wnids is a folder": lambda t: _as_dir(t / "wnids.txt"),
    "annotations is a folder": lambda t: _as_dir(t / "val" / "val_annotations.txt"),
    "train is a file": lambda t: (shutil.rmtree(t / "train"), (t / "train").write_text("x")),
    "unknown wnid in annotations": lambda t: (t / "val" / "val_annotations.txt").write_text("val_0.JPEG\tn99\n"),
    "malformed annotation line": lambda t: (t / "val" / "val_annotations.txt").write_text("just-one-field\n"),
    "no train images": lambda t: [p.unlink() for p in (t / "train").rglob("*.JPEG")],
}


@pytest.mark.parametrize("damage", list(TINY_DAMAGE))
def test_bad_input_tiny_imagenet(tmp_path, damage):
    TINY_DAMAGE[damage](write_tiny(tmp_path))
    with pytest.raises(TempscaleError) as info:
        load_dataset("tinyimagenet", data_dir=tmp_path)
    one_line_error(info.value)


C_DAMAGE = {
    "images not npy": lambda r: (r / "fog.npy").write_bytes(b"nonsense"),
    "wrong image shape": lambda r: np.save(r / "fog.npy", np.zeros((7, 32, 32), np.uint8)),
    "label count": lambda r: np.save(r / "labels.npy", np.zeros(3, np.int64)),
}


@pytest.mark.parametrize("damage", list(C_DAMAGE))
def test_bad_input_corrupted_set(tmp_path, damage):
    root = tmp_path / "CIFAR-10-C"
    root.mkdir()
    np.save(root / "fog.npy", np.zeros((10, 32, 32, 3), np.uint8))
    np.save(root / "labels.npy", np.zeros(10, np.int64))
    C_DAMAGE[damage](root)
    with pytest.raises(TempscaleError) as info:
        load_corrupted("cifar10", "fog", 3, tmp_path)
    one_line_error(info.value)


# === faults: the run store =========================================================================================

@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An undisturbed run (the numbers every survived fault must reproduce) and a copy stopped after epoch 2."""
    root = tmp_path_factory.mktemp("reference")
    complete = get_or_train(tiny_spec(), runs_dir=root / "complete", progress=False)
    partial = Run(tiny_spec(), root / "partial")
    with pytest.raises(StopTraining):
        train_run(partial, progress=False, stop_after=2)
    return complete, partial


def same_as_reference(run: Run, reference: Run) -> None:
    """Nothing wrong served: the weights, history and result numbers of the undisturbed run."""
    assert run.is_complete
    ours, theirs = load_verified(run.model_path), load_verified(reference.model_path)
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    strip = ("seconds",)
    assert [{k: v for k, v in h.items() if k not in strip} for h in run.history] == \
        [{k: v for k, v in h.items() if k not in strip} for h in reference.history]
    for key in ("clean_acc", "epochs_done", "diverged", "final_train_loss", "data_fingerprint"):
        assert run.result[key] == reference.result[key], key


def copy_run(run: Run, root: Path) -> Run:
    shutil.copytree(run.dir, root / run.dir.name)
    return Run(run.spec, root)


class EpochCounter:
    """Counts the epochs actually trained (not loaded from a checkpoint) by watching RunCheckpoint.save."""

    def __init__(self, monkeypatch):
        self.saved: list[int] = []
        self.resumed_from: list[int | None] = []
        real_save, real_load = RunCheckpoint.save, RunCheckpoint.load

        def save(checkpoint, state):
            self.saved.append(state["epoch"])
            real_save(checkpoint, state)

        def load(checkpoint, device):
            state = real_load(checkpoint, device)
            self.resumed_from.append(None if state is None else state["epoch"])
            return state

        monkeypatch.setattr(RunCheckpoint, "save", save)
        monkeypatch.setattr(RunCheckpoint, "load", load)


def flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    path.write_bytes(bytes(data))


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


def edit_json(path: Path, change) -> None:
    record = json.loads(path.read_text())
    change(record)
    path.write_text(json.dumps(record, indent=2))


def _set_first(key, value):
    def change(record):
        target = record["_value"][0] if "_value" in record else record
        target[key] = value
    return change


COMPLETE_RUN_FILES = ["spec.json", "history.json", "result.json", "model.pt", "model.pt.sha256"]
DAMAGES = {"flip": flip, "truncate": truncate, "delete": Path.unlink}
EDITS = {
    "result.json: clean_acc edited": ("result.json", _set_first("clean_acc", 0.999)),
    "result.json: diverged edited": ("result.json", _set_first("diverged", True)),
    "history.json: test_errors edited": ("history.json", _set_first("test_errors", 0)),
    "spec.json: tau edited": ("spec.json", _set_first("tau", 50.0)),
    "spec.json: checksum removed": ("spec.json", lambda r: r.pop("_sha256")),
}


@pytest.mark.parametrize("damage", list(DAMAGES))
@pytest.mark.parametrize("file", COMPLETE_RUN_FILES)
def test_fault_damaged_file_of_a_finished_run(reference, tmp_path, monkeypatch, capsys, file, damage):
    complete, _ = reference
    run = copy_run(complete, tmp_path)
    DAMAGES[damage](run.dir / file)
    assert not run.is_complete                         # never served as it is
    listed = {row["run"]: row for row in list_runs(tmp_path)}
    if file != "spec.json" or damage == "delete":
        assert listed.get(run.dir.name, {}).get("status", "damaged").startswith(("damaged", "partial")), listed
    counter = EpochCounter(monkeypatch)
    repaired = get_or_train(run.spec, runs_dir=tmp_path, progress=False)
    assert counter.saved == []                         # repaired from the final checkpoint: no epoch retrained
    same_as_reference(repaired, complete)
    assert "recomputing" in capsys.readouterr().err or file == "spec.json"


@pytest.mark.parametrize("edit", list(EDITS))
def test_fault_edited_json_of_a_finished_run(reference, tmp_path, monkeypatch, edit):
    complete, _ = reference
    run = copy_run(complete, tmp_path)
    file, change = EDITS[edit]
    edit_json(run.dir / file, change)
    assert not run.is_complete
    (row,) = list_runs(tmp_path)
    assert row["status"].startswith("damaged") and row.get("clean_acc") is None
    if file == "spec.json":
        assert "tau" not in row                       # a damaged spec lists no (possibly wrong) τ
    counter = EpochCounter(monkeypatch)
    same_as_reference(get_or_train(run.spec, runs_dir=tmp_path, progress=False), complete)
    assert counter.saved == []


def test_fault_damaged_result_served_by_the_cli_is_repaired(reference, tmp_path, capsys):
    complete, _ = reference
    run = copy_run(complete, tmp_path)
    edit_json(run.result_path, _set_first("clean_acc", 1.0))
    code, out, err = run_cli(capsys, "train", "--profile", "smoke", "--epochs", str(EPOCHS), "--n-train", "16",
                             "--image-size", "8", "--tau", "1", "--quiet", "--json", "--runs-dir", str(tmp_path))
    assert code == 0, err
    assert json.loads(out.strip().splitlines()[-1])["clean_acc"] == complete.result["clean_acc"]
    assert len(err.strip().splitlines()) == 1 and "recomputing" in err


CHECKPOINT_DAMAGE = [("checkpoint.pt", "flip"), ("checkpoint.pt", "truncate"), ("checkpoint.pt", "delete"),
                     ("checkpoint.pt.sha256", "flip"), ("checkpoint.pt.sha256", "delete"),
                     ("checkpoint.prev.pt", "flip"), ("checkpoint.prev.pt", "truncate"),
                     ("checkpoint.prev.pt.sha256", "delete")]


@pytest.mark.parametrize("file, damage", CHECKPOINT_DAMAGE, ids=[f"{f}-{d}" for f, d in CHECKPOINT_DAMAGE])
def test_fault_damaged_checkpoint_of_a_partial_run(reference, tmp_path, monkeypatch, file, damage):
    """Epochs 1-2 finished (checkpoint.pt = epoch 2, checkpoint.prev.pt = epoch 1). A damaged checkpoint.pt costs
    one epoch (the run resumes from the previous one), a damaged previous one costs nothing; the result is exact."""
    complete, partial = reference
    run = copy_run(partial, tmp_path)
    DAMAGES[damage](run.dir / file)
    counter = EpochCounter(monkeypatch)
    resumed = get_or_train(run.spec, runs_dir=tmp_path, progress=False)
    expected_start = 1 if file.startswith("checkpoint.pt") else 2
    assert counter.resumed_from[0] == expected_start
    assert counter.saved == list(range(expected_start + 1, EPOCHS + 1))
    same_as_reference(resumed, complete)


def test_fault_both_checkpoints_damaged_retrains_from_scratch(reference, tmp_path, monkeypatch):
    complete, partial = reference
    run = copy_run(partial, tmp_path)
    flip(run.checkpoint_path)
    truncate(run.previous_checkpoint_path)
    counter = EpochCounter(monkeypatch)
    same_as_reference(get_or_train(run.spec, runs_dir=tmp_path, progress=False), complete)
    assert counter.resumed_from[0] is None and counter.saved == [1, 2, 3]


# --- kills between any two writes of training ----------------------------------------------------------------------

class WriteCrasher:
    """Raises Crash right after the k-th write operation (file replaced, hard link made, file removed) completes."""

    def __init__(self, monkeypatch, crash_after: int | None):
        self.count, self.crash_after, self.log = 0, crash_after, []
        real_write, real_link, real_remove = tio.atomic_write_bytes, truns._link_or_copy, truns.remove_verified

        def step(name):
            self.count += 1
            self.log.append(name)
            if self.count == self.crash_after:
                raise Crash(f"killed after write {self.count} ({name})")

        def write(path, data):
            real_write(path, data)
            step(Path(path).name)

        def link(source, target):
            real_link(source, target)
            step(f"link {Path(target).name}")

        def remove(path):
            real_remove(path)
            step(f"remove {Path(path).name}")

        monkeypatch.setattr(tio, "atomic_write_bytes", write)
        monkeypatch.setattr(truns, "_link_or_copy", link)
        monkeypatch.setattr(truns, "remove_verified", remove)


KILL_EPOCHS = 2   # enough for every kind of write: the first checkpoint, a rotated one, the final files


@pytest.fixture(scope="module")
def kill_reference(tmp_path_factory):
    return get_or_train(tiny_spec(epochs=KILL_EPOCHS), runs_dir=tmp_path_factory.mktemp("kill-ref"), progress=False)


def training_writes(tmp_path) -> list[str]:
    with pytest.MonkeyPatch.context() as mp:
        crasher = WriteCrasher(mp, None)
        get_or_train(tiny_spec(epochs=KILL_EPOCHS), runs_dir=tmp_path / "count", progress=False)
    return [name for name in crasher.log if not name.endswith(".lock.owner")]


# spec.json; epoch 1: checkpoint, sidecar, history; epoch 2: remove the previous checkpoint, link the current one as
# previous (file, sidecar), checkpoint, sidecar, history; final: model.pt, sidecar, history, result. Plus the
# lock-owner note, written first (not part of the run): kills after each of these 15 writes.
TRAINING_WRITES = 1 + 3 + 6 + 4
KILL_POINTS = TRAINING_WRITES + 1


def committed_epoch(run: Run) -> int:
    """The epochs whose checkpoint had fully committed (data and checksum) when the process died."""
    epochs = [0]
    for path in (run.checkpoint_path, run.previous_checkpoint_path):
        if is_verified(path):
            epochs.append(load_verified(path)["epoch"])
    return max(epochs)


@pytest.mark.parametrize("k", range(1, KILL_POINTS + 1))
def test_fault_kill_between_training_writes(kill_reference, tmp_path, monkeypatch, k):
    spec = tiny_spec(epochs=KILL_EPOCHS)
    with pytest.MonkeyPatch.context() as mp:
        crasher = WriteCrasher(mp, k)
        with pytest.raises(Crash):
            get_or_train(spec, runs_dir=tmp_path, progress=False)
    writes = [name for name in crasher.log if not name.endswith(".lock.owner")]
    run = Run(spec, tmp_path)
    assert not run.is_complete or writes[-1] == "result.json"
    finished = committed_epoch(run)
    counter = EpochCounter(monkeypatch)
    resumed = get_or_train(spec, runs_dir=tmp_path, progress=False)
    start = counter.resumed_from[0] if counter.resumed_from else KILL_EPOCHS
    assert (start or 0) >= finished                    # nothing finished is lost
    same_as_reference(resumed, kill_reference)


def test_training_write_count_matches_the_kill_points(tmp_path):
    assert len(training_writes(tmp_path)) == TRAINING_WRITES


# === faults: the evaluation cache ==================================================================================

N_EVAL, BATCH = 48, 16   # 3 batches


@pytest.fixture(scope="module")
def eval_setup(reference):
    complete, _ = reference
    model = complete.load_model()
    bundle = load_dataset("digits", complete.spec.image_size)
    x, y = bundle.test.tensors(N_EVAL)
    spec = attacks.attack_spec("clean")   # the cache logic is the same for every attack; clean keeps it fast
    expected = evaluate(model, x, y, spec, batch_size=BATCH)
    return model, x, y, spec, expected


def cache_files(root: Path, pattern: str) -> list[Path]:
    return sorted(root.rglob(pattern))


@contextlib.contextmanager
def quiet_cache_warnings():
    """Damaged cache files are reported with a CacheWarning; here only the numbers matter."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CacheWarning)
        yield


class AttackCounter:
    def __init__(self, monkeypatch):
        self.calls = 0
        real = attacks.correct_under

        def counted(*args, **kwargs):
            self.calls += 1
            return real(*args, **kwargs)
        monkeypatch.setattr(attacks, "correct_under", counted)


# batch 1..3 (each one file + sidecar), correct.pt + sidecar, result.json, then the batch files go
EVAL_WRITES = 2 * 3 + 2 + 1 + 1   # + meta.json first


@pytest.mark.parametrize("k", range(1, EVAL_WRITES + 1))
def test_fault_kill_between_evaluation_writes(eval_setup, tmp_path, monkeypatch, k):
    model, x, y, spec, expected = eval_setup
    with pytest.MonkeyPatch.context() as mp:
        WriteCrasher(mp, k)
        with pytest.raises(Crash):
            evaluate(model, x, y, spec, cache_dir=tmp_path, batch_size=BATCH)
    finished_batches = sum(is_verified(p) for p in cache_files(tmp_path, "batch-*.pt"))
    counter = AttackCounter(monkeypatch)
    with quiet_cache_warnings():
        again = evaluate(model, x, y, spec, cache_dir=tmp_path, batch_size=BATCH)
    assert torch.equal(again.correct, expected.correct)
    assert counter.calls <= 3 - finished_batches        # finished batches are not attacked again


EVAL_DAMAGE = [("batch-00000.pt", "flip"), ("batch-00000.pt", "truncate"), ("batch-00000.pt.sha256", "delete"),
               ("correct.pt", "flip"), ("correct.pt", "truncate"), ("correct.pt.sha256", "flip"),
               ("result.json", "flip"), ("result.json", "truncate"), ("result.json", "edit"),
               ("meta.json", "truncate")]


@pytest.mark.parametrize("file, damage", EVAL_DAMAGE, ids=[f"{f}-{d}" for f, d in EVAL_DAMAGE])
def test_fault_damaged_evaluation_cache_file(eval_setup, tmp_path, monkeypatch, file, damage):
    model, x, y, spec, expected = eval_setup
    if file.startswith("batch"):
        with pytest.MonkeyPatch.context() as mp:
            WriteCrasher(mp, 5)   # meta.json and two batches written, then killed
            with pytest.raises(Crash):
                evaluate(model, x, y, spec, cache_dir=tmp_path, batch_size=BATCH)
    else:
        evaluate(model, x, y, spec, cache_dir=tmp_path, batch_size=BATCH)
    (target,) = cache_files(tmp_path, file)
    if damage == "edit":
        edit_json(target, _set_first("accuracy", 1.0))
    else:
        DAMAGES[damage](target)
    with quiet_cache_warnings():
        again = evaluate(model, x, y, spec, cache_dir=tmp_path, batch_size=BATCH)
    assert torch.equal(again.correct, expected.correct) and again.accuracy == expected.accuracy


# === faults: concurrency and shared stores =========================================================================

def test_fault_waiting_on_a_lock_says_who_holds_it(tmp_path, capsys):
    import threading
    import time

    run = Run(tiny_spec(epochs=1), tmp_path)
    tmp_path.mkdir(exist_ok=True)
    lock = RunLock(run).lock  # the lock get_or_train takes
    lock.acquire()
    run.lock_owner_path.write_text(json.dumps({"pid": 4242, "host": "node7", "since": "2026-01-01T00:00:00"}))
    worker = threading.Thread(target=get_or_train, args=(run.spec,), kwargs=dict(runs_dir=tmp_path, progress=False))
    worker.start()
    time.sleep(1.0)
    run.lock_owner_path.unlink()
    lock.release()
    worker.join(120)
    err = capsys.readouterr().err
    assert "waiting for" in err and "pid 4242 on node7 since 2026-01-01T00:00:00" in err
    assert run.is_complete


def test_fault_store_files_follow_the_umask(tmp_path):
    old = os.umask(0o002)
    try:
        run = get_or_train(tiny_spec(epochs=1), runs_dir=tmp_path, progress=False)
    finally:
        os.umask(old)
    for path in [run.spec_path, run.model_path, sidecar_path(run.model_path), run.result_path, run.checkpoint_path]:
        assert path.stat().st_mode & 0o777 == 0o664, path


def test_fault_failed_start_leaves_no_folder(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise Crash("died before the first epoch finished")
    monkeypatch.setattr(truns, "fit", broken)
    with pytest.raises(Crash):
        get_or_train(tiny_spec(), runs_dir=tmp_path, progress=False)
    assert [p for p in tmp_path.iterdir() if not p.name.startswith(".")] == []


def test_fault_other_data_is_another_run(tmp_path):
    """The same spec on other data never reuses the model trained on the first (run identity has the data)."""
    first = write_cifar(tmp_path / "a")
    second = write_cifar(tmp_path / "b")
    (second / "data_batch_1").write_bytes(_batch())
    spec = tiny_spec(dataset="cifar10")
    assert Run(spec, tmp_path, tmp_path / "a").dir != Run(spec, tmp_path, tmp_path / "b").dir
    same = write_cifar(tmp_path / "c")
    assert Run(spec, tmp_path, tmp_path / "a").dir == Run(spec, tmp_path, tmp_path / "c").dir
    assert first.name == same.name
